//! `Doorbell`: an eventfd an event loop can poll; rings coalesce, drains
//! never block, and `from_fd` refuses (and closes) anything a peer sends
//! that is not a plain eventfd.
#![cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
#![cfg(unix)]

mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;
use shm_region::{fdpass, Doorbell, ErrorKind};

/// Whether `fd` polls readable now.
fn readable(fd: impl AsFd) -> bool {
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    rustix::event::poll(&mut fds, Some(&zero)).unwrap();
    fds[0].revents().contains(PollFlags::IN)
}

#[test]
fn rings_coalesce_and_drain_counts_them() {
    let bell = Doorbell::new().unwrap();
    assert!(!readable(&bell));
    for _ in 0..3 {
        bell.ring().unwrap();
    }
    assert!(readable(&bell));
    assert_eq!(bell.drain().unwrap(), 3);
    assert!(!readable(&bell));
    assert_eq!(bell.drain().unwrap(), 0);
}

#[test]
fn drain_returns_zero_at_once_when_nothing_rang() {
    let bell = Doorbell::new().unwrap();
    let n = common::within(Duration::from_secs(5), move || bell.drain().unwrap());
    assert_eq!(n, 0);
}

#[test]
fn new_doorbell_is_a_nonblocking_close_on_exec_eventfd() {
    let bell = Doorbell::new().unwrap();
    let fd = rustix::io::fcntl_getfd(&bell).unwrap();
    assert!(fd.contains(rustix::io::FdFlags::CLOEXEC));
    let fl = rustix::fs::fcntl_getfl(&bell).unwrap();
    assert!(fl.contains(OFlags::NONBLOCK));
    let link = std::fs::read_link(format!("/proc/self/fd/{}", bell.as_raw_fd())).unwrap();
    assert_eq!(link.to_str(), Some("anon_inode:[eventfd]"));
}

#[test]
fn wait_times_out_when_nothing_rang_and_returns_at_once_when_rung() {
    let bell = Doorbell::new().unwrap();
    let started = Instant::now();
    assert!(!bell.wait(Some(Duration::from_millis(50))).unwrap());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(!bell.wait(Some(Duration::ZERO)).unwrap());
    bell.ring().unwrap();
    let started = Instant::now();
    assert!(bell.wait(Some(Duration::from_secs(10))).unwrap());
    assert!(bell.wait(None).unwrap());
    assert!(started.elapsed() < Duration::from_secs(1));
    // Waiting does not drain.
    assert_eq!(bell.drain().unwrap(), 1);
}

#[test]
fn ring_at_the_counter_maximum_is_not_an_error() {
    let bell = Doorbell::new().unwrap();
    const MAX: u64 = 0xffff_ffff_ffff_fffe;
    assert_eq!(rustix::io::write(&bell, &MAX.to_ne_bytes()).unwrap(), 8);
    let t = Instant::now();
    bell.ring().unwrap();
    bell.ring().unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(bell.drain().unwrap(), MAX);
    assert_eq!(bell.drain().unwrap(), 0);
}

/// A holder raises the counter to `0xffff_ffff_ffff_fffe` with a write,
/// then has the kernel signal it once more (an aio read completing with
/// `IOCB_FLAG_RESFD`): the counter is `u64::MAX`, past what a write allows,
/// and the eventfd polls `POLLIN | POLLERR`. `ring` is still not an error,
/// `wait` says rung at once, and `drain` returns `u64::MAX` and empties it.
#[test]
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn a_counter_a_kernel_signal_raised_to_u64_max_rings_waits_and_drains() {
    #[repr(C)]
    #[derive(Default)]
    struct Iocb {
        data: u64,
        key: u32,
        rw_flags: i32,
        opcode: u16,
        reqprio: i16,
        fildes: u32,
        buf: u64,
        nbytes: u64,
        offset: i64,
        reserved2: u64,
        flags: u32,
        resfd: u32,
    }
    let bell = Doorbell::new().unwrap();
    let peer = rustix::io::dup(&bell).unwrap();
    assert_eq!(
        rustix::io::write(&peer, &0xffff_ffff_ffff_fffe_u64.to_ne_bytes()).unwrap(),
        8
    );
    let file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut &file, &[7u8; 512]).unwrap();
    let mut buf = [0u8; 512];
    let mut ctx: libc::c_ulong = 0;
    // SAFETY: io_setup writes one `aio_context_t` to `ctx`.
    let r = unsafe { libc::syscall(libc::SYS_io_setup, 8, &mut ctx) };
    if r != 0 {
        return common::skip(
            "a_counter_a_kernel_signal_raised_to_u64_max_rings_waits_and_drains",
            &format!("io_setup: {}", std::io::Error::last_os_error()),
        );
    }
    let mut cb = Iocb {
        fildes: u32::try_from(file.as_raw_fd()).unwrap(),
        buf: buf.as_mut_ptr() as u64,
        nbytes: 512,
        flags: 1, // IOCB_FLAG_RESFD
        resfd: u32::try_from(peer.as_raw_fd()).unwrap(),
        ..Iocb::default()
    };
    let mut list = [std::ptr::from_mut(&mut cb)];
    // SAFETY: one valid iocb, whose buffer outlives the completion waited for below.
    let submitted = unsafe { libc::syscall(libc::SYS_io_submit, ctx, 1, list.as_mut_ptr()) };
    assert_eq!(submitted, 1);
    let mut events = [0u64; 4];
    // SAFETY: room for one `io_event` (four u64), one event asked for.
    let got = unsafe {
        libc::syscall(
            libc::SYS_io_getevents,
            ctx,
            1,
            1,
            events.as_mut_ptr(),
            std::ptr::null::<u8>(),
        )
    };
    assert_eq!(got, 1);
    // SAFETY: the context made above, no request in flight.
    unsafe { libc::syscall(libc::SYS_io_destroy, ctx) };
    assert_eq!(buf, [7u8; 512]);
    let mut fds = [PollFd::new(&bell, PollFlags::IN)];
    rustix::event::poll(
        &mut fds,
        Some(&Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
    )
    .unwrap();
    assert_eq!(fds[0].revents(), PollFlags::IN | PollFlags::ERR);
    let t = Instant::now();
    bell.ring().unwrap();
    assert!(bell.wait(Some(Duration::from_secs(5))).unwrap());
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(bell.drain().unwrap(), u64::MAX);
    assert_eq!(bell.drain().unwrap(), 0);
    assert!(!bell.wait(Some(Duration::from_millis(1))).unwrap());
}

/// `from_fd(fd)` refuses with `NotEventfd` and this message tail, and
/// closes the descriptor (shown by `closed`).
fn assert_refused(fd: OwnedFd, what: &str) {
    let raw = fd.as_raw_fd();
    let err = Doorbell::from_fd(fd).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotEventfd, "{err}");
    assert_eq!(err.io_kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        format!("Doorbell::from_fd: descriptor {raw} is not an eventfd: it is {what} (closed)")
    );
}

#[test]
fn from_fd_refuses_a_pipe_and_closes_it() {
    let (read, write) = rustix::pipe::pipe().unwrap();
    assert_refused(write, "a pipe or FIFO");
    // Every write end is closed: the reader sees end of input.
    let mut buf = [0u8; 1];
    assert_eq!(rustix::io::read(&read, &mut buf).unwrap(), 0);
}

#[test]
fn from_fd_refuses_a_socket_and_closes_it() {
    let (a, b) = UnixStream::pair().unwrap();
    assert_refused(OwnedFd::from(a), "a socket");
    let mut buf = [0u8; 1];
    assert_eq!(rustix::io::read(&b, &mut buf).unwrap(), 0);
}

#[test]
fn from_fd_refuses_files_directories_and_devices() {
    let file = tempfile::tempfile().unwrap();
    assert_refused(OwnedFd::from(file), "a regular file");
    let dir = std::fs::File::open("/tmp").unwrap();
    assert_refused(OwnedFd::from(dir), "a directory");
    let null = std::fs::File::open("/dev/null").unwrap();
    assert_refused(OwnedFd::from(null), "a character device");
}

#[test]
fn from_fd_refuses_other_anonymous_inodes() {
    let epoll = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC).unwrap();
    assert_refused(epoll, "an epoll instance");
    let pidfd = rustix::process::pidfd_open(
        rustix::process::getpid(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    let link = std::fs::read_link(format!("/proc/self/fd/{}", pidfd.as_raw_fd())).unwrap();
    let expected = match link.to_str() {
        Some("anon_inode:[pidfd]") => "a pidfd",
        // Linux 6.9+: pidfds live on pidfs, with a file type of their own.
        _ => "a regular file",
    };
    let raw = pidfd.as_raw_fd();
    let err = Doorbell::from_fd(pidfd).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotEventfd, "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "Doorbell::from_fd: descriptor {raw} is not an eventfd"
        )),
        "{err} ({expected}?)"
    );
}

#[test]
fn from_fd_refuses_an_o_path_descriptor_of_an_eventfd() {
    let efd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC).unwrap();
    let path = rustix::fs::open(
        format!("/proc/self/fd/{}", efd.as_raw_fd()).as_str(),
        OFlags::PATH | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    assert_refused(path, "an O_PATH descriptor");
}

#[test]
fn from_fd_refuses_a_semaphore_eventfd() {
    let efd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::SEMAPHORE).unwrap();
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", efd.as_raw_fd())).unwrap();
    if !info.contains("eventfd-semaphore:") {
        return common::skip(
            "from_fd_refuses_a_semaphore_eventfd",
            "this kernel's eventfd fdinfo does not show the semaphore mode",
        );
    }
    let raw = efd.as_raw_fd();
    let err = Doorbell::from_fd(efd).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotEventfd);
    assert_eq!(
        err.to_string(),
        format!("Doorbell::from_fd: descriptor {raw} is an eventfd in semaphore mode (EFD_SEMAPHORE): each read takes one ring, so rings would not coalesce (closed)")
    );
}

#[test]
fn from_fd_makes_a_blocking_eventfd_nonblocking() {
    let efd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC).unwrap();
    let bell = Doorbell::from_fd(efd).unwrap();
    assert!(rustix::fs::fcntl_getfl(&bell)
        .unwrap()
        .contains(OFlags::NONBLOCK));
    let bell = common::within(Duration::from_secs(5), move || {
        assert_eq!(bell.drain().unwrap(), 0);
        bell
    });
    bell.ring().unwrap();
    assert_eq!(bell.drain().unwrap(), 1);
}

#[test]
fn drain_does_not_block_when_a_peer_clears_nonblock() {
    let mine = Doorbell::new().unwrap();
    // A peer holding the same open file description clears O_NONBLOCK.
    let theirs = rustix::io::dup(&mine).unwrap();
    rustix::fs::fcntl_setfl(&theirs, OFlags::empty()).unwrap();
    assert!(!rustix::fs::fcntl_getfl(&mine)
        .unwrap()
        .contains(OFlags::NONBLOCK));
    let n = common::within(Duration::from_secs(5), move || mine.drain().unwrap());
    assert_eq!(n, 0);
}

const SOCK: &str = "SHM_REGION_DOORBELL_SOCK";

/// The child's part: connect, receive an eventfd, ring it after 100 ms.
fn ringer_main() {
    let s = UnixStream::connect(std::env::var(SOCK).unwrap()).unwrap();
    let mut buf = [0u8; 4];
    let (_, mut fds) = fdpass::recv_with(&s, &mut buf, 1).unwrap();
    let bell = Doorbell::from_fd(fds.pop().unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    bell.ring().unwrap();
}

#[test]
fn a_ring_from_another_process_wakes_a_waiter() {
    const TEST: &str = "a_ring_from_another_process_wakes_a_waiter";
    if common::role().is_some() {
        return ringer_main();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut child = common::spawn_self(TEST, "ringer", &[(SOCK, path.to_str().unwrap())])
        .spawn()
        .unwrap();
    let (server, _) = common::within(Duration::from_secs(30), move || listener.accept().unwrap());
    let bell = Doorbell::new().unwrap();
    fdpass::send_with(&server, b"bell", &[bell.as_fd()]).unwrap();
    assert!(bell.wait(Some(Duration::from_secs(30))).unwrap());
    assert_eq!(bell.drain().unwrap(), 1);
    common::assert_child_succeeds(&mut child);
}

// `AsyncFd::new` is deprecated for the `unsafe` `AsyncFd::register`, whose
// contract (the descriptor stays open and the same while registered) a
// `Doorbell` meets: it owns its descriptor. The safe constructor keeps
// `unsafe` out of the tests.
#[allow(deprecated)]
#[test]
fn a_ring_wakes_a_tokio_task_asleep_in_async_fd() {
    let bell = Doorbell::new().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let ringer = Doorbell::from_fd(rustix::io::fcntl_dupfd_cloexec(&bell, 0).unwrap()).unwrap();
    let n = common::within(Duration::from_secs(10), move || {
        rt.block_on(async move {
            let afd = tokio::io::unix::AsyncFd::new(bell).unwrap();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                ringer.ring().unwrap();
            });
            loop {
                let mut guard = afd.readable().await.unwrap();
                let n = afd.get_ref().drain().unwrap();
                if n > 0 {
                    return n;
                }
                guard.clear_ready();
            }
        })
    });
    assert_eq!(n, 1);
}

#[test]
fn concurrent_drains_count_each_ring_once() {
    const RINGS: u64 = 20_000;
    let bell = Doorbell::new().unwrap();
    let dup =
        |b: &Doorbell| Doorbell::from_fd(rustix::io::fcntl_dupfd_cloexec(b, 0).unwrap()).unwrap();
    let ringer = dup(&bell);
    let other = dup(&bell);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drainers: Vec<_> = [bell, other]
        .into_iter()
        .map(|b| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut total = 0u64;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    total += b.drain().unwrap();
                }
                total + b.drain().unwrap()
            })
        })
        .collect();
    for _ in 0..RINGS {
        ringer.ring().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let counted: u64 = drainers.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(counted + ringer.drain().unwrap(), RINGS);
}

#[test]
fn signals_during_a_wait_neither_end_it_early_nor_extend_it() {
    // Signals at 20 to 280 ms of a 300 ms wait (`common`'s body).
    let bell = Doorbell::new().unwrap();
    let at: Vec<u64> = (20..=280).step_by(20).collect();
    common::signals_during_a_timed_wait(1, &at, move |t| bell.wait(Some(t)).unwrap(), false);
}

#[test]
fn from_fd_is_unsupported_without_procfs() {
    const TEST: &str = "from_fd_is_unsupported_without_procfs";
    if common::role().as_deref() == Some("no-procfs") {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs", "/proc"])
            .status()
            .unwrap();
        assert!(mounted.success());
        // /proc/thread-self is missing: the eventfd cannot be checked.
        let efd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC).unwrap();
        let err = Doorbell::from_fd(efd).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(
            err.to_string().contains("/proc/thread-self is not procfs"),
            "{err}"
        );
        // One that exists but is not procfs is refused too, not trusted.
        std::fs::create_dir_all("/proc/thread-self/fd").unwrap();
        std::fs::create_dir_all("/proc/thread-self/fdinfo").unwrap();
        let efd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC).unwrap();
        let err = Doorbell::from_fd(efd).unwrap_err();
        assert_eq!(
            (err.kind(), err.raw_os_error()),
            (ErrorKind::Unsupported, None),
            "{err}"
        );
        // A pipe end is refused by its type, before procfs is needed, and
        // closed (its reader sees end of input).
        let (read, write) = rustix::pipe::pipe().unwrap();
        assert_eq!(
            Doorbell::from_fd(write).unwrap_err().kind(),
            ErrorKind::NotEventfd
        );
        let mut buf = [0u8; 1];
        assert_eq!(rustix::io::read(&read, &mut buf).unwrap(), 0);
        // A doorbell made here works without procfs.
        let bell = Doorbell::new().unwrap();
        bell.ring().unwrap();
        assert_eq!(bell.drain().unwrap(), 1);
        return;
    }
    if !common::is_root() {
        return common::skip(
            TEST,
            "needs root (a mount namespace with a tmpfs over /proc)",
        );
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(common::ROLE, "no-procfs")
        // LeakSanitizer lists threads through /proc at exit, which the
        // child hides: under ASan that is a fatal error, not a leak.
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::assert_child_succeeds(&mut child);
}

#[test]
fn ring_blocks_when_a_peer_clears_nonblock_and_fills_the_counter() {
    // The limit SECURITY.md documents: O_NONBLOCK belongs to the open file
    // description the sender shares, and a write has no per-call way
    // around it.
    let bell = Doorbell::new().unwrap();
    let peer = rustix::io::dup(&bell).unwrap();
    rustix::fs::fcntl_setfl(&peer, OFlags::empty()).unwrap();
    const MAX: u64 = 0xffff_ffff_ffff_fffe;
    assert_eq!(rustix::io::write(&peer, &MAX.to_ne_bytes()).unwrap(), 8);
    let (tx, rx) = std::sync::mpsc::channel();
    let ringer = std::thread::spawn(move || {
        bell.ring().unwrap();
        tx.send(()).unwrap();
        bell
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "ring did not block"
    );
    // Draining the counter (here through the peer's copy) releases it.
    let mut buf = [0u8; 8];
    assert_eq!(rustix::io::read(&peer, &mut buf).unwrap(), 8);
    assert_eq!(u64::from_ne_bytes(buf), MAX);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("ring still blocked after a drain");
    let bell = ringer.join().unwrap();
    assert_eq!(bell.drain().unwrap(), 1);
}
