//! Loom models of the remapping protocol (`src/protocol.rs`).
//!
//! Run with:
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" cargo test --release --test loom
//! ```
//!
//! Loom cannot model `mmap`, so the protocol runs over [`HeapMap`], a heap
//! stand-in whose pages are `loom::cell::UnsafeCell`s: loom reports a read
//! that is not ordered after the write it could see (a causality violation),
//! and a release writes a poison value through `with_mut`, so a read racing a
//! release is reported and a read after one fails its assertion.
#![cfg(loom)]
// The stand-in reads and writes loom cells, which takes `unsafe`; each use
// is justified where it appears. The crate itself keeps its unsafe in src/sys/.
#![allow(unsafe_code)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use shm_region::protocol::{Follow, Publisher, View};

const POISON: u64 = 0xDEAD;

/// A mapping stand-in: `pages.len()` is its reservation; pages past the
/// published length are never read.
struct HeapMap {
    pages: Vec<UnsafeCell<u64>>,
    releases: Arc<AtomicUsize>,
}

impl HeapMap {
    /// A mapping with `capacity` pages, page `i` holding `init(i)`.
    fn new(capacity: usize, releases: &Arc<AtomicUsize>, init: impl Fn(usize) -> u64) -> Arc<Self> {
        Arc::new(Self {
            pages: (0..capacity).map(|i| UnsafeCell::new(init(i))).collect(),
            releases: Arc::clone(releases),
        })
    }

    fn read(&self, page: usize) -> u64 {
        // SAFETY: loom checks this read against every write to the cell; a
        // write not ordered before it (including the release's poison) is
        // reported as a causality violation instead of being undefined.
        let v = self.pages[page].with(|p| unsafe { *p });
        assert_ne!(v, POISON, "read a released mapping");
        v
    }

    fn write(&self, page: usize, value: u64) {
        // SAFETY: as in `read`; loom checks the write against all accesses.
        self.pages[page].with_mut(|p| unsafe { *p = value });
    }
}

impl Drop for HeapMap {
    fn drop(&mut self) {
        for page in &self.pages {
            // SAFETY: `&mut self`: no other reference exists unless the
            // protocol released too early, which loom then reports.
            page.with_mut(|p| unsafe { *p = POISON });
        }
        self.releases.fetch_add(1, Ordering::AcqRel);
    }
}

/// Reads every page a view may access: any released or unordered page
/// fails the model.
fn read_all(v: &View<HeapMap>) -> Vec<u64> {
    (0..v.len()).map(|p| v.map().read(p)).collect()
}

/// The in-place-or-new remap the real `MmapRegion` performs: extend in place
/// while the reservation has room, otherwise make a new mapping holding the
/// same "file" contents.
fn remap(
    releases: &Arc<AtomicUsize>,
) -> impl Fn(&Arc<HeapMap>, usize) -> Result<Arc<HeapMap>, ()> + '_ {
    move |cur, len| {
        if len <= cur.pages.len() {
            Ok(Arc::clone(cur))
        } else {
            Ok(HeapMap::new(len, releases, |i| {
                100 + u64::try_from(i).unwrap()
            }))
        }
    }
}

/// Model 1. A grow publishes generation 1 (in place, after writing the new
/// page and updating an old one) while another thread refreshes a view and
/// reads. Proves: a reader that sees `is_current() == false` also sees every
/// write the publisher made before publishing (the generation load is an
/// Acquire that pairs with the publish's Release); a reader that refreshes
/// to generation g holds exactly g's length and mapping; no reader touches a
/// released mapping.
#[test]
fn grow_publishes_consistent_generation_length_and_base() {
    loom::model(|| {
        let releases = Arc::new(AtomicUsize::new(0));
        let map = HeapMap::new(2, &releases, |_| 7);
        let mut publisher = Publisher::new(Arc::clone(&map), 1);
        let view = publisher.current().clone();
        let reader = thread::spawn(move || {
            let mut v = view;
            if !v.is_current() {
                // Page 0 was rewritten before the publish: visible now.
                assert_eq!(v.map().read(0), 8);
            }
            if v.refresh() {
                assert_eq!((v.generation(), v.len()), (1, 2));
                assert_eq!(read_all(&v), [8, 9]);
            } else {
                assert_eq!((v.generation(), v.len()), (0, 1));
            }
        });
        map.write(1, 9); // the grown tail
        map.write(0, 8); // data the host wrote before growing
        assert_eq!(publisher.publish(Arc::clone(&map), 2), 1);
        drop(map);
        reader.join().unwrap();
        drop(publisher);
        assert_eq!(releases.load(Ordering::Acquire), 1, "released exactly once");
    });
}

/// Model 2. Two attached handles follow a "file" (its length in pages)
/// with `follow` (the core of `check_and_remap`) while the creator grows it
/// twice, the second time past the reservation. Proves: each handle ends on
/// the newest length, its generations only increase, views taken before the
/// growth stay readable (no mapping released while a view holds it), and
/// every mapping is released exactly once in the end.
#[test]
fn attached_handles_follow_two_grows_and_keep_old_views_alive() {
    loom::model(|| {
        let releases = Arc::new(AtomicUsize::new(0));
        let file_len = Arc::new(AtomicUsize::new(1));
        let creator = {
            let file_len = Arc::clone(&file_len);
            thread::spawn(move || {
                file_len.store(2, Ordering::Release);
                file_len.store(3, Ordering::Release);
            })
        };
        let followers: Vec<_> = (0..2)
            .map(|_| {
                let (file_len, releases) = (Arc::clone(&file_len), Arc::clone(&releases));
                thread::spawn(move || {
                    let map = HeapMap::new(2, &releases, |i| 100 + u64::try_from(i).unwrap());
                    let mut handle = Publisher::new(map, 1);
                    let first = handle.current().clone();
                    let mut last_gen = 0;
                    for _ in 0..2 {
                        let len = file_len.load(Ordering::Acquire);
                        let f = handle.follow(len, remap(&releases)).unwrap();
                        assert_ne!(f, Follow::Truncated);
                        let g = handle.current().generation();
                        assert!(g >= last_gen, "generation went back");
                        last_gen = g;
                        assert_eq!(read_all(&first), [100]);
                    }
                    (handle, first)
                })
            })
            .collect();
        creator.join().unwrap();
        for t in followers {
            let (mut handle, first) = t.join().unwrap();
            let before = handle.current().generation();
            handle
                .follow(file_len.load(Ordering::Acquire), remap(&releases))
                .unwrap();
            let v = handle.current().clone();
            assert_eq!(v.len(), 3, "did not end on the newest length");
            assert!(v.generation() >= before && v.generation() <= 2);
            assert_eq!(read_all(&v), [100, 101, 102]);
            assert_eq!(read_all(&first), [100]);
        }
        // Each follower made one mapping at start and one past the
        // reservation; all are released once everything is dropped.
        assert_eq!(releases.load(Ordering::Acquire), 4);
    });
}

/// Model 3. The owning handle is dropped on one thread while two views are
/// read and dropped on others. Proves: the mapping is released exactly
/// once, and only after the last view (no read ever sees the poison or
/// races the release).
#[test]
fn dropping_the_owner_releases_the_mapping_once_after_the_last_view() {
    loom::model(|| {
        let releases = Arc::new(AtomicUsize::new(0));
        let publisher = Publisher::new(HeapMap::new(1, &releases, |_| 5), 1);
        let v1 = publisher.current().clone();
        let v2 = v1.clone();
        let owner = thread::spawn(move || drop(publisher));
        let readers: Vec<_> = [v1, v2]
            .into_iter()
            .map(|v| {
                thread::spawn(move || {
                    assert_eq!(read_all(&v), [5]);
                    drop(v);
                })
            })
            .collect();
        owner.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(releases.load(Ordering::Acquire), 1);
    });
}

/// Model 4. A truncation is detected (by `follow`, as `check_and_remap`
/// does) on one thread and announced with a Release flag, while another
/// thread checks accesses through a view taken earlier. Proves: once the
/// detection is visible, no checked access past the new end succeeds, while
/// accesses below it still do.
#[test]
fn detected_truncation_fences_checked_accesses_of_every_view() {
    loom::model(|| {
        let releases = Arc::new(AtomicUsize::new(0));
        let mut publisher = Publisher::new(HeapMap::new(4, &releases, |_| 1), 4);
        let view = publisher.current().clone();
        let detected = Arc::new(AtomicBool::new(false));
        let detector = {
            let detected = Arc::clone(&detected);
            thread::spawn(move || {
                let f = publisher
                    .follow(2, |_, _| Err::<Arc<HeapMap>, ()>(()))
                    .unwrap();
                assert_eq!(f, Follow::Truncated);
                detected.store(true, Ordering::Release);
                publisher
            })
        };
        let seen = detected.load(Ordering::Acquire);
        let past_end = view.check(3, 1);
        let straddling = view.check(1, 2);
        if seen {
            assert!(!past_end && !straddling, "access past the new end allowed");
        }
        assert!(view.check(1, 1), "access below the new end refused");
        let publisher = detector.join().unwrap();
        assert!(!view.check(2, 1));
        assert_eq!(publisher.current().accessible_len(), 2);
    });
}
