//! Review 1: `Doorbell::from_fd` against every kind of descriptor, with
//! /proc/self/fd counted (not part of the suite).
#![cfg(all(target_os = "linux", not(miri)))]
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use shm_region::Doorbell;

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn raw(fd: i32) -> OwnedFd {
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn review1_from_fd_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("anon_inode:[eventfd]");
    std::fs::write(&fake, b"").unwrap();
    let mut cases: Vec<(&str, OwnedFd)> = Vec::new();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    cases.push(("pipe", r));
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    cases.push(("socket", a.into()));
    cases.push((
        "memfd",
        rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap(),
    ));
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        cases.push(("signalfd", raw(libc::signalfd(-1, &set, libc::SFD_CLOEXEC))));
        cases.push((
            "timerfd",
            raw(libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC,
            )),
        ));
        cases.push(("epoll", raw(libc::epoll_create1(libc::EPOLL_CLOEXEC))));
        cases.push(("inotify", raw(libc::inotify_init1(libc::IN_CLOEXEC))));
        cases.push((
            "fanotify?",
            raw(libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_SEMAPHORE)),
        ));
        cases.push((
            "pidfd",
            raw(libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) as i32),
        ));
        let ev = libc::eventfd(0, libc::EFD_CLOEXEC);
        let path = std::ffi::CString::new(format!("/proc/self/fd/{ev}")).unwrap();
        cases.push((
            "O_PATH of eventfd",
            raw(libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC)),
        ));
        libc::close(ev);
        let cf = std::ffi::CString::new(fake.to_str().unwrap()).unwrap();
        cases.push((
            "file named anon_inode:[eventfd]",
            raw(libc::open(cf.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)),
        ));
        cases.push((
            "O_PATH file named anon_inode:[eventfd]",
            raw(libc::open(cf.as_ptr(), libc::O_PATH | libc::O_CLOEXEC)),
        ));
        cases.push((
            "/dev/null",
            raw(libc::open(
                c"/dev/null".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC,
            )),
        ));
        cases.push((
            "userfaultfd",
            raw(libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) as i32),
        ));
        // io_uring not tried (no setup helper); memfd_secret
        let ms = libc::syscall(447, libc::O_CLOEXEC) as i32;
        if ms >= 0 {
            cases.push(("memfd_secret", raw(ms)));
        }
    }
    let before = fds();
    let n = cases.len();
    for (what, fd) in cases {
        match Doorbell::from_fd(fd) {
            Ok(_) => println!("{what}: ACCEPTED"),
            Err(e) => println!("{what}: {:?}: {e}", e.kind()),
        }
    }
    println!("fds before {before} after {} ({n} cases consumed)", fds());
}

/// A peer writes the largest value in one write: `drain` returns it as
/// "how many rings".
#[test]
fn review1_drain_returns_what_the_peer_wrote() {
    let bell = Doorbell::new().unwrap();
    let peer = rustix::io::dup(&bell).unwrap();
    rustix::io::write(&peer, &0xffff_ffff_ffff_fffe_u64.to_ne_bytes()).unwrap();
    println!("drain after one peer write: {}", bell.drain().unwrap());
}

/// Blocking eventfd from a peer: after from_fd, the peer clears O_NONBLOCK
/// and fills the counter; ring blocks (documented). Timed in a thread.
#[test]
fn review1_ring_blocks_after_peer_clears_nonblock() {
    let bell = Doorbell::new().unwrap();
    let peer = rustix::io::dup(&bell).unwrap();
    let fl = rustix::fs::fcntl_getfl(&peer).unwrap();
    rustix::fs::fcntl_setfl(&peer, fl - rustix::fs::OFlags::NONBLOCK).unwrap();
    rustix::io::write(&peer, &0xffff_ffff_ffff_fffe_u64.to_ne_bytes()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let t = Instant::now();
        let _ = bell.ring();
        let _ = tx.send(t.elapsed());
    });
    println!(
        "ring returned within 1s: {:?}",
        rx.recv_timeout(Duration::from_secs(1)).is_ok()
    );
}
