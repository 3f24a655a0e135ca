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
#![cfg(unix)]
// The stand-in reads and writes loom cells, which takes `unsafe`; each use
// is justified where it appears. The crate itself keeps its unsafe in src/sys/.
#![allow(unsafe_code)]

mod common;
use common::model;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
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
    model(
        "grow_publishes_consistent_generation_length_and_base",
        || {
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
        },
    );
}

/// Model 2. An attached handle follows a "file" (its length in pages)
/// with `follow` (the core of `check_and_remap`) while the creator grows it
/// twice, the second time past the reservation. Proves: the handle ends on
/// the newest length, its generations only increase, a view taken before
/// the growth stays readable (no mapping released while a view holds it),
/// and every mapping is released exactly once in the end.
///
/// (This model once ran two followers. Followers share no protocol state,
/// only the file's length, so the second multiplied the interleavings,
/// 51,735 against 39 at bound 3, without checking anything more; races
/// between views of one handle are models 5 and 6.)
#[test]
fn attached_handle_follows_two_grows_and_keeps_old_views_alive() {
    model(
        "attached_handle_follows_two_grows_and_keeps_old_views_alive",
        || {
            let releases = Arc::new(AtomicUsize::new(0));
            let file_len = Arc::new(AtomicUsize::new(1));
            let follower = {
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
            };
            // The creator.
            file_len.store(2, Ordering::Release);
            file_len.store(3, Ordering::Release);
            let (mut handle, first) = follower.join().unwrap();
            let before = handle.current().generation();
            handle
                .follow(file_len.load(Ordering::Acquire), remap(&releases))
                .unwrap();
            let v = handle.current().clone();
            assert_eq!(v.len(), 3, "did not end on the newest length");
            assert!(v.generation() >= before && v.generation() <= 2);
            assert_eq!(read_all(&v), [100, 101, 102]);
            assert_eq!(read_all(&first), [100]);
            drop((handle, first, v));
            // One mapping at start and one past the reservation, each
            // released once everything is dropped.
            assert_eq!(releases.load(Ordering::Acquire), 2);
        },
    );
}

/// Model 3. The owning handle is dropped on one thread while two views are
/// read and dropped on others. Proves: the mapping is released exactly
/// once, and only after the last view (no read ever sees the poison or
/// races the release).
#[test]
fn dropping_the_owner_releases_the_mapping_once_after_the_last_view() {
    model(
        "dropping_the_owner_releases_the_mapping_once_after_the_last_view",
        || {
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
        },
    );
}

/// Model 4. A truncation is detected (by `follow`, as `check_and_remap`
/// does) on one thread and announced with a Release flag, while another
/// thread checks accesses through a view taken earlier. Proves: once the
/// detection is visible, no checked access past the new end succeeds, while
/// accesses below it still do.
#[test]
fn detected_truncation_fences_checked_accesses_of_every_view() {
    model(
        "detected_truncation_fences_checked_accesses_of_every_view",
        || {
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
        },
    );
}

/// A new mapping for generation `generation`, `generation + 1` pages long,
/// page `i` holding `10 * generation + i`: its contents name the generation
/// it was published as.
fn tagged(generation: u64, releases: &Arc<AtomicUsize>) -> Arc<HeapMap> {
    let pages = usize::try_from(generation).unwrap() + 1;
    HeapMap::new(pages, releases, move |i| {
        10 * generation + u64::try_from(i).unwrap()
    })
}

/// A view made by [`tagged`] publishes: its generation, its length and the
/// contents of its mapping must name the same generation.
fn assert_agrees(v: &View<HeapMap>) {
    let g = v.generation();
    assert_eq!(
        v.len(),
        usize::try_from(g).unwrap() + 1,
        "generation {g} labels the length of another generation"
    );
    let expected: Vec<u64> = (0..v.len())
        .map(|i| 10 * g + u64::try_from(i).unwrap())
        .collect();
    assert_eq!(
        read_all(v),
        expected,
        "generation {g} labels the mapping of another"
    );
}

/// Model 5. A view refreshes (twice) while the publisher publishes two new
/// mappings (generations 1 and 2, each a new allocation, as a growth past
/// the reservation makes). Proves: a view that saw itself stale is moved by
/// the `refresh` that follows, to a newer generation; a view's generation,
/// length and mapping always belong together (the snapshot is labelled
/// with the generation it was published as, never with one re-read
/// later); generations never go back; each mapping is released exactly
/// once, after its last view (a read of a released mapping sees the
/// poison, a read racing the release is a causality violation).
#[test]
fn refresh_racing_two_publishes_of_new_mappings_moves_stale_views() {
    model(
        "refresh_racing_two_publishes_of_new_mappings_moves_stale_views",
        || {
            let releases = Arc::new(AtomicUsize::new(0));
            let mut publisher = Publisher::new(tagged(0, &releases), 1);
            let view = publisher.current().clone();
            let reader = thread::spawn(move || {
                let mut v = view;
                for _ in 0..2 {
                    let before = v.generation();
                    let stale = !v.is_current();
                    let moved = v.refresh();
                    if stale {
                        assert!(moved, "refresh did not move a view seen stale");
                    }
                    if moved {
                        assert!(v.generation() > before, "refresh moved backwards");
                    } else {
                        assert_eq!(v.generation(), before, "changed without saying so");
                    }
                    assert_agrees(&v);
                }
                v
            });
            assert_eq!(publisher.publish(tagged(1, &releases), 2), 1);
            assert_eq!(publisher.publish(tagged(2, &releases), 3), 2);
            let mut v = reader.join().unwrap();
            let was = v.generation();
            assert_eq!(v.refresh(), was != 2);
            assert!(v.is_current());
            assert_eq!(v.generation(), 2);
            assert_agrees(&v);
            // Generations 0 and 1 have no view left: released, once each.
            assert_eq!(releases.load(Ordering::Acquire), 2);
            drop(v);
            drop(publisher);
            assert_eq!(releases.load(Ordering::Acquire), 3, "released exactly once");
        },
    );
}

/// Model 6. Clones of one view are moved into two threads, which read,
/// refresh and drop them, while the publisher publishes a new mapping and
/// the original view is dropped. Proves: every clone reads its own mapping
/// intact whatever the order, one that saw itself stale is moved by its
/// refresh, and the old mapping is released exactly once, after the last
/// clone is dropped.
#[test]
fn views_cloned_into_threads_keep_their_mapping_until_the_last_drops() {
    model(
        "views_cloned_into_threads_keep_their_mapping_until_the_last_drops",
        || {
            let releases = Arc::new(AtomicUsize::new(0));
            let mut publisher = Publisher::new(tagged(0, &releases), 1);
            let view = publisher.current().clone();
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let mut v = view.clone();
                    thread::spawn(move || {
                        assert_agrees(&v);
                        let stale = !v.is_current();
                        let moved = v.refresh();
                        assert!(moved || !stale, "refresh did not move a view seen stale");
                        assert_eq!(v.generation(), u64::from(moved));
                        assert_agrees(&v);
                    })
                })
                .collect();
            drop(view);
            publisher.publish(tagged(1, &releases), 2);
            for r in readers {
                r.join().unwrap();
            }
            assert_eq!(
                releases.load(Ordering::Acquire),
                1,
                "old mapping not released once"
            );
            assert_agrees(publisher.current());
            drop(publisher);
            assert_eq!(releases.load(Ordering::Acquire), 2);
        },
    );
}

/// Model 7. Truncations race a publish and `refuses_growth` on one handle
/// (its publisher behind a mutex, as the methods of one `MmapRegion` used
/// from several threads would be): one thread records a truncation to 2
/// through `follow`; another publishes a longer mapping and then records a
/// second, higher truncation (to 3); the main thread checks accesses
/// through a view taken before, then asks `refuses_growth`. Proves: the
/// limit only goes down (the higher truncation never raises it, in any
/// order), `refuses_growth` answers true once a truncation was recorded and
/// false only before, a published growth never lifts the limit, and a
/// view's checks, once refused past the end, stay refused.
#[test]
fn truncations_race_a_publish_and_refuses_growth_and_only_lower_the_limit() {
    model(
        "truncations_race_a_publish_and_refuses_growth_and_only_lower_the_limit",
        || {
            let releases = Arc::new(AtomicUsize::new(0));
            let never =
                |_: &Arc<HeapMap>, _: usize| -> Result<Arc<HeapMap>, ()> { panic!("remapped") };
            let publisher = Publisher::new(HeapMap::new(4, &releases, |_| 1), 4);
            let mut view = publisher.current().clone();
            let handle = Arc::new(Mutex::new(publisher));
            let detector = {
                let handle = Arc::clone(&handle);
                thread::spawn(move || {
                    let f = handle.lock().unwrap().follow(2, never).unwrap();
                    assert_eq!(f, Follow::Truncated);
                })
            };
            let grower = {
                let (handle, releases) = (Arc::clone(&handle), Arc::clone(&releases));
                thread::spawn(move || {
                    let mut p = handle.lock().unwrap();
                    p.publish(HeapMap::new(6, &releases, |_| 2), 6);
                    drop(p);
                    handle.lock().unwrap().truncate(3);
                })
            };
            let mut refused = false;
            for _ in 0..2 {
                view.refresh();
                let past = view.check(2, 1);
                assert!(!(refused && past), "a lowered limit went back up");
                refused |= !past;
            }
            {
                // `refuses_growth` racing both.
                let p = handle.lock().unwrap();
                let (len, limit) = (p.current().len(), p.current().accessible_len());
                // A file of 5 is a truncation once the growth to 6 was
                // published, and no news before; refused exactly when a
                // truncation is (now) on record.
                assert_eq!(p.refuses_growth(5), limit < len || 5 < len);
                assert!(p.current().accessible_len() <= limit, "the limit went up");
            }
            for t in [detector, grower] {
                t.join().unwrap();
            }
            let mut p = handle.lock().unwrap();
            assert_eq!(
                p.current().accessible_len(),
                2,
                "the limit is not the lowest end"
            );
            assert!(p.refuses_growth(100));
            assert_eq!(p.follow(6, never), Ok(Follow::Truncated));
            assert_eq!((p.current().generation(), p.current().len()), (1, 6));
            view.refresh();
            assert!(!view.check(2, 1) && view.check(0, 2));
        },
    );
}
