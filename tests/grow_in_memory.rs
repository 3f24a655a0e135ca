//! The growth tests of `tests/grow.rs` over in-memory regions
//! (`MmapOptions::in_memory`, `MmapRegion::peer`): growth in place, refused
//! and failed resizes, stale views and `refresh`, bounds and alignment of
//! every accessor, a growth seen from another thread, and what the errors
//! say. Nothing here needs the operating system, so these tests also run
//! under Miri (`cargo +nightly miri test --test grow_in_memory`), whose
//! checkers then judge the crate's growth path.
#![cfg(unix)]

use std::sync::atomic::Ordering;

use shm_region::{ErrorKind, MmapOptions, MmapRegion};

/// A unit of size: a page natively, 64 bytes under Miri (whose per-byte
/// atomic copies are slow).
const UNIT: usize = if cfg!(miri) { 64 } else { 4096 };

fn kind<T: std::fmt::Debug>(r: Result<T, shm_region::Error>) -> ErrorKind {
    r.unwrap_err().kind()
}

/// An in-memory region of `size` bytes with room for `capacity`.
fn region(size: usize, capacity: usize) -> MmapRegion {
    MmapOptions::new()
        .address_space(capacity)
        .in_memory(size)
        .unwrap()
}

#[test]
fn in_memory_resize_grows_in_place_keeping_old_bytes_and_zeroing_new_ones() {
    let (old, new) = (3 * UNIT + 10, 64 * UNIT + 3);
    let mut host = region(old, new);
    let before = host.region();
    let pattern: Vec<u8> = (0..old).map(|i| u8::try_from(i % 251).unwrap()).collect();
    before.write_at(0, &pattern).unwrap();

    host.resize(new).unwrap();
    assert_eq!((host.len(), host.generation()), (new, 1));
    let after = host.region();
    assert_eq!(after.as_ptr(), before.as_ptr(), "base moved");
    assert_eq!((after.len(), after.generation()), (new, 1));
    let mut all = vec![0xEE; new];
    after.read_at(0, &mut all).unwrap();
    assert_eq!(&all[..old], &pattern[..]);
    assert!(all[old..].iter().all(|&b| b == 0), "new bytes not zero");
    // The old view keeps its length and its bytes.
    let mut b = [0u8; 10];
    before.read_at(old - 10, &mut b).unwrap();
    assert_eq!(&b, &pattern[old - 10..]);
    assert_eq!(
        kind(before.read_at(old, &mut b[..1])),
        ErrorKind::OutOfBounds
    );
}

#[test]
fn in_memory_resize_to_the_same_length_is_a_no_op() {
    let mut host = region(UNIT, 2 * UNIT);
    let view = host.region();
    host.resize(UNIT).unwrap();
    assert_eq!((host.len(), host.generation()), (UNIT, 0));
    assert!(view.is_current());
}

#[test]
fn in_memory_resize_smaller_is_refused_names_both_lengths_and_changes_nothing() {
    let mut host = region(2 * UNIT, 2 * UNIT);
    host.region().write_at(2 * UNIT - 1, &[7]).unwrap();
    let err = host.resize(UNIT).unwrap_err();
    assert_eq!(
        (err.kind(), err.operation()),
        (ErrorKind::ShrinkRefused, "resize")
    );
    let text = err.to_string();
    for n in [UNIT, 2 * UNIT] {
        assert!(text.contains(&n.to_string()), "{text}");
    }
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::InvalidInput
    );
    assert_eq!((host.len(), host.generation()), (2 * UNIT, 0));
    let mut b = [0];
    host.region().read_at(2 * UNIT - 1, &mut b).unwrap();
    assert_eq!(b, [7]);
}

#[test]
fn in_memory_resize_to_unrepresentable_or_uncovered_sizes_is_refused_and_keeps_the_region() {
    // The capacity is rounded up to whole pages (4096 bytes here).
    const CAPACITY: usize = 4096;
    let half = CAPACITY / 2;
    let mut host = region(half, CAPACITY);
    let too_big = usize::try_from(isize::MAX).unwrap() + 1;
    assert_eq!(kind(host.resize(too_big)), ErrorKind::InvalidSize);
    assert_eq!(kind(host.resize(usize::MAX)), ErrorKind::InvalidSize);
    // Representable, past the capacity fixed at creation.
    let err = host.resize(CAPACITY + 1).unwrap_err();
    assert_eq!(
        (err.kind(), err.operation()),
        (ErrorKind::Unsupported, "resize")
    );
    assert_eq!((host.len(), host.generation()), (half, 0));
    host.region().write_at(half - 4, b"ok!!").unwrap();
    host.resize(CAPACITY).unwrap();
    assert_eq!(host.generation(), 1);
    let mut b = [0u8; 4];
    host.region().read_at(half - 4, &mut b).unwrap();
    assert_eq!(&b, b"ok!!");
}

#[test]
fn in_memory_resize_past_max_size_is_file_too_large_names_the_limit_and_changes_nothing() {
    let mut host = MmapOptions::new()
        .max_size(2 * UNIT)
        .address_space(4 * UNIT)
        .in_memory(UNIT)
        .unwrap();
    host.region().write_at(0, b"kept").unwrap();
    let err = host.resize(2 * UNIT + 1).unwrap_err();
    assert_eq!(
        (err.kind(), err.operation()),
        (ErrorKind::FileTooLarge, "resize")
    );
    let text = err.to_string();
    assert!(text.contains(&(2 * UNIT).to_string()), "{text}");
    assert!(text.contains("max_size"), "{text}");
    assert_eq!((host.len(), host.generation()), (UNIT, 0));
    host.resize(2 * UNIT).unwrap();
    assert_eq!((host.len(), host.generation()), (2 * UNIT, 1));
    let mut b = [0u8; 4];
    host.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"kept");
}

#[test]
fn in_memory_stale_view_stays_usable_and_refresh_moves_it_to_the_newest_length() {
    let mut host = region(UNIT, 3 * UNIT);
    let mut view = host.region();
    let clone = view.clone();
    host.resize(2 * UNIT).unwrap();
    host.resize(3 * UNIT).unwrap();
    assert!(!view.is_current() && !clone.is_current());
    assert_eq!((view.len(), view.generation()), (UNIT, 0));
    assert_eq!(kind(view.write_at(UNIT, &[1])), ErrorKind::OutOfBounds);
    view.write_at(UNIT - 1, &[4]).unwrap();
    assert!(view.refresh());
    assert!(view.is_current());
    assert_eq!((view.len(), view.generation()), (3 * UNIT, 2));
    assert!(!view.refresh(), "nothing newer");
    view.write_at(3 * UNIT - 1, &[5]).unwrap();
    let mut b = [0u8; 1];
    clone.read_at(UNIT - 1, &mut b).unwrap();
    assert_eq!(b, [4], "the stale clone sees the same bytes");
    assert_eq!(
        (clone.len(), clone.generation()),
        (UNIT, 0),
        "clones are independent"
    );
}

#[test]
fn in_memory_out_of_bounds_and_overflowing_accesses_are_out_of_bounds() {
    let host = region(100, 2 * UNIT);
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
        (r.write_at(104, &[1]), "inside the capacity but past len"),
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
    assert_eq!(
        kind(r.load_u32(100, Ordering::Relaxed)),
        ErrorKind::OutOfBounds
    );
}

#[test]
fn in_memory_misaligned_atomics_are_refused_and_aligned_ones_are_shared_with_a_peer() {
    let host = region(UNIT, UNIT);
    let peer = host.peer().unwrap();
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
        peer.region().atomic_u64(8).unwrap().load(Ordering::Acquire),
        0x0102_0304_0506_0708
    );
    peer.region()
        .atomic_u32(UNIT - 4)
        .unwrap()
        .fetch_add(3, Ordering::AcqRel);
    assert_eq!(r.atomic_u32(UNIT - 4).unwrap().load(Ordering::Acquire), 3);
}

#[test]
fn in_memory_growth_and_bytes_written_after_it_reach_a_view_on_another_thread() {
    let mut host = region(UNIT, 16 * UNIT);
    let view = host.region();
    let reader = std::thread::spawn(move || {
        let mut v = view;
        let mut b = [0u8; 3];
        // Bounded: the owner grows and writes right after the spawn.
        for _ in 0..1_000_000 {
            v.refresh();
            if v.len() == 16 * UNIT && v.read_at(16 * UNIT - 3, &mut b).is_ok() && b == *b"end" {
                return v.generation();
            }
            std::thread::yield_now();
        }
        panic!("never saw the growth and the tail bytes");
    });
    assert_eq!(
        kind(host.region().write_at(UNIT, b"no")),
        ErrorKind::OutOfBounds
    );
    host.resize(16 * UNIT).unwrap();
    host.region().write_at(16 * UNIT - 3, b"end").unwrap();
    assert_eq!(reader.join().unwrap(), 1);
}
