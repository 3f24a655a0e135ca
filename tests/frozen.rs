//! Frozen regions (`MmapRegion::freeze`, `Frozen`) and read-only sharing
//! (`MmapRegion::share_read_only`, `MmapOptions::require_write_seal`): every
//! route to a write the kernel must refuse is tried, within one process and
//! across real ones.
#![cfg(all(target_os = "linux", not(miri)))]
#![cfg(unix)]
// The write routes below include `mmap` and `mprotect`, which take
// `unsafe`; each use is justified where it appears.
#![allow(unsafe_code)]
// Those calls are what the kernel must refuse here, not mapping code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use rustix::fs::{FallocateFlags, MemfdFlags, Mode, OFlags, SealFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
use shm_region::{fdpass, ErrorKind, FileCleanup, Frozen, MmapOptions, MmapRegion};

fn ps() -> usize {
    rustix::param::page_size()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

fn seals(fd: BorrowedFd<'_>) -> SealFlags {
    rustix::fs::fcntl_get_seals(fd).unwrap()
}

fn ino(fd: BorrowedFd<'_>) -> u64 {
    rustix::fs::fstat(fd).unwrap().st_ino
}

fn is_read_only(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fcntl_getfl(fd).unwrap() & OFlags::RWMODE == OFlags::RDONLY
}

/// The file open at `fd`, opened again read-write through `/proc/self/fd`
/// (how a same-user peer gets write access to a descriptor it was given
/// read-only).
fn reopen_rdwr(fd: BorrowedFd<'_>) -> OwnedFd {
    rustix::fs::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

/// Tries a writable shared mapping of one page of `fd`; returns the error
/// (and unmaps the page, failing the test, if the kernel allowed it).
fn writable_mmap_error(fd: BorrowedFd<'_>) -> Errno {
    // SAFETY: a null hint without MAP_FIXED: the kernel picks a free range,
    // so nothing existing is replaced; a mapping made is unmapped at once.
    let res = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            ps(),
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            fd,
            0,
        )
    };
    match res {
        Ok(p) => {
            // SAFETY: `p` is the page the call above just mapped.
            unsafe { rustix::mm::munmap(p, ps()) }.unwrap();
            panic!("a writable shared mapping was allowed");
        }
        Err(e) => e,
    }
}

/// A memfd of `len` bytes of [`pattern`], mode 0600, with `seals` added.
fn memfd(len: usize, seals: SealFlags) -> OwnedFd {
    let fd = rustix::fs::memfd_create(
        "frozen-test",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .unwrap();
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600)).unwrap();
    let data = pattern(len);
    let mut off = 0;
    while off < len {
        off += rustix::io::pwrite(&fd, &data[off..], u64::try_from(off).unwrap()).unwrap();
    }
    rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
    fd
}

/// A region from `create_sealed` holding [`pattern`] over `len` bytes.
fn patterned(len: usize) -> MmapRegion {
    let r = MmapRegion::create_sealed("frozen-test", len).unwrap();
    r.region().write_at(0, &pattern(len)).unwrap();
    r
}

#[test]
fn create_sealed_leaves_the_seal_set_open_with_shrink_only() {
    let r = MmapRegion::create_sealed("open", 4096).unwrap();
    assert_eq!(seals(r.fd().unwrap()), SealFlags::SHRINK);
}

#[test]
fn freeze_seals_everything_and_gives_the_regions_bytes_as_a_slice() {
    let mut r = patterned(3 * ps());
    r.resize(5 * ps()).unwrap();
    r.region().write_at(5 * ps() - 4, b"tail").unwrap();
    let ino_before = ino(r.fd().unwrap());
    let frozen = r.freeze().unwrap();
    assert_eq!(frozen.len(), 5 * ps());
    assert!(!frozen.is_empty());
    assert_eq!(&frozen[..3 * ps()], &pattern(3 * ps())[..]);
    assert!(frozen[3 * ps()..5 * ps() - 4].iter().all(|&b| b == 0));
    assert_eq!(&frozen.as_ref()[5 * ps() - 4..], b"tail");
    assert_eq!(
        seals(frozen.fd()),
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL
    );
    assert!(is_read_only(frozen.fd()));
    assert_eq!(ino(frozen.fd()), ino_before);
}

#[test]
fn frozen_bytes_refuse_every_write_route() {
    let len = 2 * ps();
    let frozen = patterned(len).freeze().unwrap();
    let fd = frozen.fd();
    let rw = reopen_rdwr(fd);
    // Write calls, through the read-only descriptor and a read-write one.
    assert_eq!(rustix::io::pwrite(fd, b"x", 0), Err(Errno::BADF));
    assert_eq!(rustix::io::pwrite(&rw, b"x", 0), Err(Errno::PERM));
    assert_eq!(rustix::io::write(&rw, b"x"), Err(Errno::PERM));
    // Size changes, both ways.
    assert_eq!(rustix::fs::ftruncate(&rw, 1), Err(Errno::PERM));
    assert_eq!(
        rustix::fs::ftruncate(&rw, u64::try_from(4 * len).unwrap()),
        Err(Errno::PERM)
    );
    // Punching a hole would zero bytes.
    assert_eq!(
        rustix::fs::fallocate(
            &rw,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            0,
            u64::try_from(ps()).unwrap()
        ),
        Err(Errno::PERM)
    );
    // Zeroing, collapsing or inserting a range: shmem has no such modes.
    for mode in [
        FallocateFlags::ZERO_RANGE,
        FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
        FallocateFlags::COLLAPSE_RANGE,
        FallocateFlags::INSERT_RANGE,
    ] {
        assert_eq!(
            rustix::fs::fallocate(&rw, mode, 0, u64::try_from(ps()).unwrap()),
            Err(Errno::NOTSUP),
            "{mode:?}"
        );
    }
    // The kernel's own copy from another file.
    let src = memfd(16, SealFlags::empty());
    let mut at = 0u64;
    assert_eq!(
        rustix::fs::copy_file_range(&src, None, &rw, Some(&mut at), 16),
        Err(Errno::PERM)
    );
    // A writable shared mapping, from either descriptor.
    assert_eq!(writable_mmap_error(rw.as_fd()), Errno::PERM);
    assert_eq!(writable_mmap_error(fd), Errno::ACCESS);
    // Making the frozen pages themselves writable.
    // SAFETY: on success this would only change the protection of pages the
    // `Frozen` owns (no access is made through them here); the kernel
    // refusing is what is tested.
    let res = unsafe {
        rustix::mm::mprotect(
            frozen.as_ptr().cast_mut().cast::<c_void>(),
            len,
            MprotectFlags::READ | MprotectFlags::WRITE,
        )
    };
    assert_eq!(res, Err(Errno::ACCESS));
    // Another process's way in: writing this process's memory by address.
    let data = *b"pv";
    let local = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: 2,
    };
    let remote = libc::iovec {
        iov_base: frozen.as_ptr().cast_mut().cast(),
        iov_len: 2,
    };
    let pid = i32::try_from(std::process::id()).unwrap();
    // SAFETY: the iovecs describe 2 readable local bytes and 2 bytes of the
    // frozen mapping; the kernel refusing to write there is what is tested
    // (were it to write, only the frozen bytes would change, which the
    // assertions below report).
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    assert_eq!(n, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EFAULT)
    );
    // Every byte and the size are as frozen.
    assert_eq!(&frozen[..], &pattern(len)[..]);
    assert_eq!(
        rustix::fs::fstat(&rw).unwrap().st_size,
        i64::try_from(len).unwrap()
    );
}

#[test]
fn freeze_refuses_while_a_view_lives_and_gives_the_region_back_unchanged() {
    let r = patterned(ps());
    let view = r.region();
    let (generation, ptr) = (r.generation(), view.as_ptr());
    let err = r.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    assert_eq!(
        err.error().raw_os_error(),
        None,
        "found before asking the kernel"
    );
    assert_eq!(
        err.to_string(),
        "freeze: a Region view or shared word of this handle maps the file writable: drop them first"
    );
    let r = err.into_region().unwrap();
    assert_eq!((r.generation(), r.region().as_ptr()), (generation, ptr));
    assert!(view.is_current());
    view.write_at(0, b"still writable").unwrap();
    assert_eq!(seals(r.fd().unwrap()), SealFlags::SHRINK, "nothing sealed");
    // A shared word keeps the mapping too.
    let word = view.shared_u32(8).unwrap();
    drop(view);
    let err = r.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    let r = err.into_region().unwrap();
    drop(word);
    let frozen = r.freeze().unwrap();
    assert_eq!(&frozen[..14], b"still writable");
}

#[test]
fn freeze_refused_by_the_kernel_for_a_peer_handle_maps_the_region_anew() {
    let r = patterned(ps());
    let peer = r.peer().unwrap();
    assert_eq!(r.generation(), 0);
    let err = r.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    assert_eq!(err.error().raw_os_error(), Some(libc::EBUSY));
    assert_eq!(err.error().io_kind(), std::io::ErrorKind::ResourceBusy);
    assert!(err.to_string().starts_with(
        "freeze: another writable mapping of the file exists (a peer handle, or a mapping in another process) ("
    ));
    let mut r = err.into_region().unwrap();
    assert_eq!(r.generation(), 2, "released (+1), mapped anew (+1)");
    assert_eq!(r.len(), ps());
    assert_eq!(seals(r.fd().unwrap()), SealFlags::SHRINK, "nothing sealed");
    r.region().write_at(0, b"after").unwrap();
    let mut b = [0u8; 5];
    peer.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"after");
    let mut rest = vec![0u8; ps() - 5];
    r.region().read_at(5, &mut rest).unwrap();
    assert_eq!(rest, pattern(ps())[5..]);
    r.resize(2 * ps()).unwrap();
    assert_eq!(r.generation(), 3);
    // Converted into `io::Error`, the kind stays.
    let io: std::io::Error = r.peer().unwrap().freeze().unwrap_err().into();
    assert_eq!(io.kind(), std::io::ErrorKind::ResourceBusy);
    drop(peer);
    let frozen = r.freeze().unwrap();
    assert_eq!(frozen.len(), 2 * ps());
    assert_eq!(&frozen[..5], b"after");
}

/// A descriptor of `region`'s file.
fn r_clone_fd(region: &MmapRegion) -> OwnedFd {
    region.fd().unwrap().try_clone_to_owned().unwrap()
}

/// The child of the cross-process tests: receives the descriptor over
/// `socket`, then plays `what`.
fn child(socket: &str, what: &str) {
    let stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let fd = fdpass::recv(&stream).unwrap();
    match what {
        // Maps the file writable, says so in word 0, waits for word 8.
        "writer" => {
            let region = MmapRegion::attach_fd(fd).unwrap();
            let r = region.region();
            r.write_at(64, b"child").unwrap();
            r.atomic_u64(0).unwrap().store(1, Ordering::Release);
            wait_until(Duration::from_secs(60), "the parent's go", || {
                r.atomic_u64(8).unwrap().load(Ordering::Acquire) == 1
            });
        }
        // Maps the read-only descriptor (requiring the write seal), checks
        // that it cannot write, then reads what the parent writes later.
        "reader" => {
            assert!(is_read_only(fd.as_fd()));
            assert_eq!(rustix::io::pwrite(&fd, b"x", 0), Err(Errno::BADF));
            assert_eq!(
                rustix::io::pwrite(reopen_rdwr(fd.as_fd()), b"x", 0),
                Err(Errno::PERM)
            );
            assert_eq!(
                writable_mmap_error(reopen_rdwr(fd.as_fd()).as_fd()),
                Errno::PERM
            );
            let region = MmapOptions::new()
                .require_write_seal(true)
                .require_shrink_seal(true)
                .attach_fd_read_only(fd)
                .unwrap();
            let r = region.region();
            assert_eq!(r.load_u64(0, Ordering::Acquire).unwrap(), 1);
            let mut stream = stream;
            std::io::Write::write_all(&mut stream, b"r").unwrap();
            wait_until(Duration::from_secs(60), "the parent's second write", || {
                r.load_u64(0, Ordering::Acquire).unwrap() == 2
            });
            let mut b = [0u8; 6];
            r.read_at(100, &mut b).unwrap();
            assert_eq!(&b, b"parent");
        }
        other => panic!("unknown role {other}"),
    }
}

/// Starts this test again as a child in `what`, and sends it `fd`.
fn spawn_child(
    test: &str,
    what: &str,
    fd: BorrowedFd<'_>,
) -> (std::process::Child, UnixStream, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let child = spawn_self(test, &format!("{}\n{what}", socket.to_str().unwrap()), &[])
        .spawn()
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    fdpass::send(&stream, fd).unwrap();
    (child, stream, dir)
}

fn child_role() -> Option<(String, String)> {
    let role = role()?;
    let (socket, what) = role.split_once('\n').unwrap();
    Some((socket.to_owned(), what.to_owned()))
}

#[test]
fn freeze_refused_while_another_process_maps_the_file_writable() {
    const NAME: &str = "freeze_refused_while_another_process_maps_the_file_writable";
    if let Some((socket, what)) = child_role() {
        child(&socket, &what);
        return;
    }
    let region = MmapRegion::create_sealed("cross", ps()).unwrap();
    let (mut c, _stream, _dir) = spawn_child(NAME, "writer", region.fd().unwrap());
    let view = region.region();
    wait_until(Duration::from_secs(60), "the child's mapping", || {
        let exited = c.try_wait().unwrap();
        assert!(exited.is_none(), "the child ended early: {exited:?}");
        view.load_u64(0, Ordering::Acquire).unwrap() == 1
    });
    drop(view);
    let err = region.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    assert_eq!(err.error().raw_os_error(), Some(libc::EBUSY));
    let region = err.into_region().unwrap();
    // Given back mapped anew: its own mapping was released (+1) for the
    // kernel to refuse, and made again (+1).
    assert_eq!(region.generation(), 2, "released (+1), mapped anew (+1)");
    let go = region.region();
    go.atomic_u64(8).unwrap().store(1, Ordering::Release);
    drop(go);
    assert_child_succeeds(&mut c);
    let frozen = region.freeze().unwrap();
    assert_eq!(&frozen[64..69], b"child");
}

#[test]
fn freeze_of_a_file_at_a_path_or_in_memory_is_unsupported_and_gives_the_region_back() {
    let dir = tempfile::tempdir().unwrap();
    let at_path = MmapRegion::create(dir.path().join("seg"), 4096, FileCleanup::Manual).unwrap();
    let err = at_path.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(
        err.to_string(),
        "freeze: the file cannot be sealed: only Linux memfds made with MFD_ALLOW_SEALING (create_sealed) can"
    );
    let at_path = err.into_region().unwrap();
    at_path.region().write_at(0, b"ok").unwrap();
    assert_eq!(kind(at_path.share_read_only()), ErrorKind::Unsupported);
    let mem = MmapRegion::in_memory(4096).unwrap();
    let err = mem.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let mem = err.into_region().unwrap();
    mem.region().write_at(0, b"ok").unwrap();
    assert_eq!(kind(mem.share_read_only()), ErrorKind::Unsupported);
}

#[test]
fn a_peer_adding_f_seal_grow_makes_resize_fail_with_sealed_and_the_region_keeps_working() {
    let mut r = patterned(ps());
    let peer_fd = r_clone_fd(&r);
    rustix::fs::fcntl_add_seals(&peer_fd, SealFlags::GROW).unwrap();
    let err = r.resize(2 * ps()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sealed);
    assert_eq!(
        err.to_string(),
        "resize: the file is sealed against growth or writes, so its size is fixed (share_read_only adds F_SEAL_GROW) (the file's seals: F_SEAL_SHRINK | F_SEAL_GROW)"
    );
    assert_eq!((r.len(), r.generation()), (ps(), 0));
    r.region().write_at(0, b"works").unwrap();
    assert!(!r.check_and_remap().unwrap());
    let frozen = r.freeze().unwrap();
    assert_eq!(&frozen[..5], b"works");
}

#[test]
fn a_peer_adding_f_seal_future_write_keeps_existing_views_writing_and_refuses_new_mappings() {
    let mut r = patterned(ps());
    let before = r.region();
    rustix::fs::fcntl_add_seals(r_clone_fd(&r), SealFlags::FUTURE_WRITE).unwrap();
    before.write_at(0, b"old view").unwrap();
    r.region().write_at(16, b"new view").unwrap();
    assert_eq!(kind(r.resize(2 * ps())), ErrorKind::Sealed);
    let err = r.peer().unwrap_err();
    assert_eq!(
        (err.kind(), err.raw_os_error()),
        (ErrorKind::Os, Some(libc::EPERM))
    );
    let ro = r.share_read_only().unwrap();
    let reader = MmapOptions::new()
        .require_write_seal(true)
        .attach_fd_read_only(ro)
        .unwrap();
    let mut b = [0u8; 24];
    reader.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b[..8], b"old view");
    assert_eq!(&b[16..], b"new view");
}

#[test]
fn a_peer_adding_f_seal_seal_makes_freeze_fail_with_sealed_and_gives_the_region_back() {
    let r = patterned(ps());
    rustix::fs::fcntl_add_seals(r_clone_fd(&r), SealFlags::SEAL).unwrap();
    let err = r.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sealed);
    assert_eq!(
        err.to_string(),
        "freeze: a holder locked the file's seals (F_SEAL_SEAL): no seal can be added (the file's seals: F_SEAL_SEAL | F_SEAL_SHRINK)"
    );
    let mut r = err.into_region().unwrap();
    assert_eq!(r.generation(), 0);
    r.region().write_at(0, b"fine").unwrap();
    r.resize(2 * ps()).unwrap();
    assert_eq!(kind(r.share_read_only()), ErrorKind::Sealed);
    assert_eq!(rustix::fs::ftruncate(r.fd().unwrap(), 0), Err(Errno::PERM));
}

#[test]
fn frozen_clones_share_one_mapping_that_outlives_the_original_across_threads() {
    fn send_sync<T: Send + Sync + Clone + 'static>() {}
    send_sync::<Frozen>();
    let frozen = patterned(ps()).freeze().unwrap();
    let copy = frozen.clone();
    assert_eq!(copy.as_ptr(), frozen.as_ptr());
    assert_eq!(copy.fd().as_raw_fd(), frozen.fd().as_raw_fd());
    drop(frozen);
    let sum = std::thread::spawn(move || copy.iter().map(|&b| u64::from(b)).sum::<u64>())
        .join()
        .unwrap();
    assert_eq!(
        sum,
        pattern(ps()).iter().map(|&b| u64::from(b)).sum::<u64>()
    );
}

#[test]
fn frozen_attach_fd_requires_write_grow_and_shrink_seals_naming_the_missing_ones() {
    let len = 3 * ps() + 5;
    let err = Frozen::attach_fd(memfd(len, SealFlags::SHRINK)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSealed);
    assert_eq!(
        err.to_string(),
        "Frozen::attach_fd: descriptor is not sealed with F_SEAL_GROW | F_SEAL_WRITE (Frozen::attach_fd requires F_SEAL_WRITE, F_SEAL_GROW and F_SEAL_SHRINK)"
    );
    assert_eq!(
        kind(Frozen::attach_fd(memfd(
            len,
            SealFlags::WRITE | SealFlags::GROW
        ))),
        ErrorKind::NotSealed
    );
    // Future-write is not enough: mappings made before it still write.
    assert_eq!(
        kind(Frozen::attach_fd(memfd(
            len,
            SealFlags::FUTURE_WRITE | SealFlags::GROW | SealFlags::SHRINK
        ))),
        ErrorKind::NotSealed
    );
    // A file on a file system cannot carry seals at all.
    let file = tempfile::tempfile().unwrap();
    file.set_len(4096).unwrap();
    let err = Frozen::attach_fd(file.into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSealed);
    assert!(err
        .to_string()
        .contains("not sealed with F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE"));
    // All three, without F_SEAL_SEAL, through a read-write descriptor:
    // reopened read-only, the whole file mapped.
    let fd = memfd(len, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK);
    let id = ino(fd.as_fd());
    let frozen = Frozen::attach_fd(fd).unwrap();
    assert!(is_read_only(frozen.fd()));
    assert_eq!(ino(frozen.fd()), id);
    assert_eq!(&frozen[..], &pattern(len)[..]);
}

#[test]
fn frozen_attach_fd_refuses_what_attach_fd_refuses() {
    let (sock, _other) = UnixStream::pair().unwrap();
    assert_eq!(
        kind(Frozen::attach_fd(sock.into())),
        ErrorKind::NotRegularFile
    );
    let empty = memfd(0, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK);
    assert_eq!(kind(Frozen::attach_fd(empty)), ErrorKind::EmptyFile);
    // No address space for the mapping (RLIMIT_AS, process-wide: a child).
    const NAME: &str = "frozen_attach_fd_refuses_what_attach_fd_refuses";
    match role().as_deref() {
        None => run_self(NAME, "no-room"),
        Some("no-room") => {
            use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
            let fd = memfd(
                64 << 20,
                SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK,
            );
            let used = proc_status_bytes("VmSize:");
            setrlimit(
                Resource::As,
                Rlimit {
                    current: Some(u64::try_from(used + (16 << 20)).unwrap()),
                    maximum: getrlimit(Resource::As).maximum,
                },
            )
            .unwrap();
            // Refused before mapping: past a quarter of what is left.
            let err = Frozen::attach_fd(fd).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
            let msg = err.to_string();
            let left: usize = msg
                .strip_prefix("Frozen::attach_fd: size 67108864 is past a quarter of the ")
                .and_then(|rest| {
                    rest.strip_suffix(
                        " bytes of address space left; Frozen::attach_fd takes no max_size: \
                     MmapOptions::max_size with attach_fd_read_only maps it as a region",
                    )
                })
                .unwrap_or_else(|| panic!("{msg}"))
                .parse()
                .unwrap();
            assert!(left <= 16 << 20 && left / 4 < 64 << 20, "{msg}");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn frozen_attach_fd_maps_a_memfd_a_python_peer_sealed_and_sent() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let script = r#"
import os, socket, fcntl, sys
fd = os.memfd_create("py", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
os.write(fd, b"sealed by python" * 1000)
fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
socket.send_fds(s, [b"x"], [fd])
s.recv(1)
"#;
    let mut py = std::process::Command::new("python3")
        .args(["-c", script, socket.to_str().unwrap()])
        .spawn()
        .expect("python3 is needed for this interop test");
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let frozen = Frozen::attach_fd(fdpass::recv(&stream).unwrap()).unwrap();
    drop(stream);
    assert_eq!(frozen.len(), 16_000);
    assert_eq!(&frozen[..], &b"sealed by python".repeat(1000)[..]);
    assert!(wait_with_timeout(&mut py, Duration::from_secs(30)).success());
}

#[test]
fn share_read_only_seals_and_no_descriptor_can_write_any_more() {
    let r = patterned(2 * ps());
    let before = r.region();
    let ro = r.share_read_only().unwrap();
    let owner = r.fd().unwrap();
    assert_eq!(
        seals(owner),
        SealFlags::SHRINK | SealFlags::GROW | SealFlags::FUTURE_WRITE
    );
    assert!(is_read_only(ro.as_fd()));
    assert_eq!(ino(ro.as_fd()), ino(owner));
    // The owner's own descriptor.
    assert_eq!(rustix::io::pwrite(owner, b"x", 0), Err(Errno::PERM));
    assert_eq!(writable_mmap_error(owner), Errno::PERM);
    assert_eq!(rustix::fs::ftruncate(owner, 1), Err(Errno::PERM));
    // The read-only one, and a read-write reopening of it.
    assert_eq!(rustix::io::pwrite(&ro, b"x", 0), Err(Errno::BADF));
    assert_eq!(writable_mmap_error(ro.as_fd()), Errno::ACCESS);
    let rw = reopen_rdwr(ro.as_fd());
    assert_eq!(rustix::io::pwrite(&rw, b"x", 0), Err(Errno::PERM));
    assert_eq!(writable_mmap_error(rw.as_fd()), Errno::PERM);
    // The owner's mapping keeps writing, through old and new views.
    before.write_at(0, b"old").unwrap();
    r.region().write_at(3, b"new").unwrap();
    let mut b = [0u8; 6];
    rustix::io::pread(&ro, &mut b, 0).unwrap();
    assert_eq!(&b, b"oldnew");
    // Again: nothing to add, another descriptor.
    let again = r.share_read_only().unwrap();
    assert!(is_read_only(again.as_fd()));
    assert_ne!(again.as_raw_fd(), ro.as_raw_fd());
}

#[test]
fn after_share_read_only_resize_is_sealed_and_a_writable_peer_is_refused() {
    let mut r = patterned(ps());
    let _ro = r.share_read_only().unwrap();
    let err = r.resize(2 * ps()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sealed);
    assert!(err
        .to_string()
        .ends_with("(the file's seals: F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE)"));
    assert_eq!((r.len(), r.generation()), (ps(), 0));
    r.resize(ps()).unwrap();
    assert_eq!(kind(r.peer()), ErrorKind::Os);
    let reader = MmapOptions::new()
        .attach_fd_read_only(r_clone_fd(&r))
        .unwrap();
    assert!(reader.is_read_only());
}

#[test]
fn a_child_process_reads_through_the_read_only_descriptor_what_the_owner_writes_after_sharing() {
    const NAME: &str =
        "a_child_process_reads_through_the_read_only_descriptor_what_the_owner_writes_after_sharing";
    if let Some((socket, what)) = child_role() {
        child(&socket, &what);
        return;
    }
    let region = MmapRegion::create_sealed("shared", ps()).unwrap();
    let r = region.region();
    r.atomic_u64(0).unwrap().store(1, Ordering::Release);
    let ro = region.share_read_only().unwrap();
    let (mut c, mut stream, _dir) = spawn_child(NAME, "reader", ro.as_fd());
    let mut ack = [0u8; 1];
    std::io::Read::read_exact(&mut stream, &mut ack).unwrap();
    r.write_at(100, b"parent").unwrap();
    r.atomic_u64(0).unwrap().store(2, Ordering::Release);
    assert_child_succeeds(&mut c);
}

#[test]
fn require_write_seal_refuses_descriptors_without_a_write_seal() {
    let mut strict = MmapOptions::new();
    strict.require_write_seal(true);
    let err = strict
        .attach_fd_read_only(memfd(4096, SealFlags::SHRINK))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSealed);
    assert_eq!(
        err.to_string(),
        "attach_fd_read_only: descriptor is not sealed with F_SEAL_FUTURE_WRITE (require_write_seal asks for F_SEAL_FUTURE_WRITE or F_SEAL_WRITE)"
    );
    let file = tempfile::tempfile().unwrap();
    file.set_len(4096).unwrap();
    assert_eq!(
        kind(strict.attach_fd_read_only(file.into())),
        ErrorKind::NotSealed
    );
    // Either write seal is enough.
    let shared = patterned(4096);
    let ro = shared.share_read_only().unwrap();
    assert!(strict.attach_fd_read_only(ro).unwrap().is_read_only());
    let write_sealed = memfd(4096, SealFlags::WRITE);
    assert!(strict.attach_fd_read_only(write_sealed).is_ok());
    // Without the option the unsealed descriptor attaches.
    assert!(MmapOptions::new()
        .attach_fd_read_only(memfd(4096, SealFlags::SHRINK))
        .is_ok());
}

#[test]
fn a_region_shared_read_only_can_still_be_frozen() {
    let r = patterned(ps());
    let ro = r.share_read_only().unwrap();
    let frozen = r.freeze().unwrap();
    assert_eq!(
        seals(frozen.fd()),
        SealFlags::SEAL
            | SealFlags::SHRINK
            | SealFlags::GROW
            | SealFlags::WRITE
            | SealFlags::FUTURE_WRITE
    );
    assert_eq!(&frozen[..], &pattern(ps())[..]);
    assert_eq!(Frozen::attach_fd(ro).unwrap()[..], pattern(ps())[..]);
}

#[test]
fn a_shared_word_of_an_older_mapping_is_found_by_the_kernel_and_the_region_mapped_anew() {
    // A reservation of exactly one page: growing to two makes a new mapping.
    let mut r = MmapOptions::new()
        .address_space(ps())
        .create_sealed("older", ps())
        .unwrap();
    let word = r.region().shared_u32(0).unwrap();
    let old_ptr = r.region().as_ptr();
    r.resize(2 * ps()).unwrap();
    assert_ne!(r.region().as_ptr(), old_ptr, "moved to a new mapping");
    let err = r.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    assert_eq!(err.error().raw_os_error(), Some(libc::EBUSY));
    let r = err.into_region().unwrap();
    assert_eq!((r.generation(), r.len()), (3, 2 * ps()));
    word.store(7, Ordering::Release);
    assert_eq!(r.region().load_u32(0, Ordering::Acquire).unwrap(), 7);
    drop(word);
    assert_eq!(r.freeze().unwrap()[..4], 7u32.to_ne_bytes());
}

/// The first hole of the file (`SEEK_HOLE` from 0; the size if none).
fn first_hole(fd: BorrowedFd<'_>) -> u64 {
    rustix::fs::seek(fd, rustix::fs::SeekFrom::Hole(0)).unwrap()
}

#[test]
fn frozen_attach_fd_refuses_a_sparse_sealed_memfd_naming_the_first_hole() {
    let page = u64::try_from(ps()).unwrap();
    let fd = rustix::fs::memfd_create("sparse", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .unwrap();
    rustix::fs::ftruncate(&fd, 4 * page).unwrap();
    rustix::io::pwrite(&fd, b"first", 0).unwrap();
    rustix::io::pwrite(&fd, b"third", 2 * page).unwrap();
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .unwrap();
    let err = Frozen::attach_fd(fd).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(
        err.to_string(),
        format!(
            "Frozen::attach_fd: the sealed file of {} bytes has a hole at offset {page} (reading a hole allocates memory, and raises SIGBUS if that is refused): write every page (or read it once through a shared mapping, after fallocate) before sealing the file",
            4 * page
        )
    );
    // Allocated but never written, pages still count as holes.
    let fd =
        rustix::fs::memfd_create("alloc", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&fd, 4 * page).unwrap();
    rustix::fs::fallocate(&fd, FallocateFlags::empty(), 0, 4 * page).unwrap();
    rustix::io::pwrite(&fd, b"first", 0).unwrap();
    rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK)
        .unwrap();
    assert_eq!(kind(Frozen::attach_fd(fd)), ErrorKind::Unsupported);
    // Every page written: it maps.
    let mut data = vec![0u8; 4 * ps()];
    data[..5].copy_from_slice(b"first");
    let fd =
        rustix::fs::memfd_create("dense", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    let mut off = 0;
    while off < data.len() {
        off += rustix::io::pwrite(&fd, &data[off..], u64::try_from(off).unwrap()).unwrap();
    }
    rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK)
        .unwrap();
    let frozen = Frozen::attach_fd(fd).unwrap();
    assert_eq!(frozen.len(), 4 * ps());
    assert_eq!(&frozen[..5], b"first");
    assert!(frozen[5..].iter().all(|&b| b == 0));
}

#[test]
fn frozen_attach_fd_refuses_a_32_tib_sparse_sealed_memfd() {
    let fd =
        rustix::fs::memfd_create("huge", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&fd, 1 << 45).unwrap();
    rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK)
        .unwrap();
    let err = Frozen::attach_fd(fd).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(
        err.to_string()
            .contains("the sealed file of 35184372088832 bytes has a hole at offset 0"),
        "{err}"
    );
}

#[test]
fn freeze_allocates_a_sparse_region_so_the_frozen_file_has_no_hole() {
    let len = 1 << 20;
    let r = MmapOptions::new()
        .reserve_blocks(false)
        .create_sealed("sparse", len)
        .unwrap();
    r.region().write_at(0, b"head").unwrap();
    // Sparse before: everything past the first page is a hole.
    assert_eq!(first_hole(r.fd().unwrap()), u64::try_from(ps()).unwrap());
    let frozen = r.freeze().unwrap();
    assert_eq!(frozen.len(), len);
    assert_eq!(first_hole(frozen.fd()), u64::try_from(len).unwrap());
    let st = rustix::fs::fstat(frozen.fd()).unwrap();
    assert!(u64::try_from(st.st_blocks).unwrap() * 512 >= u64::try_from(len).unwrap());
    assert_eq!(&frozen[..4], b"head");
    assert!(frozen[4..].iter().all(|&b| b == 0));
    // A receiver maps it.
    let again = Frozen::attach_fd(frozen.fd().try_clone_to_owned().unwrap()).unwrap();
    assert_eq!(again.len(), len);
}

#[test]
fn a_freeze_refused_after_share_read_only_gives_the_region_back_read_only_and_can_be_retried() {
    let r = patterned(ps());
    let peer = r.peer().unwrap(); // writable, made before sharing
    let _ro = r.share_read_only().unwrap();
    let err = r.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    let r = err.into_region().expect("the region comes back");
    // Mapped read-only now: F_SEAL_FUTURE_WRITE refuses a writable mapping.
    assert!(r.is_read_only());
    assert_eq!(r.len(), ps());
    let mut buf = vec![0; ps()];
    r.region().read_at(0, &mut buf).unwrap();
    assert_eq!(buf, pattern(ps()));
    assert_eq!(
        r.region().write_at(0, b"x").unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    // The peer's mapping still writes, and the region reads it.
    peer.region().write_at(0, b"peer").unwrap();
    r.region().read_at(0, &mut buf[..4]).unwrap();
    assert_eq!(&buf[..4], b"peer");
    // Still busy while the peer lives; the region comes back again.
    let err = r.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    let r = err.into_region().expect("the region comes back again");
    drop(peer);
    let frozen = r.freeze().unwrap();
    assert_eq!(&frozen[..4], b"peer");
    assert_eq!(&frozen[4..], &pattern(ps())[4..]);
    assert!(seals(frozen.fd())
        .contains(SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL));
}

#[test]
fn freeze_of_an_attached_region_a_peer_shrank_is_truncated_and_gives_the_region_back() {
    for cut in [ps(), 0] {
        let fd = memfd(2 * ps(), SealFlags::empty());
        let r = MmapOptions::new()
            .attach_fd(fd.try_clone().unwrap())
            .unwrap();
        assert_eq!(r.len(), 2 * ps());
        rustix::fs::ftruncate(&fd, u64::try_from(cut).unwrap()).unwrap(); // the peer
        let err = r.freeze().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated, "cut {cut}: {err}");
        // Only the shrink seal was added: no write seal, no seal of seals.
        assert_eq!(seals(fd.as_fd()), SealFlags::SHRINK);
        let r = err.into_region().expect("the region comes back");
        assert!(!r.is_read_only());
        assert_eq!(
            rustix::fs::fstat(&fd).unwrap().st_size,
            i64::try_from(cut).unwrap()
        );
        if cut > 0 {
            let mut buf = vec![0; cut];
            r.region().read_at(0, &mut buf).unwrap();
            assert_eq!(buf, pattern(cut));
        }
    }
}

/// A holder of a writable descriptor grows the memfd to 1 GiB (sparse: one
/// `ftruncate`) before the owner freezes its one-page region: `freeze`
/// refuses it with `FileTooLarge` naming both sizes and the way out, before
/// allocating anything or adding a seal past `F_SEAL_SHRINK`, and gives the
/// region back writable; following the growth is the owner's choice.
#[test]
fn freeze_refuses_a_file_a_peer_grew_past_the_region_and_allocates_nothing() {
    let r = patterned(ps());
    let peer = reopen_rdwr(r.fd().unwrap());
    let grown: u64 = 1 << 30;
    rustix::fs::ftruncate(&peer, grown).unwrap();
    let blocks = || rustix::fs::fstat(&peer).unwrap().st_blocks;
    let before = blocks();
    assert!(
        before <= i64::try_from(ps() / 512).unwrap(),
        "{before} blocks"
    );
    let err = r.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "the file is {grown} bytes, past the region's {}",
            ps()
        )),
        "{msg}"
    );
    assert!(msg.contains("check_and_remap"), "{msg}");
    // Nothing allocated, only the shrink seal (already there) on.
    assert_eq!(blocks(), before);
    assert_eq!(seals(peer.as_fd()), SealFlags::SHRINK);
    let r = err.into_region().expect("the region comes back");
    assert!(!r.is_read_only());
    assert_eq!(r.len(), ps());
    let mut buf = vec![0; ps()];
    r.region().read_at(0, &mut buf).unwrap();
    assert_eq!(buf, pattern(ps()));
    r.region().write_at(0, b"still writable").unwrap();
}

#[test]
fn freeze_and_share_read_only_of_a_read_only_handle_are_read_only_errors() {
    let owner = patterned(ps());
    let ro = rustix::fs::open(
        format!("/proc/self/fd/{}", owner.fd().unwrap().as_raw_fd()).as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let h = MmapOptions::new().attach_fd_read_only(ro).unwrap();
    assert_eq!(h.share_read_only().unwrap_err().kind(), ErrorKind::ReadOnly);
    let err = h.freeze().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly);
    let h = err.into_region().expect("the region comes back");
    assert!(h.is_read_only());
    let mut buf = vec![0; ps()];
    h.region().read_at(0, &mut buf).unwrap();
    assert_eq!(buf, pattern(ps()));
    // Nothing was sealed.
    assert_eq!(seals(owner.fd().unwrap()), SealFlags::SHRINK);
}

#[test]
fn the_kernel_refuses_writes_to_the_frozen_range_through_proc_self_mem() {
    let frozen = patterned(ps()).freeze().unwrap();
    let mem = rustix::fs::open(
        "/proc/self/mem",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let addr = u64::try_from(frozen.as_ptr() as usize).unwrap();
    assert_eq!(
        rustix::io::pwrite(&mem, b"poke", addr).unwrap_err(),
        Errno::IO
    );
    assert_eq!(&frozen[..], &pattern(ps())[..]);
    // The same descriptor writes ordinary memory of this process.
    let mut own = [0u8; 4];
    let own_addr = u64::try_from(own.as_mut_ptr() as usize).unwrap();
    assert_eq!(rustix::io::pwrite(&mem, b"poke", own_addr).unwrap(), 4);
    // The write went through the kernel, which the compiler cannot see: a
    // plain read of `own` may be folded to the zeros it was initialised
    // with (it is, with optimisations), so the read is volatile.
    // SAFETY: `own` is a live, aligned, initialised local array.
    let seen = unsafe { std::ptr::read_volatile(&own) };
    assert_eq!(seen, *b"poke");
}

#[test]
fn a_read_only_descriptor_holder_can_reopen_it_and_lock_the_seals_but_never_write() {
    let r = patterned(ps());
    let ro = r.share_read_only().unwrap();
    assert!(is_read_only(ro.as_fd()));
    // A mode of 0400 would not stop it: the owner changes the mode back
    // through the read-only descriptor.
    rustix::fs::fchmod(&ro, Mode::from_raw_mode(0o400)).unwrap();
    rustix::fs::fchmod(&ro, Mode::from_raw_mode(0o600)).unwrap();
    assert_eq!(rustix::fs::fstat(&ro).unwrap().st_mode & 0o777, 0o600);
    // Same user: the kernel lets it reopen the file read-write and add
    // seals (here F_SEAL_SEAL, which makes a later freeze fail)...
    let rw = reopen_rdwr(ro.as_fd());
    rustix::fs::fcntl_add_seals(&rw, SealFlags::SEAL).unwrap();
    assert_eq!(
        r.freeze().unwrap_err().kind(),
        ErrorKind::Sealed,
        "the seals are locked"
    );
    // ...but not write it.
    assert_eq!(rustix::io::pwrite(&rw, b"x", 0).unwrap_err(), Errno::PERM);
    assert_eq!(writable_mmap_error(rw.as_fd()), Errno::PERM);
}

/// How many mappings of the inode `ino` `/proc/self/maps` lists.
fn mappings_of(ino: u64) -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some(&ino.to_string()))
        .count()
}

#[test]
fn a_frozen_file_received_again_shares_its_one_mapping_until_the_last_handle_goes() {
    let len = 3 * ps() + 5;
    let fd = memfd(len, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK);
    let id = ino(fd.as_fd());
    // Read-only and read-write descriptors of one file: one mapping, and
    // every handle keeps the descriptor of the first.
    let ro = rustix::fs::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let a = Frozen::attach_fd(ro).unwrap();
    let b = Frozen::attach_fd(fd.try_clone().unwrap()).unwrap();
    assert_eq!(b.as_ptr(), a.as_ptr());
    assert_eq!(b.fd().as_raw_fd(), a.fd().as_raw_fd());
    assert_eq!(&b[..], &pattern(len)[..]);
    assert_eq!(mappings_of(id), 1);
    // Another file with the same bytes is another mapping.
    let other = Frozen::attach_fd(memfd(
        len,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK,
    ))
    .unwrap();
    assert_ne!(other.as_ptr(), a.as_ptr());
    // The mapping lives while any handle does, and goes with the last.
    drop(a);
    assert_eq!(mappings_of(id), 1);
    assert_eq!(&b[..], &pattern(len)[..]);
    drop(b);
    assert_eq!(mappings_of(id), 0);
    let c = Frozen::attach_fd(fd.try_clone().unwrap()).unwrap();
    assert_eq!(mappings_of(id), 1);
    assert_eq!(&c[..], &pattern(len)[..]);
    // Every check still runs for a file already mapped: a descriptor that
    // is no regular file is refused whatever is mapped.
    let (sock, _peer) = UnixStream::pair().unwrap();
    assert_eq!(
        kind(Frozen::attach_fd(sock.into())),
        ErrorKind::NotRegularFile
    );
}

#[test]
fn a_frozen_region_and_its_descriptor_received_back_share_one_mapping() {
    let frozen = patterned(2 * ps()).freeze().unwrap();
    let id = ino(frozen.fd());
    let back = Frozen::attach_fd(frozen.fd().try_clone_to_owned().unwrap()).unwrap();
    assert_eq!(back.as_ptr(), frozen.as_ptr());
    assert_eq!(mappings_of(id), 1);
    assert_eq!(&back[..], &pattern(2 * ps())[..]);
}
