//! `MmapRegion::attach` and `attach_fd`: only regular, non-empty, trusted
//! files are mapped, and refusals come back promptly as errors.
#![cfg(all(unix, not(miri)))]

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::*;
use shm_region::{ErrorKind, FileCleanup, MmapOptions, MmapRegion};

const PROMPT: Duration = Duration::from_secs(5);

fn region_file(dir: &tempfile::TempDir) -> (std::path::PathBuf, MmapRegion) {
    let path = seg(dir);
    let r = MmapRegion::create(&path, 8192, FileCleanup::Manual).unwrap();
    r.region().write_at(100, b"from the creator").unwrap();
    (path, r)
}

fn open_fd(path: &std::path::Path, custom: i32) -> OwnedFd {
    std::fs::OpenOptions::new()
        .read(true)
        .write(custom == 0)
        .custom_flags(custom)
        .open(path)
        .unwrap()
        .into()
}

#[test]
fn attach_maps_the_whole_file_and_sees_the_creators_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _creator) = region_file(&dir);
    let guest = MmapRegion::attach(&path).unwrap();
    assert_eq!(guest.len(), 8192);
    assert_eq!(guest.generation(), 0);
    let mut buf = [0u8; 16];
    guest.region().read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from the creator");
    guest.region().write_at(200, b"guest").unwrap();
    let mut back = [0u8; 5];
    _creator.region().read_at(200, &mut back).unwrap();
    assert_eq!(&back, b"guest");
}

#[test]
fn attach_refuses_symlink_to_a_valid_region() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _creator) = region_file(&dir);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert_eq!(kind(MmapRegion::attach(&link)), ErrorKind::NotRegularFile);
}

#[test]
fn attach_refuses_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    std::fs::create_dir(&path).unwrap();
    let err = MmapRegion::attach(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotRegularFile);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::InvalidInput
    );
}

#[test]
fn attach_of_fifo_returns_promptly_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    mkfifo(&path);
    let p = path.clone();
    let k = within(PROMPT, move || kind(MmapRegion::attach(&p)));
    assert_eq!(k, ErrorKind::NotRegularFile);
    // And by descriptor (opened non-blocking, as a hostile sender might).
    let fd = open_fd(
        &path,
        i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap(),
    );
    let k = within(PROMPT, move || kind(MmapRegion::attach_fd(fd)));
    assert_eq!(k, ErrorKind::NotRegularFile);
}

#[test]
fn attach_refuses_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let p = path.clone();
    assert_eq!(
        within(PROMPT, move || kind(MmapRegion::attach(&p))),
        ErrorKind::NotRegularFile
    );
}

#[test]
fn attach_refuses_devices_by_path_and_by_descriptor() {
    assert_eq!(
        kind(MmapRegion::attach("/dev/null")),
        ErrorKind::NotRegularFile
    );
    let zero: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/zero")
        .unwrap()
        .into();
    assert_eq!(kind(MmapRegion::attach_fd(zero)), ErrorKind::NotRegularFile);
}

#[test]
fn attach_of_empty_file_is_invalid_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    let err = MmapRegion::attach(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EmptyFile);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::InvalidData
    );
    assert_eq!(
        kind(MmapRegion::attach_fd(open_fd(&path, 0))),
        ErrorKind::EmptyFile
    );
}

#[test]
fn attach_of_missing_path_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = MmapRegion::attach(seg(&dir)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::NotFound
    );
}

#[test]
fn attach_refuses_files_writable_by_group_or_others_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _creator) = region_file(&dir);
    for mode in [0o620, 0o602, 0o666] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = MmapRegion::attach(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InsecureMode, "mode {mode:o}");
        assert_eq!(
            std::io::Error::from(err).kind(),
            std::io::ErrorKind::PermissionDenied
        );
        assert_eq!(
            kind(MmapRegion::attach_fd(open_fd(&path, 0))),
            ErrorKind::InsecureMode
        );
        let widened = MmapOptions::new()
            .allow_group_or_other_write(true)
            .attach(&path)
            .unwrap();
        assert_eq!(widened.len(), 8192);
    }
    // Group- or other-readable is fine: only write access lets a peer
    // truncate the file.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(MmapRegion::attach(&path).unwrap().len(), 8192);
}

#[test]
fn attach_refuses_files_owned_by_another_user_unless_allowed() {
    if !is_root() {
        skip(
            "attach_refuses_files_owned_by_another_user_unless_allowed",
            "needs root to chown",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, _creator) = region_file(&dir);
    // nobody; root bypasses the mode bits, so only the uid check refuses it.
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let err = MmapRegion::attach(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UntrustedOwner);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::PermissionDenied
    );
    assert_eq!(
        kind(MmapRegion::attach_fd(open_fd(&path, 0))),
        ErrorKind::UntrustedOwner
    );
    let trusted = MmapOptions::new()
        .allow_other_owner(true)
        .attach(&path)
        .unwrap();
    let mut buf = [0u8; 16];
    trusted.region().read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from the creator");
}

/// Sets this process's real, effective and saved uids (`setresuid`; glibc
/// applies it to every thread), and checks that it took.
fn set_uids(real: u32, effective: u32, saved: u32) {
    // SAFETY: `setresuid` takes plain integers and touches no memory of
    // ours.
    assert_eq!(unsafe { libc::setresuid(real, effective, saved) }, 0);
    assert_eq!(
        (
            rustix::process::getuid().as_raw(),
            rustix::process::geteuid().as_raw()
        ),
        (real, effective)
    );
}

/// The owner check compares a file's owner with the effective uid, the one
/// the kernel checks access with, not the real one. Root runs the suite,
/// where the two are equal; so a child process (this binary re-run) sets
/// them apart with `setresuid` and attaches, by descriptor and by path, a
/// file owned by each: with the real uid 0 and the effective 65534, the
/// file of 65534 is accepted and root's refused as `UntrustedOwner`
/// naming both uids; with the real uid 65534 and the effective 0, the
/// reverse.
#[test]
fn the_owner_check_compares_the_effective_uid_not_the_real_one() {
    const TEST: &str = "the_owner_check_compares_the_effective_uid_not_the_real_one";
    const NOBODY: u32 = 65534;
    if role().as_deref() != Some("uids") {
        if !is_root() {
            skip(TEST, "needs root to chown and to set the uids apart");
            return;
        }
        run_self(TEST, "uids");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Traversable by 65534, who opens the files by path below.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file_of = |name: &str, owner: u32| {
        let path = dir.path().join(name);
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(8192).unwrap();
        // Readable by all (so each uid can open both read-only), writable
        // by the owner only (group- or other-writable would be refused for
        // its mode, not its owner).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&path, Some(owner), Some(owner)).unwrap();
        path
    };
    let roots = file_of("root", 0);
    let nobodys = file_of("nobody", NOBODY);
    let refused = |r: shm_region::Result<MmapRegion>, owner: u32, euid: u32| {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UntrustedOwner, "{e}");
        let debug = format!("{e:?}");
        assert!(
            debug.contains(&format!("uid: {owner}, euid: {euid}")),
            "{debug}"
        );
    };
    for (real, effective) in [(0, NOBODY), (NOBODY, 0)] {
        // Opened as root, before the uids change.
        let (root_fd, nobody_fd) = (open_fd(&roots, 0), open_fd(&nobodys, 0));
        set_uids(real, effective, 0);
        let (mine, mine_fd, theirs, theirs_fd, other) = if effective == 0 {
            (&roots, root_fd, &nobodys, nobody_fd, NOBODY)
        } else {
            (&nobodys, nobody_fd, &roots, root_fd, 0)
        };
        assert_eq!(MmapRegion::attach_fd(mine_fd).unwrap().len(), 8192);
        assert_eq!(MmapRegion::attach_read_only(mine).unwrap().len(), 8192);
        refused(MmapRegion::attach_fd(theirs_fd), other, effective);
        refused(MmapRegion::attach_read_only(theirs), other, effective);
        // Back to root for the next round (the saved uid is 0).
        set_uids(0, 0, 0);
    }
}

#[test]
fn attach_fd_of_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fd: OwnedFd = std::fs::File::open(dir.path()).unwrap().into();
    assert_eq!(kind(MmapRegion::attach_fd(fd)), ErrorKind::NotRegularFile);
}

#[test]
fn attach_fd_maps_a_valid_descriptor_with_an_empty_path() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _creator) = region_file(&dir);
    let guest = MmapRegion::attach_fd(open_fd(&path, 0)).unwrap();
    assert_eq!(guest.len(), 8192);
    assert_eq!(guest.path(), std::path::Path::new(""));
    let mut buf = [0u8; 16];
    guest.region().read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from the creator");
}

#[test]
fn attach_fd_of_read_only_descriptor_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _creator) = region_file(&dir);
    let ro: OwnedFd = std::fs::File::open(&path).unwrap().into();
    let err = MmapRegion::attach_fd(ro).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly);
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::ACCESS.raw_os_error())
    );
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::PermissionDenied
    );
}

#[test]
fn attach_refuses_a_hard_linked_file_unless_allowed() {
    // A writer of a shared directory links the victim's own private file
    // into it: owner and mode are the victim's, so only the link count
    // gives it away.
    let private = tempfile::tempdir().unwrap();
    let secret = private.path().join("secret");
    std::fs::write(&secret, b"the victim's secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let shared = tempfile::tempdir().unwrap();
    let planted = seg(&shared);
    std::fs::hard_link(&secret, &planted).unwrap();

    let refused = [
        kind(MmapRegion::attach(&planted)),
        kind(MmapRegion::attach_read_only(&planted)),
        kind(MmapRegion::attach_fd(open_fd(&planted, 0))),
        kind(MmapRegion::attach_fd_read_only(
            std::fs::File::open(&planted).unwrap().into(),
        )),
    ];
    assert_eq!(refused, [ErrorKind::HardLinked; 4]);
    let io: std::io::Error = MmapRegion::attach(&planted).unwrap_err().into();
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    assert_eq!(std::fs::read(&secret).unwrap(), b"the victim's secret");

    // Explicitly allowed, it maps (and the bytes are the linked file's).
    let allowed = MmapOptions::new()
        .allow_hard_links(true)
        .attach(&planted)
        .unwrap();
    let mut buf = [0u8; 10];
    allowed.region().read_at(4, &mut buf).unwrap();
    assert_eq!(&buf, b"victim's s");

    // One name again: attach works as for any region file.
    drop(allowed);
    std::fs::remove_file(&secret).unwrap();
    assert_eq!(MmapRegion::attach(&planted).unwrap().len(), 19);
}

#[test]
fn attach_never_opens_a_fifo_swapped_in_under_the_name() {
    // A FIFO and a valid region file swap names as fast as the kernel
    // allows (renameat2 RENAME_EXCHANGE) while we attach by that name. A
    // reader blocked on the FIFO would be woken by any open for writing; it
    // must stay blocked, and every attach must end in `Ok` (the region),
    // `NotRegularFile`, or `Os(EAGAIN)`.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let (path, _creator) = region_file(&dir);
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let fifo_ino = ino(&fifo);
    // The reader blocks in open(O_RDONLY) until someone opens for writing.
    let woken = Arc::new(AtomicBool::new(false));
    let ending = Arc::new(AtomicBool::new(false));
    let reader = {
        let (fifo, woken, ending) = (fifo.clone(), Arc::clone(&woken), Arc::clone(&ending));
        std::thread::spawn(move || {
            let f = std::fs::File::open(&fifo).unwrap();
            if !ending.load(Ordering::SeqCst) {
                woken.store(true, Ordering::SeqCst);
            }
            drop(f);
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (dir_path, stop) = (dir.path().to_path_buf(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let d = std::fs::File::open(&dir_path).unwrap();
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    &d,
                    "segment",
                    &d,
                    "fifo",
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let (mut ok, mut refused) = (0u32, 0u32);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline && !woken.load(Ordering::SeqCst) {
        let p = path.clone();
        match within(PROMPT, move || MmapRegion::attach(&p).map(|r| r.len())) {
            Ok(len) => {
                assert_eq!(len, 8192);
                ok += 1;
            }
            // The name named another file at each of attach's looks:
            // "try again" (EAGAIN), never a wrong file.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::AGAIN.raw_os_error()) => {
                refused += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NotRegularFile, "{e:?}");
                refused += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    let was_woken = woken.load(Ordering::SeqCst);
    // Release the reader (if still blocked) ourselves: open the FIFO by
    // whichever name it has now, read-write, which never blocks on Linux.
    ending.store(true, Ordering::SeqCst);
    let name = if ino(&fifo) == fifo_ino { &fifo } else { &path };
    let _w = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name)
        .unwrap();
    reader.join().unwrap();
    eprintln!("{ok} attached, {refused} refused, {swaps} swaps");
    assert!(!was_woken, "an attach opened the FIFO for writing");
    assert!(ok > 0 && refused > 0, "the race was not exercised");
}

#[test]
fn attach_by_path_is_refused_when_procfs_is_missing() {
    // On Linux, attach reopens the verified inode through /proc/self/fd;
    // without procfs it refuses instead of opening the name racily. The
    // child runs in its own mount namespace with a tmpfs over /proc.
    if role().as_deref() == Some("no-procfs") {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs", "/proc"])
            .status()
            .unwrap();
        assert!(mounted.success());
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
        assert_eq!(kind(MmapRegion::attach(&path)), ErrorKind::Unsupported);
        assert_eq!(
            kind(MmapRegion::attach_read_only(&path)),
            ErrorKind::Unsupported
        );
        // Descriptors need no reopening.
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert_eq!(MmapRegion::attach_fd(fd.into()).unwrap().len(), 4096);
        // Without procfs the kernel's name of a descriptor cannot be read,
        // so no descriptor is taken for a memfd: a memfd as the kernel makes
        // it (mode 0777) meets the checks for files, and their option.
        let memfd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&memfd, 4096).unwrap();
        assert_eq!(
            kind(MmapRegion::attach_fd(memfd.try_clone().unwrap())),
            ErrorKind::InsecureMode
        );
        let widened = MmapOptions::new()
            .allow_group_or_other_write(true)
            .attach_fd(memfd)
            .unwrap();
        assert_eq!(widened.len(), 4096);
        // A /proc/thread-self/fd that exists but is not procfs is refused
        // by the file-system check, not trusted to hand back the inode.
        std::fs::create_dir_all("/proc/thread-self/fd").unwrap();
        let err = MmapRegion::attach(&path).unwrap_err();
        assert_eq!(
            (err.kind(), err.raw_os_error()),
            (ErrorKind::Unsupported, None)
        );
        drop(host);
        return;
    }
    if !is_root() || !cfg!(target_os = "linux") {
        skip(
            "attach_by_path_is_refused_when_procfs_is_missing",
            "needs root on Linux",
        );
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([
            "attach_by_path_is_refused_when_procfs_is_missing",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "no-procfs")
        // LeakSanitizer lists threads through /proc at exit, which the
        // child hides: under ASan that is a fatal error, not a leak.
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_child_succeeds(&mut child);
}

#[test]
fn attach_from_a_thread_with_its_own_descriptor_table_opens_its_own_file() {
    // After unshare(CLONE_FILES) a thread's descriptor numbers differ from
    // the process's; reopening through /proc/self/fd would open whatever
    // the *process* has at that number (here: a FIFO, whose blocked reader
    // any open for writing wakes). Through /proc/thread-self/fd the thread
    // gets its own file.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    let dir = tempfile::tempdir().unwrap();
    let (path, _creator) = region_file(&dir);
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let unshared = {
        let path = path.clone();
        std::thread::spawn(move || {
            // SAFETY: this thread uses no descriptor created by another
            // thread after the unshare (it only attaches by path and drops
            // what it made), as `unshare_unsafe` requires for `FILES`.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FILES) }.unwrap();
            ready_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            let r = MmapRegion::attach(&path).unwrap();
            let mut b = [0u8; 16];
            r.region().read_at(100, &mut b).unwrap();
            b
        })
    };
    ready_rx.recv().unwrap();
    // In the process's table, take the numbers the thread's attach will
    // use for its directory and its O_PATH descriptor: the second is a FIFO.
    let _dir_fd = std::fs::File::open(dir.path()).unwrap();
    let _fifo_fd = rustix::fs::open(
        &fifo,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let woken = Arc::new(AtomicBool::new(false));
    let reader = {
        let (fifo, woken) = (fifo.clone(), Arc::clone(&woken));
        std::thread::spawn(move || {
            let _f = std::fs::File::open(&fifo).unwrap();
            woken.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    go_tx.send(()).unwrap();
    let bytes = unshared.join().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let was_woken = woken.load(Ordering::SeqCst);
    let _w = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    reader.join().unwrap();
    assert_eq!(&bytes, b"from the creator");
    assert!(!was_woken, "attach opened the process's FIFO");
}

/// A memfd as the kernel makes it (mode 0777, owned by its creator, no
/// name), sized by its creator as a Wayland client sizes its pool.
#[cfg(target_os = "linux")]
fn kernel_memfd(name: &str, len: u64, seal_shrink: bool) -> OwnedFd {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd =
        rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&fd, len).unwrap();
    if seal_shrink {
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
    }
    fd
}

#[cfg(target_os = "linux")]
#[test]
fn attach_fd_accepts_a_memfd_as_the_kernel_makes_it_with_the_defaults() {
    for sealed in [false, true] {
        let fd = kernel_memfd("pool", 8192, sealed);
        let st = rustix::fs::fstat(&fd).unwrap();
        assert_eq!((st.st_mode & 0o7777, st.st_nlink), (0o777, 0));
        rustix::io::pwrite(&fd, b"frame", 4000).unwrap();
        let dup = || fd.try_clone().unwrap();

        let plain = MmapRegion::attach_fd(dup()).unwrap();
        let ro = MmapRegion::attach_fd_read_only(dup()).unwrap();
        let via_options = MmapOptions::new().attach_fd(dup()).unwrap();
        let via_options_ro = MmapOptions::new().attach_fd_read_only(dup()).unwrap();
        for r in [&plain, &ro, &via_options, &via_options_ro] {
            assert_eq!(r.len(), 8192);
            assert_eq!(r.is_shrink_sealed(), sealed);
            let mut buf = [0u8; 5];
            r.region().read_at(4000, &mut buf).unwrap();
            assert_eq!(&buf, b"frame");
        }
        assert!(ro.is_read_only() && via_options_ro.is_read_only());
        // A peer of such a handle is checked the same way, and accepted.
        assert_eq!(plain.peer().unwrap().len(), 8192);
        // It can never get a name: the kernel's shared-memory mount is not
        // the mount of any directory.
        let linked = rustix::fs::linkat(
            rustix::fs::CWD,
            format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)),
            rustix::fs::CWD,
            format!("/dev/shm/shm-region-link-{}", std::process::id()),
            rustix::fs::AtFlags::SYMLINK_FOLLOW,
        );
        assert_eq!(linked, Err(rustix::io::Errno::XDEV));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn attach_fd_keeps_type_size_seal_and_max_size_checks_for_memfds() {
    let empty = kernel_memfd("empty", 0, false);
    assert_eq!(kind(MmapRegion::attach_fd(empty)), ErrorKind::EmptyFile);
    let unsealed = kernel_memfd("unsealed", 4096, false);
    assert_eq!(
        kind(
            MmapOptions::new()
                .require_shrink_seal(true)
                .attach_fd(unsealed)
        ),
        ErrorKind::NotSealed
    );
    let big = kernel_memfd("big", 3 * 4096, false);
    assert_eq!(
        kind(MmapOptions::new().max_size(2 * 4096).attach_fd(big)),
        ErrorKind::FileTooLarge
    );
}

/// A named file in `/dev/shm` (tmpfs, as memfds are, but with a name
/// anyone may open), created with `mode` and owned by `uid`; removed when
/// the guard drops.
#[cfg(target_os = "linux")]
fn dev_shm_file(tag: &str, mode: u32, uid: Option<u32>) -> (tempfile::TempPath, OwnedFd) {
    let file = tempfile::Builder::new()
        .prefix(&format!("shm-region-{tag}-"))
        .tempfile_in("/dev/shm")
        .unwrap();
    file.as_file().set_len(8192).unwrap();
    let (file, path) = file.into_parts();
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .unwrap();
    if let Some(uid) = uid {
        std::os::unix::fs::fchown(&file, Some(uid), None).unwrap();
    }
    (path, file.into())
}

/// An `O_TMPFILE` file of 8 KiB in `/dev/shm` (no name yet, link count
/// 0, but its holder can link it at any time) with `mode` and `uid`.
#[cfg(target_os = "linux")]
fn dev_shm_tmpfile(mode: u32, uid: Option<u32>) -> OwnedFd {
    let tmp = rustix::fs::open(
        "/dev/shm",
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    rustix::fs::ftruncate(&tmp, 8192).unwrap();
    rustix::fs::fchmod(&tmp, rustix::fs::Mode::from_raw_mode(mode)).unwrap();
    if let Some(uid) = uid {
        rustix::fs::fchown(&tmp, Some(rustix::process::Uid::from_raw(uid)), None).unwrap();
    }
    assert_eq!(rustix::fs::fstat(&tmp).unwrap().st_nlink, 0);
    tmp
}

#[cfg(target_os = "linux")]
#[test]
fn attach_fd_of_a_named_dev_shm_file_keeps_the_mode_owner_and_link_checks() {
    let (_name, fd) = dev_shm_file("mode", 0o666, None);
    assert_eq!(rustix::fs::fstat(&fd).unwrap().st_nlink, 1);
    assert_eq!(
        kind(MmapRegion::attach_fd(fd.try_clone().unwrap())),
        ErrorKind::InsecureMode
    );
    assert_eq!(
        kind(MmapRegion::attach_fd_read_only(fd.try_clone().unwrap())),
        ErrorKind::InsecureMode
    );
    let widened = MmapOptions::new()
        .allow_group_or_other_write(true)
        .attach_fd(fd)
        .unwrap();
    assert_eq!(widened.len(), 8192);

    // Unlinked (no name left, link count 0) it is still a tmpfs file, not
    // a memfd: the checks stay.
    let (name, fd) = dev_shm_file("unlinked", 0o666, None);
    drop(name);
    assert_eq!(rustix::fs::fstat(&fd).unwrap().st_nlink, 0);
    assert_eq!(kind(MmapRegion::attach_fd(fd)), ErrorKind::InsecureMode);

    // An O_TMPFILE file has no name yet, but its holder can link it later.
    let tmp = dev_shm_tmpfile(0o666, None);
    assert_eq!(kind(MmapRegion::attach_fd(tmp)), ErrorKind::InsecureMode);

    // A second name is refused as for any file.
    let (name, fd) = dev_shm_file("linked", 0o600, None);
    let second = name.with_extension("second");
    std::fs::hard_link(&name, &second).unwrap();
    let refused = kind(MmapRegion::attach_fd(fd));
    std::fs::remove_file(&second).unwrap();
    assert_eq!(refused, ErrorKind::HardLinked);
}

#[cfg(target_os = "linux")]
#[test]
fn attach_fd_of_a_named_dev_shm_file_of_another_owner_is_refused() {
    assert!(
        is_root(),
        "this test needs root (to chown the file to nobody)"
    );
    let (_name, fd) = dev_shm_file("owner", 0o600, Some(65534));
    assert_eq!(
        kind(MmapRegion::attach_fd(fd.try_clone().unwrap())),
        ErrorKind::UntrustedOwner
    );
    assert_eq!(
        kind(MmapRegion::attach_fd_read_only(fd.try_clone().unwrap())),
        ErrorKind::UntrustedOwner
    );
    let trusted = MmapOptions::new().allow_other_owner(true).attach_fd(fd);
    assert_eq!(trusted.unwrap().len(), 8192);

    // Unlinked (link count 0, as a memfd's) and O_TMPFILE files of another
    // owner are refused too: they are not memfds.
    let (name, fd) = dev_shm_file("owner-unlinked", 0o600, Some(65534));
    drop(name);
    assert_eq!(rustix::fs::fstat(&fd).unwrap().st_nlink, 0);
    assert_eq!(kind(MmapRegion::attach_fd(fd)), ErrorKind::UntrustedOwner);
    let tmp = dev_shm_tmpfile(0o600, Some(65534));
    assert_eq!(kind(MmapRegion::attach_fd(tmp)), ErrorKind::UntrustedOwner);
}

/// The C-style peer: as libwayland's `os_create_anonymous_file` does, a
/// child process of another user (nobody) makes a memfd with plain
/// `memfd_create`, sizes it, seals it against shrinking, writes into it and
/// sends it with one data byte. The parent attaches it with the defaults.
#[cfg(target_os = "linux")]
#[test]
fn attach_fd_accepts_a_memfd_sent_by_a_child_of_another_user() {
    const TEST: &str = "attach_fd_accepts_a_memfd_sent_by_a_child_of_another_user";
    const NOBODY: u32 = 65534;
    if role().as_deref() == Some("memfd-peer") {
        assert_eq!(rustix::process::geteuid().as_raw(), NOBODY);
        let fd = kernel_memfd("wl_shm", 64 * 1024, true);
        rustix::io::pwrite(&fd, b"pixels from nobody", 60 * 1024).unwrap();
        let stdin = std::io::stdin();
        let sock = std::os::fd::AsFd::as_fd(&stdin)
            .try_clone_to_owned()
            .unwrap();
        shm_region::fdpass::send(&std::os::unix::net::UnixStream::from(sock), fd.as_fd()).unwrap();
        return;
    }
    assert!(
        is_root(),
        "this test needs root (to run the peer as nobody)"
    );
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut child = spawn_self(TEST, "memfd-peer", &[])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(OwnedFd::from(theirs))
        .spawn()
        .unwrap();
    let fd = shm_region::fdpass::recv(&ours).unwrap();
    assert_child_succeeds(&mut child);
    let st = rustix::fs::fstat(&fd).unwrap();
    assert_eq!((st.st_uid, st.st_mode & 0o7777), (NOBODY, 0o777));

    for strict in [false, true] {
        let region = MmapOptions::new()
            .require_shrink_seal(strict)
            .attach_fd(fd.try_clone().unwrap())
            .unwrap();
        assert_eq!(region.len(), 64 * 1024);
        assert!(region.is_shrink_sealed());
        let mut buf = [0u8; 18];
        region.region().read_at(60 * 1024, &mut buf).unwrap();
        assert_eq!(&buf, b"pixels from nobody");
    }
}

/// A descriptor of the kernel's internal shared-memory mount that is not a
/// memfd: a System V segment (which anyone its IPC mode allows can attach
/// by id) or shared anonymous memory, opened by a privileged sender
/// through `/proc/self/map_files`. It has the memfd mount's device and no
/// link, as a memfd has, and still keeps the owner, mode and link checks.
#[cfg(target_os = "linux")]
#[test]
// The shared anonymous page is the subject of the test, not mapping code.
#[allow(clippy::disallowed_methods)]
fn attach_fd_keeps_every_check_for_sysv_and_shared_anonymous_memory_from_map_files() {
    const TEST: &str =
        "attach_fd_keeps_every_check_for_sysv_and_shared_anonymous_memory_from_map_files";
    if !is_root() {
        // Opening /proc/self/map_files needs CAP_SYS_ADMIN.
        skip(TEST, "needs root");
        return;
    }
    let page = rustix::param::page_size();
    let memfd_dev = rustix::fs::fstat(
        rustix::fs::memfd_create("probe", rustix::fs::MemfdFlags::CLOEXEC).unwrap(),
    )
    .unwrap()
    .st_dev;
    let open_map_file = |addr: usize| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/self/map_files/{:x}-{:x}", addr, addr + page))
            .map(OwnedFd::from)
            .unwrap()
    };
    let check = |fd: OwnedFd, link: &str| {
        let st = rustix::fs::fstat(&fd).unwrap();
        // Everything a memfd shows through fstat...
        assert_eq!((st.st_nlink, st.st_dev), (0, memfd_dev), "{link}");
        let name = std::fs::read_link(format!("/proc/self/fd/{}", {
            use std::os::fd::AsRawFd;
            fd.as_raw_fd()
        }))
        .unwrap();
        assert!(
            name.to_string_lossy().starts_with(link),
            "{name:?} for {link}"
        );
        // ...but not its name: the mode check stays, and its option opens it.
        assert_eq!(
            kind(MmapRegion::attach_fd(fd.try_clone().unwrap())),
            ErrorKind::InsecureMode,
            "{link}"
        );
        assert_eq!(
            kind(MmapRegion::attach_fd_read_only(fd.try_clone().unwrap())),
            ErrorKind::InsecureMode,
            "{link}"
        );
        let widened = MmapOptions::new()
            .allow_group_or_other_write(true)
            .attach_fd(fd)
            .unwrap();
        assert_eq!(widened.len(), page, "{link}");
    };

    // SAFETY: `shmget` with IPC_PRIVATE makes a new segment; no memory
    // is touched.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, page, libc::IPC_CREAT | 0o666) };
    assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
    // SAFETY: `shmat` with a null address maps the segment where the kernel
    // chooses, replacing nothing; it is detached below, after the region
    // made from its descriptor is gone.
    let sysv = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    assert_ne!(
        sysv as isize,
        -1,
        "shmat: {}",
        std::io::Error::last_os_error()
    );
    check(open_map_file(sysv as usize), "/SYSV");
    // SAFETY: the segment attached above, which nothing else uses.
    assert_eq!(unsafe { libc::shmdt(sysv) }, 0);
    // SAFETY: IPC_RMID takes no buffer.
    let removed = unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    assert_eq!(removed, 0);

    // SAFETY: a null hint without MAP_FIXED makes a new shared anonymous
    // page, replacing nothing; unmapped below.
    let anon = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            page,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
        )
    }
    .unwrap();
    check(open_map_file(anon as usize), "/dev/zero");
    // SAFETY: the page mapped above, which nothing else uses.
    unsafe { rustix::mm::munmap(anon, page) }.unwrap();

    // A memfd, for contrast, is taken as the kernel makes it (mode 0777).
    let memfd = rustix::fs::memfd_create("contrast", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&memfd, u64::try_from(page).unwrap()).unwrap();
    assert_eq!(MmapRegion::attach_fd(memfd).unwrap().len(), page);
}

/// The kernel's name alone does not make a memfd: an unlinked file whose
/// path started with `/memfd:` (here in `/`, as a sender in another mount
/// namespace could make one) has no link either, but another device, and
/// keeps every check.
#[cfg(target_os = "linux")]
#[test]
fn a_file_named_like_a_memfd_on_another_device_keeps_every_check() {
    const TEST: &str = "a_file_named_like_a_memfd_on_another_device_keeps_every_check";
    if !is_root() {
        skip(TEST, "needs root (to make a file in /)");
        return;
    }
    let path = format!("/memfd:shm-region-test-{}", std::process::id());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o777)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    file.set_len(4096).unwrap();
    file.set_permissions(std::fs::Permissions::from_mode(0o777))
        .unwrap();
    let fd = OwnedFd::from(file);
    let name = std::fs::read_link(format!("/proc/self/fd/{}", {
        use std::os::fd::AsRawFd;
        fd.as_raw_fd()
    }))
    .unwrap();
    assert!(name.to_string_lossy().starts_with("/memfd:"), "{name:?}");
    assert_eq!(rustix::fs::fstat(&fd).unwrap().st_nlink, 0);
    assert_eq!(kind(MmapRegion::attach_fd(fd)), ErrorKind::InsecureMode);
}

/// The memfd test reads the kernel's name of the descriptor from procfs,
/// and only from procfs: with a tmpfs over `/proc` (a mount namespace of
/// the sender's making) holding a link named `/memfd:...` at the
/// descriptor's number, a file of the memfd mount that is not a memfd
/// (shared anonymous memory, opened through `/proc/self/map_files` before
/// the mount) keeps every check.
#[cfg(target_os = "linux")]
#[test]
// The shared anonymous page is the subject of the test, not mapping code.
#[allow(clippy::disallowed_methods)]
fn the_memfd_name_is_believed_only_from_procfs() {
    const TEST: &str = "the_memfd_name_is_believed_only_from_procfs";
    if role().as_deref() == Some("fake-proc") {
        use std::os::fd::AsRawFd;
        let page = rustix::param::page_size();
        // SAFETY: a null hint without MAP_FIXED makes a new shared
        // anonymous page, replacing nothing; the process exits after.
        let anon = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                page,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
            )
        }
        .unwrap();
        let addr = anon as usize;
        let fd: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/self/map_files/{:x}-{:x}", addr, addr + page))
            .unwrap()
            .into();
        // With procfs, its name is /dev/zero: it keeps the mode check.
        assert_eq!(
            kind(MmapRegion::attach_fd(fd.try_clone().unwrap())),
            ErrorKind::InsecureMode
        );
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs", "/proc"])
            .status()
            .unwrap();
        assert!(mounted.success());
        for dir in ["/proc/self/fd", "/proc/thread-self/fd"] {
            std::fs::create_dir_all(dir).unwrap();
            std::os::unix::fs::symlink(
                "/memfd:pool (deleted)",
                format!("{dir}/{}", fd.as_raw_fd()),
            )
            .unwrap();
        }
        assert_eq!(
            std::fs::read_link(format!("/proc/thread-self/fd/{}", fd.as_raw_fd()))
                .unwrap()
                .to_str(),
            Some("/memfd:pool (deleted)")
        );
        // The link is not believed: the mode check stays.
        assert_eq!(kind(MmapRegion::attach_fd(fd)), ErrorKind::InsecureMode);
        return;
    }
    if !is_root() {
        // Opening /proc/self/map_files and mounting need root.
        skip(TEST, "needs root");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "fake-proc")
        // LeakSanitizer lists threads through /proc at exit, which the
        // child hides: under ASan that is a fatal error, not a leak.
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_child_succeeds(&mut child);
}
