//! Sealed memfd regions and descriptor passing, across real processes.
#![cfg(all(target_os = "linux", not(miri)))]
#![cfg(unix)]

mod common;

use std::io::Write;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use rustix::io::Errno;
use shm_region::{fdpass, ErrorKind, FileCleanup, MmapOptions, MmapRegion};

const SIZE: usize = 64 << 10;

fn pattern(i: usize) -> u8 {
    u8::try_from(i % 253).unwrap()
}

/// The guest: receives the descriptor, tries to shrink the file, checks the
/// bytes, follows one growth and acknowledges.
fn guest(socket: &str) {
    let stream = UnixStream::connect(socket).unwrap();
    // A descriptor that never comes fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let fd = fdpass::recv(&stream).unwrap();
    let mut region = MmapRegion::attach_fd(fd).unwrap();
    assert!(region.is_shrink_sealed());
    assert_eq!(region.len(), SIZE);
    // A hostile peer's truncation is refused by the kernel.
    assert_eq!(
        rustix::fs::ftruncate(region.fd().unwrap(), 4096),
        Err(Errno::PERM)
    );
    assert_eq!(
        rustix::fs::ftruncate(region.fd().unwrap(), 0),
        Err(Errno::PERM)
    );
    let r = region.region();
    let mut all = vec![0u8; SIZE];
    r.read_at(0, &mut all).unwrap();
    assert!(all[64..]
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern(i + 64)));
    r.atomic_u64(0).unwrap().store(1, Ordering::Release);
    wait_until(Duration::from_secs(60), "the host to grow", || {
        r.atomic_u64(8).unwrap().load(Ordering::Acquire) == 1
    });
    assert!(region.check_and_remap().unwrap());
    assert_eq!(region.len(), 2 * SIZE);
    region.region().write_at(2 * SIZE - 5, b"guest").unwrap();
    region
        .region()
        .atomic_u64(0)
        .unwrap()
        .store(2, Ordering::Release);
}

#[test]
fn sealed_region_passed_to_another_process_cannot_be_shrunk_and_keeps_working() {
    const NAME: &str = "sealed_region_passed_to_another_process_cannot_be_shrunk_and_keeps_working";
    if let Some(socket) = role() {
        guest(&socket);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let mut host = MmapRegion::create_sealed("shm-region-test", SIZE).unwrap();
    assert!(host.is_shrink_sealed());
    assert_eq!(host.path(), std::path::Path::new(""));
    let tail: Vec<u8> = (64..SIZE).map(pattern).collect();
    host.region().write_at(64, &tail).unwrap();
    let mut child = spawn_self(NAME, socket.to_str().unwrap(), &[])
        .spawn()
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    fdpass::send(&stream, host.fd().unwrap()).unwrap();
    let r = host.region();
    wait_until(Duration::from_secs(60), "the guest's first ack", || {
        let exited = child.try_wait().unwrap();
        assert!(exited.is_none(), "the guest ended early: {exited:?}");
        r.atomic_u64(0).unwrap().load(Ordering::Acquire) == 1
    });
    // The guest's truncation attempts changed nothing.
    assert_eq!(
        rustix::fs::fstat(host.fd().unwrap()).unwrap().st_size,
        64 << 10
    );
    host.resize(2 * SIZE).unwrap();
    host.region()
        .atomic_u64(8)
        .unwrap()
        .store(1, Ordering::Release);
    assert_child_succeeds(&mut child);
    assert_eq!(
        host.region().atomic_u64(0).unwrap().load(Ordering::Acquire),
        2
    );
    let mut b = [0u8; 5];
    host.region().read_at(2 * SIZE - 5, &mut b).unwrap();
    assert_eq!(&b, b"guest");
}

#[test]
fn create_sealed_grows_but_never_shrinks() {
    let mut r = MmapRegion::create_sealed("grow", 4096).unwrap();
    r.resize(3 * 4096).unwrap();
    assert_eq!(r.len(), 3 * 4096);
    assert_eq!(
        rustix::fs::ftruncate(r.fd().unwrap(), 4096),
        Err(Errno::PERM)
    );
    // Only F_SEAL_SHRINK: the seal set stays open so that `freeze` and
    // `share_read_only` can add theirs (what a peer adding seals can do is
    // in tests/frozen.rs).
    let seals = rustix::fs::fcntl_get_seals(r.fd().unwrap()).unwrap();
    assert_eq!(seals, rustix::fs::SealFlags::SHRINK);
    let dup = r.fd().unwrap().try_clone_to_owned().unwrap();
    let peer = MmapRegion::attach_fd(dup).unwrap();
    assert!(peer.is_shrink_sealed());
    assert_eq!(peer.len(), 3 * 4096);
}

#[test]
fn create_sealed_rejects_bad_names_and_sizes() {
    assert_eq!(
        kind(MmapRegion::create_sealed("a\0b", 4096)),
        ErrorKind::InvalidPath
    );
    assert_eq!(
        kind(MmapRegion::create_sealed(&"n".repeat(300), 4096)),
        ErrorKind::InvalidPath
    );
    assert_eq!(
        kind(MmapRegion::create_sealed("z", 0)),
        ErrorKind::InvalidSize
    );
}

#[test]
fn require_shrink_seal_refuses_unsealed_descriptors_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let plain = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    assert!(!plain.is_shrink_sealed());
    let mut strict = MmapOptions::new();
    strict.require_shrink_seal(true);
    let err = strict.attach(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSealed);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::PermissionDenied
    );
    let fd = plain.fd().unwrap().try_clone_to_owned().unwrap();
    assert_eq!(kind(strict.attach_fd(fd)), ErrorKind::NotSealed);
    // A memfd that allows sealing but was never sealed is refused too.
    let unsealed = rustix::fs::memfd_create(
        "unsealed",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .unwrap();
    rustix::fs::fchmod(&unsealed, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
    rustix::fs::ftruncate(&unsealed, 4096).unwrap();
    assert_eq!(kind(strict.attach_fd(unsealed)), ErrorKind::NotSealed);
    // A sealed one is accepted.
    let sealed = MmapRegion::create_sealed("ok", 4096).unwrap();
    let fd = sealed.fd().unwrap().try_clone_to_owned().unwrap();
    assert!(strict.attach_fd(fd).unwrap().is_shrink_sealed());
}

/// Sends `fds` (possibly none) as one message, as a hostile peer might.
fn send_raw(stream: &UnixStream, fds: &[BorrowedFd<'_>]) {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    }
    rustix::net::sendmsg(
        stream,
        &[std::io::IoSlice::new(&[0])],
        &mut control,
        SendFlags::empty(),
    )
    .unwrap();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn recv_refuses_anything_but_one_regular_file_and_leaks_no_descriptor() {
    // Descriptor counting needs a process to itself: run in a child.
    const NAME: &str = "recv_refuses_anything_but_one_regular_file_and_leaks_no_descriptor";
    if role().is_none() {
        run_self(NAME, "child");
        return;
    }
    let (tx, rx) = UnixStream::pair().unwrap();
    // A message that never comes fails the test instead of hanging it.
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let file: OwnedFd = tempfile::tempfile().unwrap().into();
    rustix::fs::ftruncate(&file, 4096).unwrap();
    let (sock, _other) = UnixStream::pair().unwrap();
    let sock: OwnedFd = sock.into();
    let dir: OwnedFd = std::fs::File::open("/").unwrap().into();

    let cases: [(&[BorrowedFd<'_>], ErrorKind); 5] = [
        (&[], ErrorKind::MissingDescriptor),
        (&[file.as_fd(), file.as_fd()], ErrorKind::ExtraDescriptors),
        (
            &[file.as_fd(), dir.as_fd(), sock.as_fd()],
            ErrorKind::ExtraDescriptors,
        ),
        (&[sock.as_fd()], ErrorKind::NotRegularFile),
        (&[dir.as_fd()], ErrorKind::NotRegularFile),
    ];
    for (fds, expected) in cases {
        let before = open_fds();
        send_raw(&tx, fds);
        let err = fdpass::recv(&rx).unwrap_err();
        assert_eq!(err.kind(), expected, "{} descriptors", fds.len());
        assert_eq!(
            open_fds(),
            before,
            "a received descriptor leaked ({expected:?})"
        );
    }
    // A plain byte without ancillary data, and the end of the stream.
    (&tx).write_all(&[1]).unwrap();
    assert_eq!(kind(fdpass::recv(&rx)), ErrorKind::MissingDescriptor);
    // A good one still works after all that, and is close-on-exec.
    fdpass::send(&tx, file.as_fd()).unwrap();
    let got = fdpass::recv(&rx).unwrap();
    let flags = rustix::io::fcntl_getfd(&got).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    assert_eq!(MmapRegion::attach_fd(got).unwrap().len(), 4096);
    drop(tx);
    assert_eq!(kind(fdpass::recv(&rx)), ErrorKind::MissingDescriptor);
}

#[test]
fn hole_punched_in_a_sealed_memfd_reads_back_as_zeros_without_a_fault() {
    // F_SEAL_SHRINK does not stop a holder punching holes: the bytes are
    // lost, but the pages come back as zeros on the next touch (shmem), so
    // a peer reading there gets zeros, not SIGBUS.
    let host = MmapRegion::create_sealed("punched", 3 * 4096).unwrap();
    let r = host.region();
    for page in 0..3u8 {
        r.write_at(usize::from(page) * 4096, &[page + 1; 4096])
            .unwrap();
    }
    rustix::fs::fallocate(
        host.fd().unwrap(),
        rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
        4096,
        4096,
    )
    .unwrap();
    let peer = MmapOptions::new()
        .require_shrink_seal(true)
        .attach_fd(host.fd().unwrap().try_clone_to_owned().unwrap())
        .unwrap();
    let mut buf = [0xFFu8; 4096];
    for (page, want) in [(0usize, 1u8), (1, 0), (2, 3)] {
        for view in [&r, &peer.region()] {
            view.read_at(page * 4096, &mut buf).unwrap();
            assert!(buf.iter().all(|&b| b == want), "page {page}");
        }
    }
    assert_eq!(peer.len(), 3 * 4096);
}
