//! `MmapRegion::attach` and `attach_fd`: only regular, non-empty, trusted
//! files are mapped, and refusals come back promptly as errors.
#![cfg(all(unix, not(miri)))]

mod common;

use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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
