//! A C-style client of another user: a memfd made as libwayland's
//! `os_create_anonymous_file` makes one (plain `memfd_create` with
//! `MFD_CLOEXEC | MFD_ALLOW_SEALING`, `F_SEAL_SHRINK`, `ftruncate`), filled,
//! and passed with one data byte by a forked child that has dropped to uid
//! and gid 65534. Root is needed to change uid: as anyone else this test
//! fails, it is never skipped.
#![cfg(all(target_os = "linux", not(miri)))]
#![cfg(unix)]

mod common;

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use shm_region::{fdpass, MmapOptions};

const POOL: u64 = 4 * 4096;
const NOBODY: u32 = 65534;

/// The options a received memfd is attached with: the defaults, which
/// accept a memfd of any owner with mode 0777.
fn defaults_for_a_received_memfd() -> MmapOptions {
    MmapOptions::new()
}

/// What the client does in the forked child: only system calls (no
/// allocation, no locks), then `_exit`. Returns the exit code.
fn client(stream: &UnixStream) -> i32 {
    // SAFETY: plain system calls in the single-threaded child of fork.
    if unsafe { libc::setgid(NOBODY) } != 0 {
        return 10;
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(NOBODY) } != 0 {
        return 11;
    }
    let Ok(fd) = rustix::fs::memfd_create(
        c"wayland-shm",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    ) else {
        return 12;
    };
    if rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).is_err() {
        return 13;
    }
    if rustix::fs::ftruncate(&fd, POOL).is_err() {
        return 14;
    }
    let mut row = [0u8; 64];
    for (i, b) in row.iter_mut().enumerate() {
        *b = u8::try_from(i).unwrap_or(0) ^ 0x5a;
    }
    if rustix::io::pwrite(&fd, &row, 4096) != Ok(row.len()) {
        return 15;
    }
    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return 16;
    }
    match rustix::net::sendmsg(
        stream,
        &[IoSlice::new(b"P")],
        &mut control,
        SendFlags::NOSIGNAL,
    ) {
        Ok(1) => 0,
        _ => 17,
    }
}

#[test]
fn a_memfd_from_a_client_of_another_uid_attaches_with_the_defaults_and_with_require_shrink_seal() {
    assert!(
        common::is_root(),
        "this test forks a client that changes uid: run it as root"
    );
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // SAFETY: the child runs only `client` (system calls, no allocation
    // or locks another thread of the parent could hold) and `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = client(&theirs);
        // SAFETY: ends the child without running the parent's destructors
        // or the test harness.
        unsafe { libc::_exit(code) };
    }
    drop(theirs);
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "client failed with status {status:#x}"
    );

    let mut byte = [0u8; 16];
    let (n, mut fds) = fdpass::recv_with(&ours, &mut byte, 1).unwrap();
    assert_eq!((&byte[..n], fds.len()), (&b"P"[..], 1));
    let fd = fds.pop().unwrap();
    let st = rustix::fs::fstat(&fd).unwrap();
    assert_eq!((st.st_uid, st.st_mode & 0o7777), (NOBODY, 0o777));
    let second = fd.try_clone().unwrap();

    let pool = defaults_for_a_received_memfd().attach_fd(fd).unwrap();
    assert_eq!(pool.len(), usize::try_from(POOL).unwrap());
    assert!(pool.is_shrink_sealed());
    let mut row = [0u8; 64];
    pool.region().read_at(4096, &mut row).unwrap();
    let expected: Vec<u8> = (0..64u8).map(|i| i ^ 0x5a).collect();
    assert_eq!(row.as_slice(), expected.as_slice());

    let mut sealed = defaults_for_a_received_memfd();
    sealed.require_shrink_seal(true);
    let pool = sealed.attach_fd(second).unwrap();
    assert!(pool.is_shrink_sealed());
    pool.region().read_at(4096, &mut row).unwrap();
    assert_eq!(row.as_slice(), expected.as_slice());
    // The seal holds against us too.
    assert_eq!(
        rustix::fs::ftruncate(pool.fd().unwrap(), 4096),
        Err(rustix::io::Errno::PERM)
    );
}
