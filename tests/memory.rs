//! In-memory regions (`MmapRegion::in_memory`) and `MmapRegion::peer`: the
//! same views, generations and checks as file-backed regions, with no file.
//! The tests without a file also run under Miri (`cargo +nightly miri test`),
//! whose data-race and leak checkers then judge the crate's copies, atomics
//! and the lifetime of its memory.
#![cfg(unix)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use shm_region::{ErrorKind, MmapOptions, MmapRegion};

const PAGE: usize = 4096;

fn kind<T: std::fmt::Debug>(r: Result<T, shm_region::Error>) -> ErrorKind {
    r.unwrap_err().kind()
}

fn small(size: usize, capacity: usize) -> MmapRegion {
    MmapOptions::new()
        .address_space(capacity)
        .in_memory(size)
        .unwrap()
}

#[test]
fn in_memory_region_grows_in_place_within_its_capacity_and_refuses_beyond() {
    let mut host = small(PAGE, 4 * PAGE);
    let view = host.region();
    // Never empty: a size of 0 is refused and a region only grows.
    assert!(!view.is_empty() && !host.is_empty());
    assert_eq!(view.len(), PAGE);
    host.region().write_at(10, b"kept").unwrap();
    host.resize(4 * PAGE).unwrap();
    assert_eq!((host.len(), host.generation()), (4 * PAGE, 1));
    assert_eq!(host.region().as_ptr(), view.as_ptr(), "grown in place");
    assert!(!view.is_current());
    let mut b = [1u8; 4];
    host.region().read_at(10, &mut b).unwrap();
    assert_eq!(&b, b"kept");
    host.region().read_at(4 * PAGE - 4, &mut b).unwrap();
    assert_eq!(b, [0; 4], "new bytes are zero");
    // Beyond the capacity fixed at creation: refused, nothing changes.
    assert_eq!(kind(host.resize(4 * PAGE + 1)), ErrorKind::Unsupported);
    assert_eq!((host.len(), host.generation()), (4 * PAGE, 1));
    assert_eq!(kind(host.resize(PAGE)), ErrorKind::ShrinkRefused);
    host.region().write_at(4 * PAGE - 1, &[9]).unwrap();
}

#[test]
fn in_memory_sizes_are_checked_like_file_sizes() {
    assert_eq!(kind(MmapRegion::in_memory(0)), ErrorKind::InvalidSize);
    assert_eq!(
        kind(MmapRegion::in_memory(usize::MAX)),
        ErrorKind::InvalidSize
    );
    let mut opts = MmapOptions::new();
    opts.max_size(PAGE).address_space(2 * PAGE);
    assert_eq!(kind(opts.in_memory(PAGE + 1)), ErrorKind::FileTooLarge);
    let mut r = opts.in_memory(PAGE).unwrap();
    assert_eq!(kind(r.resize(PAGE + 1)), ErrorKind::FileTooLarge);
    assert_eq!(r.len(), PAGE);
    // A capacity that cannot be represented or had is `OutOfMemory` (no
    // file is involved), never an `Os` error or a panic.
    // (Miri stops the program on an allocation it cannot make, instead of
    // failing it, so the representable-but-too-large case runs natively.)
    let too_large: &[usize] = if cfg!(miri) {
        &[usize::MAX, usize::MAX / 2]
    } else {
        &[usize::MAX, usize::MAX / 2, 1 << 62]
    };
    for &capacity in too_large {
        let r = MmapOptions::new().address_space(capacity).in_memory(PAGE);
        assert_eq!(kind(r), ErrorKind::OutOfMemory, "{capacity}");
    }
    assert_eq!(kind(MmapRegion::in_memory(1 << 57)), ErrorKind::OutOfMemory);
}

#[test]
fn peer_of_an_in_memory_region_follows_growth_only_through_check_and_remap() {
    let mut host = small(PAGE, 8 * PAGE);
    let mut peer = host.peer().unwrap();
    assert_eq!((peer.len(), peer.generation()), (PAGE, 0));
    host.region().write_at(0, b"from host").unwrap();
    let mut b = [0u8; 9];
    peer.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"from host");

    host.resize(2 * PAGE).unwrap();
    // Not followed yet: the peer's views stay at its length.
    assert_eq!(peer.len(), PAGE);
    assert_eq!(
        kind(peer.region().read_at(PAGE, &mut b)),
        ErrorKind::OutOfBounds
    );
    assert!(peer.check_and_remap().unwrap());
    assert!(!peer.check_and_remap().unwrap());
    assert_eq!((peer.len(), peer.generation()), (2 * PAGE, 1));

    // A peer may grow too; the creator follows, and nothing shrinks.
    peer.resize(3 * PAGE).unwrap();
    peer.region().write_at(3 * PAGE - 4, b"tail").unwrap();
    assert!(host.check_and_remap().unwrap());
    let mut t = [0u8; 4];
    host.region().read_at(3 * PAGE - 4, &mut t).unwrap();
    assert_eq!(&t, b"tail");
    host.resize(3 * PAGE).unwrap();
    assert_eq!(host.generation(), 2);
    let late = host.peer().unwrap();
    assert_eq!((late.len(), late.generation()), (3 * PAGE, 0));
}

#[test]
fn in_memory_region_has_no_descriptor_or_path_and_never_truncates() {
    let mut r = small(PAGE, 2 * PAGE);
    assert!(r.fd().is_none());
    assert_eq!(r.path(), std::path::Path::new(""));
    assert!(!r.is_read_only());
    r.flush().unwrap();
    r.flush_async().unwrap();
    r.advise(shm_region::Advice::DontNeed).unwrap();
    r.region().write_at(0, b"still here").unwrap();
    r.advise_range(0, PAGE, shm_region::Advice::DontNeed)
        .unwrap();
    let mut b = [0u8; 10];
    r.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"still here", "advice never discards in-memory bytes");
    assert_eq!(kind(r.flush_range(PAGE, 1)), ErrorKind::OutOfBounds);
    assert!(!r.check_and_remap().unwrap());
}

#[test]
fn views_of_an_in_memory_region_outlive_every_handle() {
    // Under Miri this also checks the memory is freed exactly once, after
    // the last view (no leak, no use after free).
    let host = small(PAGE, 2 * PAGE);
    let peer = host.peer().unwrap();
    let view = peer.region();
    host.region().write_at(100, b"outlives").unwrap();
    drop(host);
    drop(peer);
    let mut b = [0u8; 8];
    view.read_at(100, &mut b).unwrap();
    assert_eq!(&b, b"outlives");
    view.atomic_u64(8).unwrap().store(5, Ordering::Relaxed);
    assert_eq!(view.load_u64(8, Ordering::Acquire).unwrap(), 5);
}

#[test]
fn threads_racing_copies_atomics_and_growth_on_an_in_memory_region() {
    // Four threads of one process: two copy the same bytes in and out, one
    // publishes through an atomic word, and the owner grows the region
    // while they refresh their views. Miri's data-race detector judges it;
    // every byte read must be one some thread wrote.
    const N: usize = if cfg!(miri) { 3 } else { 200 };
    let mut host = small(PAGE, 4 * PAGE);
    let shared = Arc::new(std::sync::Barrier::new(4));
    let mut threads = Vec::new();
    for fill in [0xA1u8, 0xB2] {
        let mut view = host.region();
        let barrier = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || {
            barrier.wait();
            let mut buf = [0u8; 64];
            for _ in 0..N {
                view.write_at(64, &[fill; 64]).unwrap();
                view.read_at(64, &mut buf).unwrap();
                assert!(buf.iter().all(|&b| b == 0 || b == 0xA1 || b == 0xB2));
                view.refresh();
            }
        }));
    }
    {
        let view = host.region();
        let barrier = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || {
            barrier.wait();
            let word = view.atomic_u64(0).unwrap();
            for i in 0..N {
                word.store(u64::try_from(i).unwrap(), Ordering::Release);
            }
        }));
    }
    shared.wait();
    for step in 2..=4 {
        host.resize(step * PAGE).unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(host.generation(), 3);
    let last = u64::try_from(N - 1).unwrap();
    assert_eq!(host.region().load_u64(0, Ordering::Acquire).unwrap(), last);
}

#[test]
fn handles_of_one_in_memory_region_resizing_in_turn_never_see_a_truncation() {
    // Three handles of one region, each growing it while the others lag
    // behind: a handle that grows from a length below the region's size
    // must not lower that size, so no handle ever sees its region shorter
    // than its own length (Truncated), and every handle follows to the
    // largest size asked for, exactly.
    let mut host = small(PAGE, 16 * PAGE);
    let mut a = host.peer().unwrap();
    let mut b = host.peer().unwrap();
    host.resize(8 * PAGE).unwrap();
    // `a` is still at one page and grows to two: the region stays at 8.
    a.resize(2 * PAGE).unwrap();
    assert_eq!(a.len(), 2 * PAGE);
    assert_eq!(host.check_and_remap(), Ok(false));
    assert_eq!((host.len(), host.generation()), (8 * PAGE, 1));
    // `b` grows to four, between `a` and the host.
    b.resize(4 * PAGE).unwrap();
    assert_eq!(host.check_and_remap(), Ok(false));
    assert_eq!(host.len(), 8 * PAGE);
    // The laggards follow the host's size; nothing goes back down.
    assert_eq!(a.check_and_remap(), Ok(true));
    assert_eq!(b.check_and_remap(), Ok(true));
    assert_eq!((a.len(), b.len()), (8 * PAGE, 8 * PAGE));
    assert_eq!(host.peer().unwrap().len(), 8 * PAGE);
    // A growth from a handle that followed raises it for everyone.
    a.resize(12 * PAGE).unwrap();
    b.resize(10 * PAGE).unwrap();
    for h in [&mut host, &mut b] {
        assert_eq!(h.check_and_remap(), Ok(true));
        assert_eq!(h.len(), 12 * PAGE);
    }
    assert_eq!(a.check_and_remap(), Ok(false));
    assert_eq!(host.peer().unwrap().len(), 12 * PAGE);
    a.region().write_at(12 * PAGE - 4, b"last").unwrap();
    let mut buf = [0u8; 4];
    b.region().read_at(12 * PAGE - 4, &mut buf).unwrap();
    assert_eq!(&buf, b"last");
}

#[test]
fn handles_of_one_in_memory_region_racing_to_grow_it_never_see_a_truncation() {
    // Three threads, each with its own handle of one region, follow and
    // grow it to interleaved sizes: no call sees a truncation, each handle
    // is at least as long as it asked for, and at the end every handle
    // follows to the largest size any thread asked for.
    const THREADS: usize = 3;
    const STEPS: usize = if cfg!(miri) { 4 } else { 200 };
    let host = small(PAGE, (1 + THREADS * STEPS) * PAGE);
    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut h = host.peer().unwrap();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for step in 0..STEPS {
                    let want = (1 + step * THREADS + t) * PAGE;
                    h.check_and_remap()
                        .unwrap_or_else(|e| panic!("thread {t} step {step}: {e}"));
                    if want > h.len() {
                        h.resize(want)
                            .unwrap_or_else(|e| panic!("thread {t} step {step}: {e}"));
                    }
                    assert!(h.len() >= want, "thread {t} step {step}");
                    h.region().write_at(h.len() - 1, &[1]).unwrap();
                }
                h
            })
        })
        .collect();
    let top = (THREADS * STEPS) * PAGE;
    // Every thread done first: then each handle follows to the top.
    let handles: Vec<MmapRegion> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for mut h in handles {
        h.check_and_remap().unwrap();
        assert_eq!(h.len(), top);
    }
    assert_eq!(host.peer().unwrap().len(), top);
}

#[cfg(not(miri))]
mod native {
    use super::*;
    use common::proc_status_bytes;

    /// This process's resident and locked memory (`VmRSS`, `VmLck`), bytes.
    fn resident_and_locked() -> (usize, usize) {
        (proc_status_bytes("VmRSS:"), proc_status_bytes("VmLck:"))
    }

    #[test]
    fn default_in_memory_capacity_costs_address_space_not_memory() {
        // The default capacity is at least 1 GiB, like a file mapping's
        // reservation; only touched pages may become resident, and locked
        // pages are unlocked when the region goes.
        let (rss, locked) = resident_and_locked();
        let mut r = MmapRegion::in_memory(PAGE).unwrap();
        r.resize(64 * PAGE).unwrap();
        r.region().write_at(64 * PAGE - 1, &[1]).unwrap();
        let (rss_now, _) = resident_and_locked();
        assert!(
            rss_now < rss + (16 << 20),
            "resident memory grew by {} bytes",
            rss_now.saturating_sub(rss)
        );
        drop(r);
        let l = MmapOptions::new().lock(true).in_memory(4 * PAGE).unwrap();
        assert_eq!(resident_and_locked().1, locked + 4 * PAGE);
        drop(l);
        assert_eq!(resident_and_locked().1, locked, "pages stay locked");
    }
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn peer_of_a_file_region_is_checked_like_attach_fd_and_never_owns_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let mut host = MmapRegion::create(&path, PAGE, shm_region::FileCleanup::Manual).unwrap();
        let mut peer = host.peer().unwrap();
        assert_eq!((peer.len(), peer.generation()), (PAGE, 0));
        assert_eq!(peer.path(), std::path::Path::new(""));
        assert_ne!(
            std::os::fd::AsRawFd::as_raw_fd(&peer.fd().unwrap()),
            std::os::fd::AsRawFd::as_raw_fd(&host.fd().unwrap())
        );
        host.resize(2 * PAGE).unwrap();
        assert_eq!(peer.len(), PAGE);
        assert!(peer.check_and_remap().unwrap());
        host.region().write_at(2 * PAGE - 2, b"ok").unwrap();
        let mut b = [0u8; 2];
        peer.region().read_at(2 * PAGE - 2, &mut b).unwrap();
        assert_eq!(&b, b"ok");
        drop(peer);
        assert!(path.exists(), "a peer never removes the file");
        // Checked now, like a descriptor from elsewhere.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(kind(host.peer()), ErrorKind::InsecureMode);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let reader = MmapRegion::attach_read_only(&path).unwrap();
        let reader_peer = reader.peer().unwrap();
        assert!(reader_peer.is_read_only());
        assert_eq!(
            kind(reader_peer.region().write_at(0, b"x")),
            ErrorKind::ReadOnly
        );
    }
}

#[test]
fn in_memory_regions_with_dont_dump_and_dont_fork_work_as_any_other() {
    // On Linux the advice marks the memory (tests/secrets.rs); under Miri,
    // where the memory is a heap allocation, it has no effect. Either way
    // the region works as without it.
    let mut host = MmapOptions::new()
        .address_space(4 * PAGE)
        .dont_dump(true)
        .dont_fork(true)
        .in_memory(PAGE)
        .unwrap();
    let mut peer = host.peer().unwrap();
    host.resize(4 * PAGE).unwrap();
    host.region().write_at(4 * PAGE - 6, b"secret").unwrap();
    assert_eq!(peer.ensure_len(4 * PAGE), Ok(true));
    let mut b = [0u8; 6];
    peer.region().read_at(4 * PAGE - 6, &mut b).unwrap();
    assert_eq!(&b, b"secret");
}
