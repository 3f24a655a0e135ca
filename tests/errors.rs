//! What an `Error` says: the operation, the path, the numbers and the OS
//! error, exactly; `path()` and `source()`; paths given as `&str`, `String`
//! or `PathBuf`; and that only failures allocate. The tests without a file
//! also run under Miri (`cargo +nightly miri test`).
#![cfg(all(unix, not(loom)))]
// The allocation counter below is a global allocator, which takes `unsafe`;
// each use is justified where it appears. The crate itself keeps its unsafe
// in src/sys/.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::error::Error as _;
use std::sync::atomic::Ordering;

use shm_region::{Error, ErrorKind, MmapOptions, MmapRegion};

/// Counts the allocations of the calling thread, so that tests running in
/// parallel do not disturb each other.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments,
// so `System`'s guarantees are ours; the counter is a const-initialised
// thread-local `Cell`, which never allocates (and is skipped once the
// thread is being torn down).
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through `alloc` above with
        // `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The allocations `f` makes on this thread.
fn allocations_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

/// What `Debug` gives for `e`: `fields` (`Error { kind: .., op: .., ... }`)
/// with the one-line message (`Display`, asserted beside each use) added
/// last, as `message: "..."`.
fn debug_of(e: &Error, fields: impl AsRef<str>) -> String {
    let fields = fields.as_ref();
    let open = fields.strip_suffix(" }").expect("ends with \" }\"");
    format!("{open}, message: {:?} }}", e.to_string())
}

fn err<T: std::fmt::Debug>(r: shm_region::Result<T>) -> Error {
    r.unwrap_err()
}

#[test]
fn successful_calls_allocate_nothing_and_a_failure_allocates_once() {
    let mut host = MmapOptions::new()
        .address_space(1 << 20)
        .in_memory(8192)
        .unwrap();
    let mut peer = host.peer().unwrap();
    let view = host.region();
    let mut buf = [0u8; 8];
    let (n, ()) = allocations_of(|| {
        view.write_at(0, b"12345678").unwrap();
        view.read_at(0, &mut buf).unwrap();
        view.atomic_u64(8).unwrap().store(7, Ordering::Release);
        assert_eq!(view.load_u32(8, Ordering::Acquire).unwrap(), 7);
        host.resize(8192).unwrap();
        host.flush_range(0, 4096).unwrap();
        assert!(!peer.check_and_remap().unwrap());
    });
    assert_eq!(n, 0, "the success path allocated");
    // The error's details are one allocation.
    let (n, e) = allocations_of(|| view.read_at(8190, &mut buf).unwrap_err());
    assert_eq!((n, e.kind()), (1, ErrorKind::OutOfBounds));
}

#[test]
fn out_of_bounds_names_offset_length_and_accessible_length() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let e = err(view.read_at(4093, &mut [0; 8]));
    assert_eq!(
        e.to_string(),
        "read_at: access out of bounds: 8 bytes at offset 4093, accessible length 4096"
    );
    assert_eq!(
        format!("{e:?}"),
        debug_of(
            &e,
            r#"Error { kind: OutOfBounds, op: "read_at", offset: 4093, len: 8, accessible_len: 4096 }"#
        )
    );
    assert_eq!(
        err(view.read_at(usize::MAX, &mut [0; 2])).to_string(),
        format!(
            "read_at: access out of bounds: 2 bytes at offset {}, accessible length 4096",
            usize::MAX
        )
    );
    assert_eq!(
        err(view.write_at(4000, &[0; 100])).to_string(),
        "write_at: access out of bounds: 100 bytes at offset 4000, accessible length 4096"
    );
    assert_eq!(
        err(view.atomic_u32(4096)).to_string(),
        "atomic_u32: access out of bounds: 4 bytes at offset 4096, accessible length 4096"
    );
    assert_eq!(
        err(view.atomic_u64(4096)).to_string(),
        "atomic_u64: access out of bounds: 8 bytes at offset 4096, accessible length 4096"
    );
    assert_eq!(
        err(view.load_u32(4096, Ordering::Relaxed)).to_string(),
        "load_u32: access out of bounds: 4 bytes at offset 4096, accessible length 4096"
    );
    assert_eq!(
        err(view.load_u64(8192, Ordering::Relaxed)).to_string(),
        "load_u64: access out of bounds: 8 bytes at offset 8192, accessible length 4096"
    );
    assert_eq!(
        err(host.flush_range(0, 5000)).to_string(),
        "flush_range: access out of bounds: 5000 bytes at offset 0, accessible length 4096"
    );
    assert_eq!(
        err(host.advise_range(4096, 1, shm_region::Advice::Normal)).to_string(),
        "advise: access out of bounds: 1 bytes at offset 4096, accessible length 4096"
    );
    assert_eq!((e.path(), e.raw_os_error()), (None, None));
    assert_eq!(e.operation(), "read_at");
    assert!(e.source().is_none());
}

#[test]
fn in_memory_past_what_the_process_can_have_is_out_of_memory_not_a_file_error() {
    // Past what the process can have: memory, not a file.
    let max = usize::try_from(isize::MAX).unwrap();
    let e = err(MmapRegion::in_memory(max));
    assert_eq!(e.kind(), ErrorKind::OutOfMemory);
    assert_eq!(
        e.to_string(),
        format!("in_memory: cannot get the memory for an in-memory region of {max} bytes and its capacity (more than the address space, RLIMIT_AS, RLIMIT_DATA or the commit limit allow); ask for a smaller size or capacity")
    );
    assert_eq!(
        format!("{e:?}"),
        debug_of(
            &e,
            format!(r#"Error {{ kind: OutOfMemory, op: "in_memory", len: {max} }}"#)
        )
    );
    assert_eq!(
        std::io::Error::from(e).kind(),
        std::io::ErrorKind::OutOfMemory
    );
}

#[test]
fn misaligned_ordering_shrink_and_size_errors_name_their_numbers() {
    let mut host = MmapOptions::new()
        .address_space(16384)
        .in_memory(8192)
        .unwrap();
    let view = host.region();
    let e = err(view.atomic_u64(4));
    assert_eq!(
        e.to_string(),
        "atomic_u64: misaligned atomic access: offset 4 is not a multiple of 8"
    );
    assert_eq!(
        format!("{e:?}"),
        debug_of(
            &e,
            r#"Error { kind: Misaligned, op: "atomic_u64", offset: 4, align: 8 }"#
        )
    );
    assert_eq!(
        err(view.load_u32(2, Ordering::Acquire)).to_string(),
        "load_u32: misaligned atomic access: offset 2 is not a multiple of 4"
    );
    let e = err(view.load_u64(0, Ordering::Release));
    assert_eq!(
        e.to_string(),
        "load_u64: Release is not an ordering a load can use"
    );
    assert_eq!(
        format!("{e:?}"),
        debug_of(
            &e,
            r#"Error { kind: InvalidOrdering, op: "load_u64", ordering: Release }"#
        )
    );
    let e = err(host.resize(4096));
    assert_eq!(
        e.to_string(),
        "resize: cannot shrink from 8192 to 4096 bytes: a region can only grow"
    );
    assert_eq!(
        format!("{e:?}"),
        debug_of(
            &e,
            r#"Error { kind: ShrinkRefused, op: "resize", current: 8192, requested: 4096 }"#
        )
    );
    assert_eq!(
        err(host.resize(32768)).to_string(),
        "resize: an in-memory region cannot grow past the capacity fixed at its creation"
    );
    assert_eq!(
        err(MmapRegion::in_memory(0)).to_string(),
        "in_memory: size 0 is invalid: a region is never empty"
    );
    let e = err(MmapRegion::in_memory(usize::MAX));
    assert_eq!(
        e.to_string(),
        format!(
            "in_memory: size {} is too large to map (over isize::MAX or the largest file offset)",
            usize::MAX
        )
    );
    assert_eq!(
        format!("{e:?}"),
        debug_of(
            &e,
            format!(
                r#"Error {{ kind: InvalidSize, op: "in_memory", requested: {} }}"#,
                usize::MAX
            )
        )
    );
    let e = err(MmapOptions::new().max_size(4096).in_memory(8192));
    assert_eq!(
        e.to_string(),
        "in_memory: size 8192 is past max_size 4096; a larger MmapOptions::max_size allows it"
    );
    assert_eq!(
        format!("{e:?}"),
        debug_of(
            &e,
            r#"Error { kind: FileTooLarge, op: "in_memory", size: 8192, max_size: 4096 }"#
        )
    );
    assert_eq!((e.path(), e.raw_os_error()), (None, None));
    assert!(e.source().is_none());
}

#[cfg(not(miri))]
mod files {
    use std::os::fd::OwnedFd;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::common::{is_root, mkfifo, seg, skip};
    use shm_region::FileCleanup;

    const ENOENT: &str = "No such file or directory (os error 2)";

    fn create(path: &Path, size: usize) -> MmapRegion {
        MmapRegion::create(path, size, FileCleanup::Manual).unwrap()
    }

    /// The OS error `e` gives as its source, as an `io::Error`.
    fn source_code(e: &Error) -> Option<i32> {
        e.source()
            .map(|s| s.downcast_ref::<std::io::Error>().unwrap().raw_os_error())
            .unwrap()
    }

    #[test]
    fn attach_of_another_users_file_names_the_path_the_owner_and_our_euid() {
        if !is_root() {
            skip(
                "attach_of_another_users_file_names_the_path_the_owner_and_our_euid",
                "needs root to chown",
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let _host = create(&path, 4096);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let e = err(MmapRegion::attach(&path));
        assert_eq!(
            e.to_string(),
            format!(
                "attach {}: file is owned by uid 65534, not 0 (our effective uid); MmapOptions::allow_other_owner(true) accepts it",
                path.display()
            )
        );
        assert_eq!(
            format!("{e:?}"),
            debug_of(
                &e,
                format!(
                    r#"Error {{ kind: UntrustedOwner, op: "attach", path: {path:?}, uid: 65534, euid: 0 }}"#
                )
            )
        );
        assert_eq!((e.path(), e.operation()), (Some(path.as_path()), "attach"));
        assert!(e.source().is_none());
    }

    #[test]
    fn attach_of_a_group_writable_file_names_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let _host = create(&path, 4096);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
        let e = err(MmapRegion::attach_read_only(&path));
        assert_eq!(
            e.to_string(),
            format!(
                "attach_read_only {}: file is writable by group or others (mode 0660); MmapOptions::allow_group_or_other_write(true) accepts it",
                path.display()
            )
        );
        assert_eq!(
            format!("{e:?}"),
            debug_of(
                &e,
                format!(
                    r#"Error {{ kind: InsecureMode, op: "attach_read_only", path: {path:?}, mode: 0o660 }}"#
                )
            )
        );
    }

    /// `fn main() -> Result<(), Box<dyn Error>>` prints the error's `Debug`:
    /// it carries the whole message, the option that would accept the file
    /// included, not only the fields.
    #[test]
    fn debug_as_main_prints_it_carries_the_message_and_its_way_out() {
        let name = format!("shm-region-errors-debug-{}", std::process::id());
        // Removed when dropped (the creator owns the name).
        let _host = MmapRegion::create_shm(&name, 4096, shm_region::FileCleanup::Manual).unwrap();
        let path = std::path::Path::new("/dev/shm").join(&name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = err(MmapRegion::attach_shm(&name));
        let boxed: Box<dyn std::error::Error> = Box::new(e.clone());
        assert_eq!(
            format!("{boxed:?}"),
            format!(
                r#"Error {{ kind: InsecureMode, op: "attach_shm", path: {path:?}, mode: 0o666, message: "attach_shm {}: file is writable by group or others (mode 0666); MmapOptions::allow_group_or_other_write(true) accepts it" }}"#,
                path.display()
            )
        );
    }

    /// Each refusal an option lifts ends with that option, and setting it
    /// as the message says attaches the same descriptor.
    #[test]
    fn every_refusal_an_option_lifts_names_the_option_and_the_option_works() {
        assert!(
            is_root(),
            "this test needs root (to chown the file to nobody)"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let _host = create(&path, 8192);
        let fd = || -> OwnedFd {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
                .into()
        };

        let e = err(MmapOptions::new().max_size(4096).attach_fd(fd()));
        assert_eq!(
            e.to_string(),
            "attach_fd: size 8192 is past max_size 4096; a larger MmapOptions::max_size allows it"
        );
        assert!(MmapOptions::new().max_size(8192).attach_fd(fd()).is_ok());

        std::fs::hard_link(&path, dir.path().join("second")).unwrap();
        let e = err(MmapRegion::attach_fd(fd()));
        assert_eq!(
            e.to_string(),
            "attach_fd: file has 2 hard links, not 1; MmapOptions::allow_hard_links(true) accepts it"
        );
        let mut links = MmapOptions::new();
        links.allow_hard_links(true);
        assert!(links.attach_fd(fd()).is_ok());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o606)).unwrap();
        let e = err(links.attach_fd(fd()));
        assert_eq!(
            e.to_string(),
            "attach_fd: file is writable by group or others (mode 0606); \
             MmapOptions::allow_group_or_other_write(true) accepts it"
        );
        links.allow_group_or_other_write(true);
        assert!(links.attach_fd(fd()).is_ok());

        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let e = err(links.attach_fd(fd()));
        assert_eq!(
            e.to_string(),
            "attach_fd: file is owned by uid 65534, not 0 (our effective uid); \
             MmapOptions::allow_other_owner(true) accepts it"
        );
        links.allow_other_owner(true);
        assert_eq!(links.attach_fd(fd()).unwrap().len(), 8192);
    }

    #[test]
    fn attach_of_a_hard_linked_file_names_its_link_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let _host = create(&path, 4096);
        std::fs::hard_link(&path, dir.path().join("second")).unwrap();
        let e = err(MmapRegion::attach(&path));
        assert_eq!(
            e.to_string(),
            format!("attach {}: file has 2 hard links, not 1; MmapOptions::allow_hard_links(true) accepts it", path.display())
        );
        assert_eq!(
            format!("{e:?}"),
            debug_of(
                &e,
                format!(r#"Error {{ kind: HardLinked, op: "attach", path: {path:?}, links: 2 }}"#)
            )
        );
    }

    #[test]
    fn attach_of_anything_but_a_regular_file_says_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        for (path, what) in [
            (dir.path().to_path_buf(), "a directory"),
            (fifo, "a FIFO"),
            (link, "a symbolic link"),
        ] {
            let e = err(MmapRegion::attach(&path));
            assert_eq!(
                e.to_string(),
                format!("attach {}: not a regular file: {what}", path.display())
            );
            assert_eq!(
                format!("{e:?}"),
                debug_of(
                    &e,
                    format!(
                        r#"Error {{ kind: NotRegularFile, op: "attach", path: {path:?}, file_type: {what:?} }}"#
                    )
                )
            );
        }
        let empty = dir.path().join("empty");
        std::fs::File::create(&empty).unwrap();
        assert_eq!(
            err(MmapRegion::attach(&empty)).to_string(),
            format!("attach {}: file is empty", empty.display())
        );
    }

    #[test]
    fn a_missing_parent_directory_is_told_apart_from_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = dir.path().join("missing").join("segment");
        let e = err(MmapRegion::create(&orphan, 4096, FileCleanup::Manual));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            format!(
                "create {}: parent directory does not exist ({ENOENT})",
                orphan.display()
            )
        );
        assert_eq!(
            format!("{e:?}"),
            debug_of(
                &e,
                format!(
                    r#"Error {{ kind: NotFound, op: "create", path: {orphan:?}, os: Os {{ code: 2, kind: NotFound, message: "No such file or directory" }} }}"#
                )
            )
        );
        assert_eq!(e.raw_os_error(), Some(2));
        assert_eq!(source_code(&e), Some(2));
        assert_eq!(
            err(MmapRegion::attach(&orphan)).to_string(),
            format!(
                "attach {}: parent directory does not exist ({ENOENT})",
                orphan.display()
            )
        );
        assert_eq!(
            err(MmapRegion::stage(&orphan, 4096)).to_string(),
            format!(
                "stage {}: parent directory does not exist ({ENOENT})",
                orphan.display()
            )
        );
        // The directory exists, the file does not.
        let absent = seg(&dir);
        let e = err(MmapRegion::attach(&absent));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            format!(
                "attach {}: nothing exists at the path ({ENOENT})",
                absent.display()
            )
        );
        assert_eq!(source_code(&e), Some(2));
    }

    #[test]
    fn attach_fd_of_a_read_only_descriptor_says_to_use_attach_fd_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let _host = create(&path, 4096);
        let read_only: OwnedFd = std::fs::File::open(&path).unwrap().into();
        let e = err(MmapRegion::attach_fd(read_only));
        assert_eq!(e.kind(), ErrorKind::ReadOnly);
        assert_eq!(
            e.to_string(),
            "attach_fd: descriptor is open read-only, not read-write (Permission denied (os \
             error 13)); use attach_fd_read_only to map it read-only"
        );
        assert_eq!(
            format!("{e:?}"),
            debug_of(
                &e,
                r#"Error { kind: ReadOnly, op: "attach_fd", os: Os { code: 13, kind: PermissionDenied, message: "Permission denied" } }"#
            )
        );
        assert_eq!((e.path(), e.raw_os_error()), (None, Some(13)));
        assert_eq!(source_code(&e), Some(13));
        assert_eq!(e.io_kind(), std::io::ErrorKind::PermissionDenied);
        // The same descriptor attaches read-only, as the message says.
        let read_only: OwnedFd = std::fs::File::open(&path).unwrap().into();
        assert!(MmapRegion::attach_fd_read_only(read_only).is_ok());
        // A write-only descriptor is not read-only: the OS error stands.
        let write_only: OwnedFd = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .into();
        let e = err(MmapRegion::attach_fd(write_only));
        assert_eq!((e.kind(), e.raw_os_error()), (ErrorKind::Os, Some(13)));
        assert_eq!(
            e.to_string(),
            "attach_fd: operating-system error (Permission denied (os error 13))"
        );
    }

    #[test]
    fn create_publish_and_max_size_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let _host = create(&path, 8192);
        let e = err(MmapRegion::create(&path, 4096, FileCleanup::Manual));
        assert_eq!(
            e.to_string(),
            format!(
                "create {}: something already exists at the path (File exists (os error 17))",
                path.display()
            )
        );
        assert_eq!(source_code(&e), Some(17));
        let stage = MmapRegion::stage(&path, 4096).unwrap();
        let failed = stage.publish().unwrap_err();
        let expected = format!(
            "publish {}: something already exists at the path (File exists (os error 17))",
            path.display()
        );
        assert_eq!(failed.error().to_string(), expected);
        assert_eq!(failed.to_string(), expected);
        assert_eq!(failed.error().path(), Some(path.as_path()));
        let e = err(MmapOptions::new().max_size(4096).attach(&path));
        assert_eq!(
            e.to_string(),
            format!("attach {}: size 8192 is past max_size 4096; a larger MmapOptions::max_size allows it", path.display())
        );
        let other = dir.path().join("other");
        assert_eq!(
            err(MmapOptions::new()
                .max_size(4096)
                .create(&other, 8192, FileCleanup::Manual))
            .to_string(),
            format!(
                "create {}: size 8192 is past max_size 4096; a larger MmapOptions::max_size allows it",
                other.display()
            )
        );
        assert_eq!(
            err(MmapRegion::create(&other, 0, FileCleanup::Manual)).to_string(),
            format!(
                "create {}: size 0 is invalid: a region is never empty",
                other.display()
            )
        );
    }

    #[test]
    fn truncation_names_the_mapped_length_and_the_file_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let _host = create(&path, 8192);
        let mut guest = MmapRegion::attach(&path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let e = err(guest.check_and_remap());
        assert_eq!(
            e.to_string(),
            "check_and_remap: file was truncated below the mapped length 8192 (it is 4096 bytes now)"
        );
        assert_eq!(
            format!("{e:?}"),
            debug_of(
                &e,
                r#"Error { kind: Truncated, op: "check_and_remap", mapped: 8192, file_len: 4096 }"#
            )
        );
        assert_eq!(
            err(guest.resize(16384)).to_string(),
            "resize: file was truncated below the mapped length 8192 (it is 4096 bytes now)"
        );
        let reader = MmapRegion::attach_read_only(&path).unwrap();
        assert_eq!(
            err(reader.region().write_at(0, b"x")).to_string(),
            "write_at: region is read-only"
        );
    }

    /// After a truncation the handle found, an access past the view's
    /// length is `OutOfBounds` and its message names the accessible length
    /// (the file's 4096 bytes), not the view's mapped 8192: every accessor
    /// that reports a bound, through each path that builds the error.
    #[test]
    fn out_of_bounds_after_a_truncation_names_the_accessible_length_not_the_view_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let host = create(&path, 8192);
        let mut guest = MmapRegion::attach(&path).unwrap();
        let view = guest.region();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        assert_eq!(err(guest.check_and_remap()).kind(), ErrorKind::Truncated);
        assert_eq!(view.len(), 8192, "the view keeps its mapped length");
        let (tx, _rx) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = err(view.read_at(8190, &mut [0; 4]));
        assert_eq!(
            e.to_string(),
            "read_at: access out of bounds: 4 bytes at offset 8190, accessible length 4096"
        );
        assert_eq!(
            format!("{e:?}"),
            debug_of(
                &e,
                r#"Error { kind: OutOfBounds, op: "read_at", offset: 8190, len: 4, accessible_len: 4096 }"#
            )
        );
        let expected = [
            (
                err(view.write_at(8000, &[0; 200])),
                "write_at: access out of bounds: 200 bytes at offset 8000, accessible length 4096",
            ),
            (
                err(view.atomic_u32(8192)),
                "atomic_u32: access out of bounds: 4 bytes at offset 8192, accessible length 4096",
            ),
            (
                err(view.atomic_u64(8192)),
                "atomic_u64: access out of bounds: 8 bytes at offset 8192, accessible length 4096",
            ),
            (
                err(view.write_to_fd(8191, 2, &tx)),
                "write_to_fd: access out of bounds: 2 bytes at offset 8191, accessible length 4096",
            ),
            (
                err(view.read_from_fd(8191, 2, &tx)),
                "read_from_fd: access out of bounds: 2 bytes at offset 8191, accessible length 4096",
            ),
            (
                err(guest.flush_range(0, 8193)),
                "flush_range: access out of bounds: 8193 bytes at offset 0, accessible length 4096",
            ),
        ];
        for (e, message) in expected {
            assert_eq!(
                (e.kind(), e.to_string().as_str()),
                (ErrorKind::OutOfBounds, message)
            );
        }
        // Within the view's length but past the file: `Truncated`.
        assert_eq!(
            err(view.read_at(4096, &mut [0; 1])).kind(),
            ErrorKind::Truncated
        );
        drop(host);
    }

    #[test]
    fn path_is_given_for_path_operations_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let missing = dir.path().join("missing");
        let dot = dir.path().join(".");
        let mut host = create(&path, 4096);
        for (e, expected) in [
            (
                err(MmapRegion::create(&path, 4096, FileCleanup::Manual)),
                &path,
            ),
            (err(MmapRegion::stage(&dot, 4096)), &dot),
            (err(MmapRegion::attach(&missing)), &missing),
            (err(MmapRegion::attach_read_only(&missing)), &missing),
            (err(MmapOptions::new().attach(&missing)), &missing),
            (err(MmapOptions::new().attach_read_only(&missing)), &missing),
            (
                err(MmapOptions::new().create(&path, 4096, FileCleanup::Auto)),
                &path,
            ),
            (err(MmapOptions::new().stage(&dot, 4096)), &dot),
        ] {
            assert_eq!(e.path(), Some(expected.as_path()), "{e:?}");
        }
        // Publishing over a directory fails, naming the path published at.
        let taken = dir.path().join("taken");
        std::fs::create_dir(&taken).unwrap();
        for replace in [false, true] {
            let stage = MmapRegion::stage(&taken, 4096).unwrap();
            let failed = if replace {
                stage.publish_replace().unwrap_err()
            } else {
                stage.publish().unwrap_err()
            };
            assert_eq!(failed.error().path(), Some(taken.as_path()), "{failed:?}");
        }
        let directory: OwnedFd = std::fs::File::open(dir.path()).unwrap().into();
        for e in [
            err(MmapRegion::attach_fd(directory)),
            err(host.resize(1)),
            err(host.region().read_at(4096, &mut [0])),
            err(host.flush_range(4096, 1)),
            err(MmapRegion::in_memory(0)),
        ] {
            assert_eq!(e.path(), None, "{e:?}");
        }
    }

    #[test]
    fn constructors_take_str_string_and_pathbuf_paths() {
        let dir = tempfile::tempdir().unwrap();
        let base: &str = dir.path().to_str().unwrap();
        let as_str = format!("{base}/a");
        let host = MmapRegion::create(as_str.as_str(), 4096, FileCleanup::Manual).unwrap();
        assert_eq!(host.path(), Path::new(&as_str));
        let as_string: String = format!("{base}/b");
        let _b = MmapRegion::create(as_string.clone(), 4096, FileCleanup::Manual).unwrap();
        let as_pathbuf: PathBuf = dir.path().join("c");
        let _c = MmapRegion::create(as_pathbuf.clone(), 4096, FileCleanup::Manual).unwrap();
        assert_eq!(MmapRegion::attach(as_str.as_str()).unwrap().len(), 4096);
        assert_eq!(MmapRegion::attach(as_string.clone()).unwrap().len(), 4096);
        assert_eq!(MmapRegion::attach(&as_pathbuf).unwrap().len(), 4096);
        assert!(MmapRegion::attach_read_only(as_pathbuf.clone())
            .unwrap()
            .is_read_only());
        assert!(MmapRegion::attach_read_only(as_string.as_str())
            .unwrap()
            .is_read_only());
        let staged = MmapRegion::stage(format!("{base}/d"), 4096).unwrap();
        assert_eq!(staged.path(), Path::new(&format!("{base}/d")));
        drop(staged);
        let options = MmapOptions::new();
        let _e = options
            .create(format!("{base}/e"), 4096, FileCleanup::Manual)
            .unwrap();
        assert_eq!(options.attach(format!("{base}/e")).unwrap().len(), 4096);
        assert_eq!(
            options
                .attach_read_only(dir.path().join("e"))
                .unwrap()
                .len(),
            4096
        );
        let staged = options.stage(dir.path().join("f"), 4096).unwrap();
        assert_eq!(staged.path(), dir.path().join("f"));
    }
}
