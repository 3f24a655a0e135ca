//! Growth, following growth, stale views, truncation and bounds.
//!
//! The tests that hold for any region run over files natively and over
//! in-memory regions under Miri ([`Backing`]); the others need a file, which
//! Miri cannot map, and are ignored there (`tests/grow_in_memory.rs` has the
//! in-memory counterparts of most of them).
#![cfg(unix)]

mod common;

use std::sync::atomic::Ordering;

use common::*;
use shm_region::{ErrorKind, FileCleanup, MmapOptions, MmapRegion};

const PAGE: usize = 4096;

fn pair(dir: &tempfile::TempDir, size: usize) -> (MmapRegion, MmapRegion) {
    let host = MmapRegion::create(seg(dir), size, FileCleanup::Manual).unwrap();
    let guest = MmapRegion::attach(seg(dir)).unwrap();
    (host, guest)
}

/// What the tests that hold for any region run over: a file natively, an
/// in-memory region under Miri.
struct Backing {
    #[cfg(not(miri))]
    dir: tempfile::TempDir,
}

impl Backing {
    fn new() -> Self {
        Backing {
            #[cfg(not(miri))]
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A new region of `size` bytes: the creator of a file natively.
    fn create(&self, size: usize) -> MmapRegion {
        #[cfg(not(miri))]
        return MmapRegion::create(seg(&self.dir), size, FileCleanup::Manual).unwrap();
        #[cfg(miri)]
        return MmapRegion::in_memory(size).unwrap();
    }

    /// A second handle on `host`'s region: an attach of the file natively,
    /// a `peer` of the in-memory region under Miri.
    fn attach(&self, host: &MmapRegion) -> MmapRegion {
        #[cfg(not(miri))]
        {
            let _ = host;
            MmapRegion::attach(seg(&self.dir)).unwrap()
        }
        #[cfg(miri)]
        host.peer().unwrap()
    }
}

fn file_len(dir: &tempfile::TempDir) -> u64 {
    std::fs::metadata(seg(dir)).unwrap().len()
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: the file's length and blocks")]
fn resize_grows_in_place_keeping_old_bytes_and_zeroing_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = MmapRegion::create(seg(&dir), 3 * PAGE + 10, FileCleanup::Manual).unwrap();
    let before = host.region();
    let pattern: Vec<u8> = (0..3 * PAGE + 10)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    before.write_at(0, &pattern).unwrap();

    host.resize(64 * PAGE + 3).unwrap();
    assert_eq!(host.len(), 64 * PAGE + 3);
    assert_eq!(host.generation(), 1);
    assert_eq!(file_len(&dir), u64::try_from(64 * PAGE + 3).unwrap());
    let after = host.region();
    assert_eq!(
        after.as_ptr(),
        before.as_ptr(),
        "base moved inside the reservation"
    );
    assert_eq!((after.len(), after.generation()), (64 * PAGE + 3, 1));
    let mut all = vec![0xEE; 64 * PAGE + 3];
    after.read_at(0, &mut all).unwrap();
    assert_eq!(&all[..pattern.len()], &pattern[..]);
    assert!(
        all[pattern.len()..].iter().all(|&b| b == 0),
        "new bytes not zero"
    );
    let md = std::fs::metadata(seg(&dir)).unwrap();
    assert!(std::os::unix::fs::MetadataExt::blocks(&md) * 512 >= 64 * 4096);
}

#[test]
fn resize_to_the_same_length_is_a_no_op() {
    let mut host = Backing::new().create(PAGE);
    let view = host.region();
    host.resize(PAGE).unwrap();
    assert_eq!((host.len(), host.generation()), (PAGE, 0));
    assert!(view.is_current());
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: the file's length")]
fn resize_smaller_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = MmapRegion::create(seg(&dir), 2 * PAGE, FileCleanup::Manual).unwrap();
    host.region().write_at(2 * PAGE - 1, &[7]).unwrap();
    let err = host.resize(PAGE).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShrinkRefused);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::InvalidInput
    );
    assert_eq!((host.len(), host.generation()), (2 * PAGE, 0));
    assert_eq!(file_len(&dir), 2 * 4096);
    let mut b = [0];
    host.region().read_at(2 * PAGE - 1, &mut b).unwrap();
    assert_eq!(b, [7]);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "Miri cannot map files: the file's length and the kernel's mmap"
)]
fn resize_to_unmappable_sizes_is_invalid_input_and_keeps_the_region() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = MmapRegion::create(seg(&dir), PAGE, FileCleanup::Manual).unwrap();
    let too_big = usize::try_from(isize::MAX).unwrap() + 1;
    assert_eq!(kind(host.resize(too_big)), ErrorKind::InvalidSize);
    assert_eq!(kind(host.resize(usize::MAX)), ErrorKind::InvalidSize);
    // Past the quarter of the address space that regions created without
    // max_size may map together: refused before anything changes.
    let err = host
        .resize(usize::try_from(isize::MAX).unwrap())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err:?}");
    assert!(
        err.to_string()
            .contains(" bytes, a quarter of the address space, together"),
        "{err}"
    );
    assert_eq!((host.len(), host.generation()), (PAGE, 0));
    assert_eq!(file_len(&dir), 4096);
    host.region().write_at(PAGE - 4, b"ok!!").unwrap();
    host.resize(2 * PAGE).unwrap();
    assert_eq!(host.generation(), 1);
    // With a max_size that admits it, the size passes every check and
    // fails in the kernel: same guarantees.
    let mut bounded = MmapOptions::new()
        .max_size(usize::try_from(isize::MAX).unwrap())
        .attach(seg(&dir))
        .unwrap();
    let err = bounded
        .resize(usize::try_from(isize::MAX).unwrap())
        .unwrap_err();
    assert!(err.raw_os_error().is_some(), "{err:?}");
    assert_eq!((bounded.len(), bounded.generation()), (2 * PAGE, 0));
    assert_eq!(file_len(&dir), 2 * 4096);
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: page faults of a file mapping")]
fn growth_does_not_refault_pages_already_touched() {
    let dir = tempfile::tempdir().unwrap();
    let size = 4 << 20;
    let mut host = MmapRegion::create(seg(&dir), size, FileCleanup::Manual).unwrap();
    let touch = |r: &shm_region::Region, upto: usize| {
        for off in (0..upto).step_by(PAGE) {
            r.write_at(off, &[1]).unwrap();
        }
    };
    touch(&host.region(), size);
    host.resize(size + PAGE).unwrap();
    let region = host.region();
    let before = thread_minor_faults();
    touch(&region, size);
    let faults = thread_minor_faults() - before;
    // 1024 pages were touched again; a remap that threw the page tables
    // away would fault on every one of them. (A handful of faults come from
    // elsewhere; under AddressSanitizer about 120 come from its shadow
    // memory, hence the margin.)
    assert!(
        faults < 256,
        "{faults} minor faults re-touching 1024 pages after a grow"
    );
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: a 1 GiB file mapping")]
fn default_reservation_keeps_the_base_up_to_one_gib() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = MmapOptions::new()
        .reserve_blocks(false)
        .create(seg(&dir), PAGE, FileCleanup::Manual)
        .unwrap();
    let base = host.region().as_ptr();
    host.resize(1 << 30).unwrap();
    assert_eq!(host.region().as_ptr(), base);
    host.region().write_at((1 << 30) - 1, &[9]).unwrap();
    host.resize((1 << 30) + PAGE).unwrap();
    assert_eq!(host.generation(), 2);
    let mut b = [0];
    host.region().read_at((1 << 30) - 1, &mut b).unwrap();
    assert_eq!(b, [9], "bytes survive a move out of the reservation");
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: two mappings of one file")]
fn growth_beyond_the_reservation_moves_the_base_and_old_views_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = MmapOptions::new()
        .address_space(0)
        .create(seg(&dir), PAGE, FileCleanup::Manual)
        .unwrap();
    let old = host.region();
    old.write_at(0, b"first").unwrap();
    host.resize(8 * PAGE).unwrap();
    let new = host.region();
    assert_ne!(
        new.as_ptr(),
        old.as_ptr(),
        "an exact mapping cannot grow in place"
    );
    assert!(!old.is_current());
    // The stale view still reads (and writes) its own, still mapped, memory.
    let mut buf = [0u8; 5];
    old.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"first");
    old.write_at(1, b"F").unwrap();
    new.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"fFrst", "both mappings share the file's pages");
    assert_eq!(kind(old.read_at(PAGE, &mut buf)), ErrorKind::OutOfBounds);
}

#[test]
fn stale_view_stays_readable_and_refresh_moves_it_to_the_newest_mapping() {
    let mut host = Backing::new().create(PAGE);
    let mut view = host.region();
    let clone = view.clone();
    host.resize(2 * PAGE).unwrap();
    host.resize(3 * PAGE).unwrap();
    assert!(!view.is_current() && !clone.is_current());
    assert_eq!((view.len(), view.generation()), (PAGE, 0));
    assert_eq!(kind(view.write_at(PAGE, &[1])), ErrorKind::OutOfBounds);
    assert!(view.refresh());
    assert!(view.is_current());
    assert_eq!((view.len(), view.generation()), (3 * PAGE, 2));
    assert!(!view.refresh(), "nothing newer");
    view.write_at(3 * PAGE - 1, &[5]).unwrap();
    assert_eq!(
        (clone.len(), clone.generation()),
        (PAGE, 0),
        "clones are independent"
    );
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: the file and /proc/self/maps")]
fn view_outlives_its_region_and_the_mapping_is_released_after_the_last_view() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let host = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    let inode = ino(&path);
    let view = host.region();
    let second = view.clone();
    drop(host);
    assert!(!path.exists(), "the owning creator removed its file");
    view.write_at(0, b"still mapped").unwrap();
    let mut buf = [0u8; 12];
    second.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"still mapped");
    assert!(maps_inode(inode));
    drop(view);
    assert!(maps_inode(inode), "released while a view still held it");
    drop(second);
    assert!(!maps_inode(inode), "not released after the last view");
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: the file's length")]
fn check_and_remap_follows_growth_without_changing_the_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, mut guest) = pair(&dir, PAGE);
    let guest_base = guest.region().as_ptr();
    // The host grows twice before the guest looks: the reference type
    // would have truncated the file back to the first new size here.
    host.resize(2 * PAGE).unwrap();
    host.resize(5 * PAGE).unwrap();
    host.region().write_at(5 * PAGE - 4, b"tail").unwrap();
    assert!(guest.check_and_remap().unwrap());
    assert_eq!((guest.len(), guest.generation()), (5 * PAGE, 1));
    assert_eq!(file_len(&dir), 5 * 4096);
    assert_eq!(
        guest.region().as_ptr(),
        guest_base,
        "guest grew in place too"
    );
    let mut buf = [0u8; 4];
    guest.region().read_at(5 * PAGE - 4, &mut buf).unwrap();
    assert_eq!(&buf, b"tail");
    // Unchanged: false, generation unchanged, no remap.
    assert!(!guest.check_and_remap().unwrap());
    assert_eq!(guest.generation(), 1);
    assert_eq!(file_len(&dir), 5 * 4096);
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: the file's length")]
fn resize_by_the_host_never_shrinks_a_file_a_peer_grew_further() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, mut guest) = pair(&dir, PAGE);
    guest.resize(8 * PAGE).unwrap();
    host.resize(4 * PAGE).unwrap();
    assert_eq!(file_len(&dir), 8 * 4096);
    assert_eq!(host.len(), 4 * PAGE);
    assert!(host.check_and_remap().unwrap());
    assert_eq!(host.len(), 8 * PAGE);
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: a truncated file")]
fn check_and_remap_detects_truncation_and_fences_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut guest) = pair(&dir, 4 * PAGE);
    let early = guest.region();
    let mut clone = early.clone();
    // A hostile peer truncates the file.
    set_file_len(&dir, PAGE + 100);
    let err = guest.check_and_remap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::InvalidData
    );
    let mut b = [0u8; 8];
    for v in [&early, &clone, &guest.region()] {
        // Past the truncation, within the mapped length: Truncated, as
        // for every path that finds a truncation; past the mapped length:
        // OutOfBounds.
        assert_eq!(kind(v.read_at(2 * PAGE, &mut b)), ErrorKind::Truncated);
        assert_eq!(kind(v.write_at(PAGE + 100, &[1])), ErrorKind::Truncated);
        assert_eq!(kind(v.atomic_u64(3 * PAGE)), ErrorKind::Truncated);
        assert_eq!(kind(v.read_at(4 * PAGE, &mut b)), ErrorKind::OutOfBounds);
        v.read_at(PAGE + 92, &mut b).unwrap();
        v.write_at(0, &[1]).unwrap();
    }
    assert!(!clone.refresh());
    assert_eq!(
        kind(clone.read_at(PAGE + 100, &mut b)),
        ErrorKind::Truncated
    );
    // Still short: still an error, and the guest never re-extended it.
    assert_eq!(kind(guest.check_and_remap()), ErrorKind::Truncated);
    assert_eq!(file_len(&dir), u64::try_from(PAGE + 100).unwrap());
    // The host's own handle is fenced when it next looks at the file.
    let mut host = host;
    assert_eq!(kind(host.resize(8 * PAGE)), ErrorKind::Truncated);
    assert_eq!(
        kind(host.region().read_at(2 * PAGE, &mut b)),
        ErrorKind::Truncated
    );
}

#[test]
fn out_of_bounds_and_overflowing_accesses_are_invalid_input() {
    let host = Backing::new().create(100);
    let r = host.region();
    let mut one = [0u8; 1];
    let mut two = [0u8; 2];
    r.read_at(99, &mut one).unwrap();
    r.read_at(100, &mut []).unwrap();
    for (res, what) in [
        (r.read_at(100, &mut one), "at len"),
        (r.read_at(99, &mut two), "straddling len"),
        (r.read_at(usize::MAX, &mut one), "overflowing offset"),
        (r.read_at(101, &mut []), "empty past len"),
        (r.write_at(usize::MAX - 1, &[1, 2, 3]), "overflowing write"),
        (r.write_at(4096, &[1]), "inside the page but past len"),
    ] {
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfBounds, "{what}");
        assert_eq!(
            std::io::Error::from(err).kind(),
            std::io::ErrorKind::InvalidInput
        );
    }
    assert_eq!(kind(r.atomic_u32(100)), ErrorKind::OutOfBounds);
    assert_eq!(kind(r.atomic_u64(96)), ErrorKind::OutOfBounds);
    assert_eq!(kind(r.atomic_u64(usize::MAX - 7)), ErrorKind::OutOfBounds);
}

#[test]
fn misaligned_atomics_are_invalid_input_and_aligned_ones_are_shared() {
    let backing = Backing::new();
    let host = backing.create(PAGE);
    let guest = backing.attach(&host);
    let r = host.region();
    for off in [1, 2, 3] {
        assert_eq!(kind(r.atomic_u32(off)), ErrorKind::Misaligned);
    }
    for off in [1, 4, 12] {
        assert_eq!(kind(r.atomic_u64(off)), ErrorKind::Misaligned);
    }
    let err: std::io::Error = r.atomic_u32(2).unwrap_err().into();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    r.atomic_u64(8)
        .unwrap()
        .store(0x0102_0304_0506_0708, Ordering::Release);
    assert_eq!(
        guest
            .region()
            .atomic_u64(8)
            .unwrap()
            .load(Ordering::Acquire),
        0x0102_0304_0506_0708
    );
    guest
        .region()
        .atomic_u32(4092)
        .unwrap()
        .fetch_add(3, Ordering::AcqRel);
    assert_eq!(r.atomic_u32(4092).unwrap().load(Ordering::Acquire), 3);
}

#[test]
fn handles_and_views_are_send_sync_and_views_work_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MmapRegion>();
    assert_send_sync::<shm_region::Region>();
    let mut host = Backing::new().create(PAGE);
    let view = host.region();
    let reader = std::thread::spawn(move || {
        let mut v = view;
        let mut b = [0u8; 3];
        wait_until(
            std::time::Duration::from_secs(30),
            "growth and tail bytes",
            || {
                v.refresh();
                v.len() == 16 * PAGE && v.read_at(16 * PAGE - 3, &mut b).is_ok() && b == *b"end"
            },
        );
        v.generation()
    });
    assert_eq!(
        kind(host.region().write_at(PAGE, b"no")),
        ErrorKind::OutOfBounds
    );
    host.resize(16 * PAGE).unwrap();
    host.region().write_at(16 * PAGE - 3, b"end").unwrap();
    assert_eq!(reader.join().unwrap(), 1);
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: a truncated file")]
fn check_and_remap_stays_truncated_after_the_file_grows_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, mut guest) = pair(&dir, 4 * PAGE);
    let view = guest.region();
    set_file_len(&dir, PAGE);
    assert_eq!(kind(guest.check_and_remap()), ErrorKind::Truncated);
    // The peer grows the file back, past its old length.
    set_file_len(&dir, 8 * PAGE);
    for _ in 0..2 {
        assert_eq!(kind(guest.check_and_remap()), ErrorKind::Truncated);
    }
    assert_eq!((guest.len(), guest.generation()), (4 * PAGE, 0));
    let mut b = [0u8; 1];
    for v in [&view, &guest.region()] {
        assert_eq!(kind(v.read_at(PAGE, &mut b)), ErrorKind::Truncated);
        v.read_at(PAGE - 1, &mut b).unwrap();
    }
    assert_eq!(kind(guest.resize(16 * PAGE)), ErrorKind::Truncated);
    // A fresh attach sees the file as it is now.
    let again = MmapRegion::attach(seg(&dir)).unwrap();
    assert_eq!(again.len(), 8 * PAGE);
    again.region().read_at(8 * PAGE - 1, &mut b).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: the file's length")]
fn resize_past_max_size_is_file_too_large_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = MmapOptions::new()
        .max_size(2 * PAGE)
        .create(seg(&dir), PAGE, FileCleanup::Manual)
        .unwrap();
    host.region().write_at(0, b"kept").unwrap();
    assert_eq!(kind(host.resize(2 * PAGE + 1)), ErrorKind::FileTooLarge);
    assert_eq!((host.len(), host.generation()), (PAGE, 0));
    assert_eq!(file_len(&dir), u64::try_from(PAGE).unwrap());
    host.resize(2 * PAGE).unwrap();
    assert_eq!((host.len(), host.generation()), (2 * PAGE, 1));
    let mut b = [0u8; 4];
    host.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"kept");
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: a sparse file")]
fn attach_of_a_file_larger_than_the_address_space_is_file_too_large() {
    // Sparse files this large exist on tmpfs and ext4 alike; no process can
    // map them, and the error says so instead of `Os(ENOMEM)`.
    // ext4 refuses files past 16 TiB: there, a small tmpfs (root) holds
    // them.
    let dir = tempfile::tempdir().unwrap();
    let open = |path: &std::path::Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .unwrap()
    };
    let mut path = seg(&dir);
    let mut f = open(&path);
    let tmpfs;
    if f.set_len(1 << 50).is_err() {
        tmpfs = match Tmpfs::mount("1m") {
            Ok(fs) => fs,
            Err(why) => {
                skip(
                    "attach_of_a_file_larger_than_the_address_space_is_file_too_large",
                    &format!("the file system refuses 2^50-byte files, no tmpfs: {why}"),
                );
                return;
            }
        };
        path = tmpfs.path().join("segment");
        f = open(&path);
    }
    for size in [u64::try_from(isize::MAX).unwrap(), 1 << 50] {
        f.set_len(size).unwrap();
        assert_eq!(f.metadata().unwrap().len(), size);
        assert_eq!(kind(MmapRegion::attach(&path)), ErrorKind::FileTooLarge);
        assert_eq!(
            kind(MmapRegion::attach_fd(f.try_clone().unwrap().into())),
            ErrorKind::FileTooLarge
        );
    }
    // Closed before the tmpfs (if any) is unmounted.
    drop(f);
    if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
        let p = shm.path().join("huge");
        let f = std::fs::File::create_new(&p).unwrap();
        f.set_len(u64::try_from(isize::MAX).unwrap()).unwrap();
        assert_eq!(kind(MmapRegion::attach(&p)), ErrorKind::FileTooLarge);
    }
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot map files: a truncated file")]
fn every_resize_after_a_truncation_is_truncated_and_flush_and_advise_cover_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, mut guest) = pair(&dir, 4 * PAGE);
    set_file_len(&dir, PAGE);
    assert_eq!(kind(guest.check_and_remap()), ErrorKind::Truncated);
    set_file_len(&dir, 8 * PAGE);
    for size in [4 * PAGE, PAGE, 16 * PAGE] {
        assert_eq!(kind(guest.resize(size)), ErrorKind::Truncated, "{size}");
    }
    assert_eq!((guest.len(), guest.generation()), (4 * PAGE, 0));
    guest.flush().unwrap();
    guest.flush_async().unwrap();
    guest.advise(shm_region::Advice::WillNeed).unwrap();
    assert_eq!(kind(guest.flush_range(PAGE, 1)), ErrorKind::OutOfBounds);
}
