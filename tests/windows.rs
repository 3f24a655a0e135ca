//! The Windows port, run under Wine in CI (`cargo test --target
//! x86_64-pc-windows-gnu`, verify/wine): named sections and files by path
//! shared with a second process, growth, the checks `attach` makes, the
//! options Windows refuses, and waits across processes.
#![cfg(windows)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shm_region::{ErrorKind, FileCleanup, MmapOptions, MmapRegion};

const ROLE: &str = "SHM_REGION_WINDOWS_ROLE";
const ARG: &str = "SHM_REGION_WINDOWS_ARG";
const PAGE: usize = 4096;

/// Re-runs this test binary as a child playing `role` in `test`.
fn child(test: &str, role: &str, arg: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(ARG, arg)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn role() -> Option<(String, String)> {
    Some((
        std::env::var(ROLE).ok()?,
        std::env::var(ARG).unwrap_or_default(),
    ))
}

/// Waits at most 60 s for the child and asserts it succeeded.
fn finish(mut c: std::process::Child) {
    let start = Instant::now();
    loop {
        if let Some(status) = c.try_wait().unwrap() {
            assert!(status.success(), "child failed: {status}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child did not finish in 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A section name no other test (or earlier run) uses.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("shm-region-test-{tag}-{}-{nanos}", std::process::id())
}

/// Waits (polling, at most 30 s) until the word at `offset` is `want`.
fn await_word(region: &MmapRegion, offset: usize, want: u32) {
    let view = region.region();
    let start = Instant::now();
    while view.load_u32(offset, Ordering::Acquire).unwrap() != want {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "word {offset} never became {want}"
        );
        view.wait_u32(
            offset,
            view.load_u32(offset, Ordering::Acquire).unwrap(),
            Some(Duration::from_millis(50)),
        )
        .unwrap();
    }
}

// Words of the shared header: 0 the step the parent reached, 4 the step the
// child reached, 8 the child's view base before the growth (low 32 bits
// compared through the child's own views).
const PARENT: usize = 0;
const CHILD: usize = 4;

#[test]
fn a_named_region_grows_in_place_and_a_child_process_follows_it() {
    if let Some((r, name)) = role() {
        if r != "follow" {
            return;
        }
        let mut guest = MmapRegion::attach_shm(&name).unwrap();
        assert_eq!(guest.len(), 2 * PAGE, "5000 bytes are two whole pages");
        let mut buf = [0u8; 5];
        guest.region().read_at(4000, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        let before = guest.region().as_ptr();
        guest
            .region()
            .atomic_u32(CHILD)
            .unwrap()
            .store(1, Ordering::Release);
        guest.region().wake_u32(CHILD, 1).unwrap();
        await_word(&guest, PARENT, 2);
        assert!(guest.check_and_remap().unwrap());
        assert_eq!(guest.len(), 1 << 20);
        assert_eq!(guest.generation(), 1);
        assert_eq!(guest.region().as_ptr(), before, "grown in place");
        guest.region().read_at((1 << 20) - 5, &mut buf).unwrap();
        assert_eq!(&buf, b"tail!");
        assert!(!guest.check_and_remap().unwrap());
        guest
            .region()
            .atomic_u32(CHILD)
            .unwrap()
            .store(2, Ordering::Release);
        return;
    }
    let name = unique("follow");
    let mut host = MmapRegion::create_shm(&name, 5000, FileCleanup::Manual).unwrap();
    assert_eq!(host.len(), 2 * PAGE);
    host.region().write_at(4000, b"hello").unwrap();
    let c = child(
        "a_named_region_grows_in_place_and_a_child_process_follows_it",
        "follow",
        &name,
    );
    await_word(&host, CHILD, 1);
    let base = host.region().as_ptr();
    host.resize(1 << 20).unwrap();
    assert_eq!(host.region().as_ptr(), base);
    host.region().write_at((1 << 20) - 5, b"tail!").unwrap();
    host.region()
        .atomic_u32(PARENT)
        .unwrap()
        .store(2, Ordering::Release);
    host.region().wake_u32(PARENT, 1).unwrap();
    finish(c);
    assert_eq!(host.region().load_u32(CHILD, Ordering::Acquire).unwrap(), 2);
}

#[test]
fn create_shm_refuses_an_existing_name_and_the_first_region_is_untouched() {
    let name = unique("twice");
    let first = MmapRegion::create_shm(&name, PAGE, FileCleanup::Manual).unwrap();
    first.region().write_at(0, b"first").unwrap();
    let err = MmapRegion::create_shm(&name, 8 * PAGE, FileCleanup::Manual).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(err.raw_os_error(), Some(183), "ERROR_ALREADY_EXISTS");
    let mut buf = [0u8; 5];
    MmapRegion::attach_shm(&name)
        .unwrap()
        .region()
        .read_at(0, &mut buf)
        .unwrap();
    assert_eq!(&buf, b"first");
    assert_eq!(first.len(), PAGE);
}

#[test]
fn attach_shm_of_a_name_nobody_created_is_not_found_and_bad_names_are_invalid() {
    let err = MmapRegion::attach_shm(&unique("missing")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    for bad in ["", "/", "a\\b", "a/b", &"x".repeat(256)] {
        let err = MmapRegion::create_shm(bad, PAGE, FileCleanup::Manual).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidPath, "{bad:?}: {err}");
    }
    // One leading slash is the POSIX spelling of the same name.
    let name = unique("slash");
    let _host = MmapRegion::create_shm(&format!("/{name}"), PAGE, FileCleanup::Manual).unwrap();
    assert_eq!(MmapRegion::attach_shm(&name).unwrap().len(), PAGE);
}

#[test]
fn a_named_region_cannot_grow_past_the_reservation_made_at_its_creation() {
    let name = unique("reserve");
    let mut host = MmapOptions::new()
        .address_space(16 * PAGE)
        .create_shm(&name, PAGE, FileCleanup::Manual)
        .unwrap();
    host.resize(16 * PAGE).unwrap();
    assert_eq!(host.len(), 16 * PAGE);
    let err = host.resize(17 * PAGE).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge);
    let msg = err.to_string();
    assert!(
        msg.contains("65536 bytes the named section reserved"),
        "{msg}"
    );
    assert!(msg.contains("MmapOptions::address_space"), "{msg}");
    assert_eq!(host.len(), 16 * PAGE, "unchanged after the error");
    assert_eq!(host.generation(), 1);
}

#[test]
fn a_read_only_attach_of_a_named_region_reads_and_refuses_writes_and_growth() {
    let name = unique("ro");
    let host = MmapRegion::create_shm(&name, PAGE, FileCleanup::Manual).unwrap();
    host.region().write_at(10, b"ro").unwrap();
    let mut ro = MmapRegion::attach_shm_read_only(&name).unwrap();
    assert!(ro.is_read_only());
    let mut buf = [0u8; 2];
    ro.region().read_at(10, &mut buf).unwrap();
    assert_eq!(&buf, b"ro");
    assert_eq!(
        ro.region().write_at(0, b"x").unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    assert_eq!(ro.resize(2 * PAGE).unwrap_err().kind(), ErrorKind::ReadOnly);
}

/// A scratch folder removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir(&p).unwrap();
        Self(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_file_region_grows_into_a_new_generation_and_a_child_process_follows_it() {
    if let Some((r, path)) = role() {
        if r != "file" {
            return;
        }
        let mut guest = MmapRegion::attach(&path).unwrap();
        assert_eq!(guest.len(), 3 * PAGE);
        let old = guest.region();
        guest
            .region()
            .atomic_u32(CHILD)
            .unwrap()
            .store(1, Ordering::Release);
        await_word(&guest, PARENT, 2);
        assert!(guest.check_and_remap().unwrap());
        assert_eq!(guest.len(), 64 * PAGE);
        assert_eq!(guest.generation(), 1);
        assert!(!old.is_current());
        // The old view is still valid memory of the same file.
        assert_eq!(old.load_u32(PARENT, Ordering::Acquire).unwrap(), 2);
        let mut buf = [0u8; 4];
        guest.region().read_at(64 * PAGE - 4, &mut buf).unwrap();
        assert_eq!(&buf, b"end!");
        guest
            .region()
            .atomic_u32(CHILD)
            .unwrap()
            .store(2, Ordering::Release);
        return;
    }
    let dir = Scratch::new("file");
    let path = dir.path("segment");
    let mut host = MmapRegion::create(&path, 3 * PAGE, FileCleanup::Manual).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * 4096);
    let c = child(
        "a_file_region_grows_into_a_new_generation_and_a_child_process_follows_it",
        "file",
        path.to_str().unwrap(),
    );
    await_word(&host, CHILD, 1);
    host.resize(64 * PAGE).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * 4096);
    host.region().write_at(64 * PAGE - 4, b"end!").unwrap();
    host.region()
        .atomic_u32(PARENT)
        .unwrap()
        .store(2, Ordering::Release);
    finish(c);
    assert_eq!(host.region().load_u32(CHILD, Ordering::Acquire).unwrap(), 2);
}

#[test]
fn a_peer_cannot_cut_a_mapped_file_and_the_region_stays_readable() {
    let dir = Scratch::new("cut");
    let path = dir.path("segment");
    let mut host = MmapRegion::create(&path, 16 * PAGE, FileCleanup::Manual).unwrap();
    host.region().write_at(16 * PAGE - 3, b"end").unwrap();
    let peer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let err = peer.set_len(PAGE as u64).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(1224),
        "ERROR_USER_MAPPED_FILE: {err}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 16 * 4096);
    let mut buf = [0u8; 3];
    host.region().read_at(16 * PAGE - 3, &mut buf).unwrap();
    assert_eq!(&buf, b"end");
    assert!(!host.check_and_remap().unwrap());
    // Growing is allowed to the peer, and followed.
    peer.set_len(32 * 4096).unwrap();
    assert!(host.check_and_remap().unwrap());
    assert_eq!(host.len(), 32 * PAGE);
}

#[test]
fn attaching_and_following_never_change_the_files_size() {
    let dir = Scratch::new("size");
    let path = dir.path("segment");
    let host = MmapRegion::create(&path, 4 * PAGE, FileCleanup::Manual).unwrap();
    let mut guest = MmapRegion::attach(&path).unwrap();
    let mut ro = MmapRegion::attach_read_only(&path).unwrap();
    for r in [&mut guest, &mut ro] {
        assert_eq!(r.len(), 4 * PAGE);
        assert!(!r.check_and_remap().unwrap());
        assert_eq!(
            r.ensure_len(8 * PAGE).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 4 * 4096);
    // A file whose length is not a page multiple keeps it.
    let odd = dir.path("odd");
    std::fs::write(&odd, vec![7u8; 5000]).unwrap();
    let r = MmapRegion::attach(&odd).unwrap();
    assert_eq!(r.len(), 5000);
    let mut buf = [0u8; 2];
    r.region().read_at(4998, &mut buf).unwrap();
    assert_eq!(buf, [7, 7]);
    assert_eq!(
        r.region().read_at(4999, &mut buf).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    drop(r);
    assert_eq!(std::fs::metadata(&odd).unwrap().len(), 5000);
    drop(host);
}

#[test]
fn create_is_exclusive_and_attach_refuses_directories_empty_and_missing_files() {
    let dir = Scratch::new("checks");
    let path = dir.path("segment");
    std::fs::write(&path, b"someone else's").unwrap();
    let err = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"someone else's",
        "never truncated"
    );

    let err = MmapRegion::attach(&dir.0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotRegularFile, "{err}");
    let err = MmapRegion::create(&dir.0, PAGE, FileCleanup::Manual).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");

    // A device by name: refused as not a file, before any other query.
    for device in ["NUL", "\\\\.\\NUL"] {
        let err = MmapRegion::attach(device).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotRegularFile, "{device}: {err}");
    }

    let empty = dir.path("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        MmapRegion::attach(&empty).unwrap_err().kind(),
        ErrorKind::EmptyFile
    );
    let err = MmapRegion::attach(dir.path("missing")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = MmapRegion::create(
        dir.path("no-such-folder").join("x"),
        PAGE,
        FileCleanup::Manual,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn attach_refuses_a_file_with_a_second_name_unless_hard_links_are_allowed() {
    let dir = Scratch::new("links");
    let path = dir.path("segment");
    let _host = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    std::fs::hard_link(&path, dir.path("second")).unwrap();
    let err = MmapRegion::attach(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HardLinked, "{err}");
    let ok = MmapOptions::new()
        .allow_hard_links(true)
        .attach(&path)
        .unwrap();
    assert_eq!(ok.len(), PAGE);
}

#[test]
fn manual_cleanup_removes_the_file_on_drop_and_auto_leaves_nothing_to_attach() {
    let dir = Scratch::new("cleanup");
    let path = dir.path("manual");
    let host = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    let guest = MmapRegion::attach(&path).unwrap();
    let view = host.region();
    drop(guest);
    drop(host);
    assert!(path.exists(), "a view of the owner's still maps it");
    drop(view);
    assert!(!path.exists(), "removed with the owner's last view");

    // Windows refuses to delete a file another handle still maps: it stays.
    let shared = dir.path("shared");
    let host = MmapRegion::create(&shared, PAGE, FileCleanup::Manual).unwrap();
    let guest = MmapRegion::attach(&shared).unwrap();
    drop(host);
    assert!(shared.exists(), "the guest's mapping kept it");
    drop(guest);
    assert!(shared.exists(), "nobody owned it any more");

    let kept = dir.path("kept");
    let mut host = MmapRegion::create(&kept, PAGE, FileCleanup::Manual).unwrap();
    host.release_ownership();
    drop(host);
    assert!(kept.exists());

    let auto = dir.path("auto");
    let host = MmapRegion::create(&auto, PAGE, FileCleanup::Auto).unwrap();
    host.region().write_at(0, b"x").unwrap();
    let attached = MmapRegion::attach(&auto);
    if under_wine() {
        // Wine 8 opens a file marked for deletion (Windows refuses:
        // ERROR_ACCESS_DENIED, STATUS_DELETE_PENDING); SECURITY.md lists it.
        assert!(attached.is_ok(), "Wine changed: {attached:?}");
    } else {
        assert!(
            attached.is_err(),
            "marked for deletion before it was mapped"
        );
    }
    drop(attached);
    drop(host);
    assert!(!auto.exists(), "gone with its last handle and view");
}

#[test]
fn an_attached_handle_that_takes_ownership_removes_the_file_only_if_the_name_still_holds_it() {
    let dir = Scratch::new("own");
    let path = dir.path("segment");
    let mut host = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    host.release_ownership();
    let mut guest = MmapRegion::attach(&path).unwrap();
    guest.take_ownership();
    drop(host);
    assert!(path.exists(), "the guest's view still maps it");
    drop(guest);
    assert!(
        !path.exists(),
        "removed through the guest's verified handle"
    );

    // Another file at the name when ownership is taken: nothing removed.
    let mut host = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    host.release_ownership();
    let mut guest = MmapRegion::attach(&path).unwrap();
    drop(host);
    std::fs::rename(&path, dir.path("moved")).unwrap();
    std::fs::write(&path, b"another file").unwrap();
    guest.take_ownership();
    drop(guest);
    assert_eq!(std::fs::read(&path).unwrap(), b"another file");
    assert!(dir.path("moved").exists());
}

#[test]
fn options_windows_cannot_honour_are_refused_as_unsupported_before_anything_is_made() {
    let dir = Scratch::new("options");
    let path = dir.path("segment");
    type Set = fn(&mut MmapOptions);
    let refused: [(&str, Set); 6] = [
        ("populate", |o| {
            o.populate(true);
        }),
        ("lock", |o| {
            o.lock(true);
        }),
        ("mode", |o| {
            o.mode(0o644);
        }),
        ("require_write_seal", |o| {
            o.require_write_seal(true);
        }),
        ("dont_dump", |o| {
            o.dont_dump(true);
        }),
        ("dont_fork", |o| {
            o.dont_fork(true);
        }),
    ];
    for (what, set) in refused {
        let mut o = MmapOptions::new();
        set(&mut o);
        let err = o.create(&path, PAGE, FileCleanup::Manual).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{what}: {err}");
        assert!(!path.exists(), "{what}: nothing created");
        let err = o
            .create_shm(&unique(what), PAGE, FileCleanup::Manual)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{what}: {err}");
        assert_eq!(
            o.in_memory(PAGE).unwrap_err().kind(),
            ErrorKind::Unsupported,
            "{what}"
        );
    }
    // A file cannot be reserved past its length on Windows: `address_space`
    // is refused for files, and honoured by named and in-memory regions.
    let mut reserved = MmapOptions::new();
    reserved.address_space(64 * PAGE);
    let err = reserved
        .create(&path, PAGE, FileCleanup::Manual)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(
        err.to_string().contains("MmapOptions::address_space"),
        "{err}"
    );
    assert!(!path.exists());
    let _file = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    assert_eq!(
        reserved.attach(&path).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    let mut mem = reserved.in_memory(PAGE).unwrap();
    mem.resize(64 * PAGE).unwrap();
    assert_eq!(
        mem.resize(65 * PAGE).unwrap_err().kind(),
        ErrorKind::Unsupported
    );

    let host = MmapRegion::in_memory(PAGE).unwrap();
    assert_eq!(
        host.advise(shm_region::Advice::WillNeed)
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn an_in_memory_region_grows_in_place_and_its_peer_follows() {
    let mut host = MmapRegion::in_memory(PAGE).unwrap();
    let mut peer = host.peer().unwrap();
    let base = host.region().as_ptr();
    host.resize(100 * PAGE + 7).unwrap();
    host.region().write_at(100 * PAGE, b"1234567").unwrap();
    assert!(peer.check_and_remap().unwrap());
    assert_eq!(peer.len(), 100 * PAGE + 7);
    assert_eq!(peer.region().as_ptr(), base);
    let mut buf = [0u8; 7];
    peer.region().read_at(100 * PAGE, &mut buf).unwrap();
    assert_eq!(&buf, b"1234567");
    assert_eq!(
        peer.region()
            .read_at(100 * PAGE + 1, &mut buf)
            .unwrap_err()
            .kind(),
        ErrorKind::OutOfBounds
    );
}

#[test]
fn wait_u32_in_another_process_returns_after_a_store_here() {
    if let Some((r, name)) = role() {
        if r != "wait" {
            return;
        }
        let guest = MmapRegion::attach_shm(&name).unwrap();
        let view = guest.region();
        view.atomic_u32(CHILD).unwrap().store(1, Ordering::Release);
        // Asleep (polling) until the parent stores 7, at most 30 s.
        let woke = view
            .wait_u32(PARENT, 0, Some(Duration::from_secs(30)))
            .unwrap();
        assert!(woke, "timed out");
        assert_eq!(view.load_u32(PARENT, Ordering::Acquire).unwrap(), 7);
        return;
    }
    let name = unique("wait");
    let host = MmapRegion::create_shm(&name, PAGE, FileCleanup::Manual).unwrap();
    let c = child(
        "wait_u32_in_another_process_returns_after_a_store_here",
        "wait",
        &name,
    );
    await_word(&host, CHILD, 1);
    std::thread::sleep(Duration::from_millis(100));
    host.region()
        .atomic_u32(PARENT)
        .unwrap()
        .store(7, Ordering::Release);
    host.region().wake_u32(PARENT, 1).unwrap();
    finish(c);
}

/// A section made exactly as Python's `multiprocessing.shared_memory`
/// makes one on Windows, attached and shared both ways (`SharedMemory(name, create=True, size=5000)`:
/// `CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
/// 5000, name)`, no `SEC_RESERVE`, default security, a name without a
/// namespace, i.e. the session's), with its first bytes written through a
/// view as Python's `buf` writes them.
#[test]
fn a_section_made_as_pythons_shared_memory_makes_it_attaches_with_the_defaults() {
    use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::Memory::{
        CreateFileMappingW, MapViewOfFile, UnmapViewOfFile, FILE_MAP_WRITE, PAGE_READWRITE,
    };
    let name = format!("wnsm_{}", unique("py").replace('-', ""));
    let wide: Vec<u16> = name.encode_utf16().chain([0]).collect();
    // SAFETY: a NUL-terminated name, no security attributes (the default,
    // as Python passes), the pagefile (INVALID_HANDLE_VALUE).
    let section = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE,
            0,
            5000,
            wide.as_ptr(),
        )
    };
    assert!(!section.is_null());
    // SAFETY: `section` is the valid handle just made; 5000 bytes fit it.
    let view = unsafe { MapViewOfFile(section, FILE_MAP_WRITE, 0, 0, 5000) };
    assert!(!view.Value.is_null());
    // SAFETY: the view is 5000 writable bytes this test owns; nothing else
    // in this process touches them.
    unsafe { std::ptr::copy_nonoverlapping(b"from python".as_ptr(), view.Value.cast::<u8>(), 11) };

    let mut peer = if under_wine() {
        // Wine gives a section made with default security no owner and a
        // NULL DACL (everyone may write); Windows gives it the token's
        // default owner and default DACL (the user, SYSTEM, and for an
        // elevated administrator Administrators), which the defaults
        // accept. Under Wine each check refuses it, and each option lets
        // it through.
        let err = MmapRegion::attach_shm(&name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UntrustedOwner, "{err}");
        let mut o = MmapOptions::new();
        o.allow_other_owner(true);
        let err = o.attach_shm(&name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InsecureMode, "{err}");
        o.allow_group_or_other_write(true);
        o.attach_shm(&name).unwrap()
    } else {
        MmapRegion::attach_shm(&name).unwrap()
    };
    // Whole pages, as Python's own attach sees it (VirtualQuery).
    assert_eq!(peer.len(), 2 * PAGE);
    let mut buf = [0u8; 11];
    peer.region().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"from python");
    peer.region().write_at(100, b"from rust").unwrap();
    let mut back = [0u8; 9];
    // SAFETY: bytes 100..109 of the 5000-byte view, written above through
    // another view of the same section and read after the write returned.
    let at = unsafe { view.Value.cast::<u8>().add(100) };
    // SAFETY: as above: 9 bytes inside the view, into a private buffer.
    unsafe { std::ptr::copy_nonoverlapping(at, back.as_mut_ptr(), 9) };
    assert_eq!(&back, b"from rust");
    // It cannot grow: its size is the one Python gave it.
    assert_eq!(
        peer.resize(3 * PAGE).unwrap_err().kind(),
        ErrorKind::FileTooLarge
    );
    assert!(!peer.check_and_remap().unwrap());
    // SAFETY: the view made above, unmapped once.
    unsafe { UnmapViewOfFile(view) };
    // SAFETY: the handle made above, closed once.
    unsafe { CloseHandle(section) };
}

/// Whether this runs under Wine (its prefix is in the environment and its
/// `Z:` drive maps the Unix root).
fn under_wine() -> bool {
    std::env::var_os("WINEPREFIX").is_some() && Path::new("Z:\\etc").is_dir()
}

#[test]
fn attach_shm_refuses_a_section_reserved_past_max_size_and_takes_one_within_it() {
    let name = unique("max-size");
    let _host = MmapOptions::new()
        .address_space(64 * PAGE)
        .create_shm(&name, PAGE, FileCleanup::Manual)
        .unwrap();
    // The section its maker reserved is 64 pages, a length this process
    // did not choose: bounded by max_size as a file's size is.
    let err = MmapOptions::new()
        .max_size(16 * PAGE)
        .attach_shm(&name)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("262144"), "{msg}");
    assert!(msg.contains("MmapOptions::max_size"), "{msg}");
    let ok = MmapOptions::new()
        .max_size(64 * PAGE)
        .attach_shm_read_only(&name)
        .unwrap();
    assert_eq!(ok.len(), PAGE, "the committed prefix");
}

#[test]
fn attach_maps_a_file_of_5000_bytes_without_lengthening_it_to_whole_pages() {
    let dir = Scratch::new("odd-length");
    let path = dir.path("segment");
    let bytes: Vec<u8> = (0..5000u32)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let ro = MmapRegion::attach_read_only(&path).unwrap();
    assert_eq!(ro.len(), 5000);
    let rw = MmapRegion::attach(&path).unwrap();
    assert_eq!(rw.len(), 5000);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 5000);
    let mut buf = [0u8; 8];
    rw.region().read_at(4992, &mut buf).unwrap();
    assert_eq!(&buf[..], &bytes[4992..]);
    assert_eq!(
        rw.region().read_at(4993, &mut buf).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    rw.region().write_at(4999, b"!").unwrap();
    drop(rw);
    drop(ro);
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after.len(), 5000, "never lengthened");
    assert_eq!(after[4999], b'!');
}

#[test]
fn a_create_that_fails_after_making_the_file_leaves_nothing_at_the_path() {
    let dir = Scratch::new("failed-create");
    for cleanup in [FileCleanup::Manual, FileCleanup::Auto] {
        let path = dir.path(&format!("{cleanup:?}"));
        // 64 TiB: the file is made, then its sizing (no disk for its
        // reservation) or its mapping fails.
        let err = MmapRegion::create(&path, 1 << 46, cleanup).unwrap_err();
        if under_wine() {
            // Wine 8 maps no view of 64 TiB: ERROR_NOT_ENOUGH_MEMORY.
            assert_eq!((err.kind(), err.raw_os_error()), (ErrorKind::Os, Some(8)));
        } else {
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::FileTooLarge | ErrorKind::StorageFull | ErrorKind::Os
                ),
                "{err}"
            );
        }
        assert!(!path.exists(), "{cleanup:?}: {err}");
        // The name is free again.
        drop(MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap());
        assert!(!path.exists());
    }
}

#[test]
fn resize_never_cuts_a_file_that_a_peer_grew_further() {
    let dir = Scratch::new("peer-grown");
    let path = dir.path("segment");
    let mut host = MmapRegion::create(&path, 4 * PAGE, FileCleanup::Manual).unwrap();
    let peer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    peer.set_len(16 * 4096).unwrap();
    host.resize(8 * PAGE).unwrap();
    assert_eq!(host.len(), 8 * PAGE);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        16 * 4096,
        "the peer's growth is kept"
    );
    assert!(host.check_and_remap().unwrap());
    assert_eq!(host.len(), 16 * PAGE);
}

/// A function of kernel32 by name (the dev-dependency lacks the feature
/// that declares it).
fn kernel32(name: &[u8]) -> unsafe extern "system" fn() -> isize {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
    // SAFETY: NUL-terminated module and function names; kernel32 is always
    // loaded in a Windows process.
    // SAFETY: a NUL-terminated module name; kernel32 is always loaded.
    let module = unsafe { GetModuleHandleA(c"kernel32.dll".as_ptr().cast()) };
    // SAFETY: the module just found and a NUL-terminated function name.
    let f = unsafe { GetProcAddress(module, name.as_ptr()) };
    f.expect("kernel32 export")
}

/// An object of another type at the name (here an event): `create_shm` is
/// `AlreadyExists` (Windows says `ERROR_INVALID_HANDLE`, 6) and
/// `attach_shm` is `NotFound` (no section has that name), as their
/// documentation says.
#[test]
fn an_object_of_another_type_at_the_name_is_already_exists_for_create_shm_and_not_found_for_attach_shm(
) {
    type CreateEventW = unsafe extern "system" fn(
        *const std::ffi::c_void,
        i32,
        i32,
        *const u16,
    ) -> *mut std::ffi::c_void;
    let name = unique("event-squat");
    let wide: Vec<u16> = format!("Local\\{name}").encode_utf16().chain([0]).collect();
    // SAFETY: `CreateEventW` has this signature (kernel32 export).
    let create_event = unsafe {
        std::mem::transmute::<unsafe extern "system" fn() -> isize, CreateEventW>(kernel32(
            b"CreateEventW\0",
        ))
    };
    // SAFETY: default security, manual reset, not signalled, a
    // NUL-terminated name.
    let event = unsafe { create_event(std::ptr::null(), 1, 0, wide.as_ptr()) };
    assert!(!event.is_null());
    let created = MmapRegion::create_shm(&name, PAGE, FileCleanup::Manual);
    let attached = MmapRegion::attach_shm(&name);
    // SAFETY: the handle made above, closed once.
    unsafe { windows_sys::Win32::Foundation::CloseHandle(event) };
    let created = created.unwrap_err();
    let attached = attached.unwrap_err();
    assert_eq!(
        (created.kind(), attached.kind()),
        (ErrorKind::AlreadyExists, ErrorKind::NotFound),
        "create_shm: {created}; attach_shm: {attached}"
    );
}

/// `attach_shm` never publishes more than `max_size`: a section of 5000
/// bytes (as Python makes one, two whole pages committed) with
/// `max_size(5000)` is `FileTooLarge`, as `attach` of such a file is.
#[test]
fn attach_shm_never_publishes_more_than_max_size() {
    use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::Memory::{CreateFileMappingW, PAGE_READWRITE};
    let name = unique("max-5000");
    let wide: Vec<u16> = format!("Local\\{name}").encode_utf16().chain([0]).collect();
    // SAFETY: a NUL-terminated name, default security, the pagefile.
    let section = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE,
            0,
            5000,
            wide.as_ptr(),
        )
    };
    assert!(!section.is_null());
    let mut o = MmapOptions::new();
    // Under Wine a section made with default security has no owner and a
    // NULL DACL (see the test of Python's section): allow both, so that only
    // max_size is under test.
    o.allow_other_owner(true).allow_group_or_other_write(true);
    let attached = o.max_size(5000).attach_shm(&name);
    let outcome = attached.map(|r| r.len()).map_err(|e| e.kind());
    // SAFETY: the handle made above, closed once.
    unsafe { CloseHandle(section) };
    assert!(
        matches!(outcome, Err(ErrorKind::FileTooLarge)) || matches!(outcome, Ok(n) if n <= 5000),
        "max_size(5000) gave {outcome:?}"
    );
}

/// With the feature `arbitrary`, `hostile::region`'s memory is committed
/// on Windows before its initial bytes are copied in: its atomics and
/// writes work from safe code (in a child process, so that a crash would
/// fail this test alone). Run with `--features arbitrary`.
#[cfg(feature = "arbitrary")]
#[test]
fn a_hostile_region_on_windows_is_committed_and_usable_from_safe_code() {
    if let Some((r, _)) = role() {
        if r != "hostile" {
            return;
        }
        // First byte: 4 initial bytes; then the initial bytes; no stream.
        let data = [4u8, 1, 2, 3, 4];
        let mut u = arbitrary::Unstructured::new(&data);
        let region = shm_region::hostile::region(&mut u, PAGE).unwrap();
        let word = region.atomic_u32(0).unwrap().load(Ordering::Relaxed);
        assert_eq!(word, u32::from_ne_bytes([1, 2, 3, 4]));
        region.write_at(8, b"x").unwrap();
        return;
    }
    finish(child(
        "a_hostile_region_on_windows_is_committed_and_usable_from_safe_code",
        "hostile",
        "",
    ));
}

/// `peer()` of a `FileCleanup::Auto` file region (marked for deletion on
/// Windows) maps the same file: it checks its own handle without refusing
/// the deletion mark (on Windows; Wine reports the mark false anyway).
#[test]
fn a_peer_of_an_auto_cleanup_file_region_maps_the_same_file() {
    let dir = Scratch::new("auto-peer");
    let path = dir.path("segment");
    let host = MmapRegion::create(&path, PAGE, FileCleanup::Auto).unwrap();
    host.region().write_at(0, b"auto").unwrap();
    let peer = host.peer().unwrap();
    let mut buf = [0u8; 4];
    peer.region().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"auto");
}

/// `attach_shm` refuses a named section backed by a file (`Unsupported`):
/// a view of a file can raise `EXCEPTION_IN_PAGE_ERROR` when its storage
/// fails, which nothing contains on Windows.
#[test]
fn attach_shm_refuses_a_named_section_backed_by_a_file() {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Foundation::CloseHandle;
    use windows_sys::Win32::System::Memory::{CreateFileMappingW, PAGE_READWRITE};
    let dir = Scratch::new("file-section");
    let path = dir.path("backing");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    file.set_len(2 * 4096).unwrap();
    let name = unique("file-backed");
    let wide: Vec<u16> = format!("Local\\{name}").encode_utf16().chain([0]).collect();
    // SAFETY: an open file handle, default security, a NUL-terminated name;
    // size 0: the file's size.
    let section = unsafe {
        CreateFileMappingW(
            file.as_raw_handle(),
            std::ptr::null(),
            PAGE_READWRITE,
            0,
            0,
            wide.as_ptr(),
        )
    };
    assert!(!section.is_null());
    let mut o = MmapOptions::new();
    // Default security: under Wine no owner and a NULL DACL.
    o.allow_other_owner(true).allow_group_or_other_write(true);
    let region = o.attach_shm(&name);
    // SAFETY: the handle made above, closed once.
    unsafe { CloseHandle(section) };
    let err = region.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("backed by a file"), "{err}");
}
