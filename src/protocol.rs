//! The remapping protocol, independent of what a mapping is.
//!
//! One [`Publisher`] (held by the `MmapRegion`) and any number of [`View`]s
//! (the `Region`s) share a [`Shared`] block:
//!
//! - `current`, under a mutex, is the newest [`Snapshot`]: the mapping (an
//!   `Arc`, so every view that holds it keeps it alive), its published length
//!   and its generation. The three are written together under the lock and
//!   read together under the lock, so a view that holds generation `g` holds
//!   exactly `g`'s mapping and length.
//! - `generation` mirrors `current.generation`. It is stored with `Release`
//!   after the snapshot is replaced (still under the lock), and a view's
//!   staleness check is one `Acquire` load of it compared with the view's own
//!   generation: no lock and no system call on the fast path.
//! - `limit` is the lowest file length seen after a peer truncated the file
//!   (`usize::MAX` until then). Every checked access of every view bounds
//!   itself by `min(view length, limit)`, so once a truncation is detected and
//!   published, no checked access reaches past the new end.
//!
//! A mapping is released when the last `Arc` to it drops: the publisher drops
//! its reference when it publishes a replacement, and each view drops its
//! own when it refreshes or is dropped. Nothing ever frees a mapping a view
//! still holds.
//!
//! The module is generic over the mapping type so that the protocol can be
//! model-checked with loom and run under Miri over a heap stand-in. Built
//! with `--cfg loom` it is public (and hidden from the docs) so that
//! `tests/loom.rs` can drive it; otherwise it is private to the crate.

use crate::sync::{lock, Arc, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::sys::range_fits;

/// One published state: a mapping, the length valid in it, and its
/// generation.
struct Snapshot<M> {
    map: Arc<M>,
    len: usize,
    generation: u64,
}

impl<M> Clone for Snapshot<M> {
    fn clone(&self) -> Self {
        Self {
            map: Arc::clone(&self.map),
            len: self.len,
            generation: self.generation,
        }
    }
}

/// The state shared by a publisher and its views.
struct Shared<M> {
    generation: AtomicU64,
    limit: AtomicUsize,
    current: Mutex<Snapshot<M>>,
}

/// A handle on one published state, able to check whether it is still the
/// newest and to move to the newest.
pub struct View<M> {
    shared: Arc<Shared<M>>,
    snap: Snapshot<M>,
}

impl<M> Clone for View<M> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            snap: self.snap.clone(),
        }
    }
}

#[allow(
    clippy::len_without_is_empty,
    reason = "internal type; lengths are never zero"
)]
impl<M> View<M> {
    /// The mapping this view holds.
    #[inline]
    pub fn map(&self) -> &M {
        &self.snap.map
    }

    /// The shared reference to this view's mapping.
    #[inline]
    pub fn map_arc(&self) -> &Arc<M> {
        &self.snap.map
    }

    /// The length published with this view's generation.
    #[inline]
    pub fn len(&self) -> usize {
        self.snap.len
    }

    /// This view's generation.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.snap.generation
    }

    /// Whether no newer state has been published: one atomic load.
    #[inline]
    pub fn is_current(&self) -> bool {
        self.shared.generation.load(Ordering::Acquire) == self.snap.generation
    }

    /// Moves to the newest published state; `true` if that changed anything.
    pub fn refresh(&mut self) -> bool {
        if self.is_current() {
            return false;
        }
        let newest = lock(&self.shared.current).clone();
        let changed = newest.generation != self.snap.generation;
        // The old snapshot (and possibly the last reference to its mapping)
        // is dropped here, outside the lock.
        self.snap = newest;
        changed
    }

    /// The number of bytes a checked access may reach: the view's length,
    /// lowered to the truncation limit once one has been published.
    #[inline]
    pub fn accessible_len(&self) -> usize {
        self.snap.len.min(self.shared.limit.load(Ordering::Acquire))
    }

    /// Whether `len` bytes at `offset` are within [`Self::accessible_len`].
    #[inline]
    pub fn check(&self, offset: usize, len: usize) -> bool {
        range_fits(offset, len, self.accessible_len())
    }

    /// Records that the file ended at or before `end`, as
    /// [`Publisher::truncate`] does: limits only ever go down. Used when a
    /// view finds its mapping cut by a contained `SIGBUS`.
    #[inline]
    pub fn lower_limit(&self, end: usize) {
        self.shared.limit.fetch_min(end, Ordering::AcqRel);
    }

    /// The truncation limit (`usize::MAX` when no truncation was seen).
    pub fn truncation_limit(&self) -> usize {
        self.shared.limit.load(Ordering::Acquire)
    }
}

/// What [`Publisher::follow`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The file has the published length.
    Unchanged,
    /// The file grew; the new length was mapped and published.
    Grew,
    /// The file is shorter than the published length; the truncation limit
    /// was lowered to its length.
    Truncated,
}

/// The one handle allowed to publish new states. Not `Clone`.
pub struct Publisher<M> {
    view: View<M>,
}

impl<M> Publisher<M> {
    /// Starts generation 0 with `map` holding `len` valid bytes.
    pub fn new(map: Arc<M>, len: usize) -> Self {
        let snap = Snapshot {
            map,
            len,
            generation: 0,
        };
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            limit: AtomicUsize::new(usize::MAX),
            current: Mutex::new(snap.clone()),
        });
        Self {
            view: View { shared, snap },
        }
    }

    /// The publisher's own view, always current.
    #[inline]
    pub fn current(&self) -> &View<M> {
        &self.view
    }

    /// Whether nothing but this publisher holds its newest mapping or its
    /// state: no view exists, and no other holder of the mapping (such as a
    /// shared word made from a view). Views of older generations hold the
    /// state, so they count too.
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        allow(dead_code, reason = "only `MmapRegion::freeze` asks, on Linux")
    )]
    pub fn is_sole_holder(&self) -> bool {
        // The publisher's own snapshot and the one under the lock.
        Arc::strong_count(&self.view.shared) == 1 && Arc::strong_count(&self.view.snap.map) == 2
    }

    /// Publishes `map` with `len` valid bytes as the next generation and
    /// returns that generation.
    pub fn publish(&mut self, map: Arc<M>, len: usize) -> u64 {
        // Wrapping is unreachable in practice (2^64 publications), and even
        // then only `is_current` could answer wrongly: each view holds its
        // own mapping, so memory safety does not rest on the counter.
        let generation = self.view.snap.generation.wrapping_add(1);
        let snap = Snapshot {
            map,
            len,
            generation,
        };
        let old = {
            let mut cur = lock(&self.view.shared.current);
            let old = std::mem::replace(&mut *cur, snap.clone());
            self.view
                .shared
                .generation
                .store(generation, Ordering::Release);
            old
        };
        // The previous snapshot's mapping is released here, outside the
        // lock, unless a view still holds it.
        drop(old);
        self.view.snap = snap;
        generation
    }

    /// Brings the published state in line with a file that is now
    /// `file_len` bytes long: publishes a mapping of the growth (made by
    /// `remap` from the current mapping and the new length), or records a
    /// truncation. Once a truncation was recorded, by this call or an
    /// earlier one, it returns [`Follow::Truncated`] whatever `file_len` is
    /// and publishes nothing. Never asks for the file to change.
    ///
    /// # Errors
    ///
    /// Whatever `remap` returns; nothing is published then.
    pub fn follow<E>(
        &mut self,
        file_len: usize,
        remap: impl FnOnce(&Arc<M>, usize) -> Result<Arc<M>, E>,
    ) -> Result<Follow, E> {
        let cur = self.view.len();
        if file_len < cur {
            self.truncate(file_len);
        }
        // Truncations are sticky: once one was seen, the handle never
        // follows again, even if the file has since grown back.
        if self.truncated() {
            return Ok(Follow::Truncated);
        }
        if file_len == cur {
            return Ok(Follow::Unchanged);
        }
        let map = remap(self.view.map_arc(), file_len)?;
        self.publish(map, file_len);
        Ok(Follow::Grew)
    }

    /// Whether a growth of this handle must be refused because the file,
    /// now `file_len` bytes long, is shorter than the published length, or
    /// was seen shorter before (truncations are sticky). A new shortfall is
    /// recorded, as [`follow`](Self::follow) records it.
    pub fn refuses_growth(&self, file_len: usize) -> bool {
        if file_len < self.view.len() {
            self.truncate(file_len);
        }
        self.truncated()
    }

    /// Whether a truncation below the published length was ever recorded.
    fn truncated(&self) -> bool {
        self.view.accessible_len() < self.view.len()
    }

    /// Records that the backing file now ends at `end`: from now on no
    /// checked access of any view reaches past it. Limits only ever go down.
    pub fn truncate(&self, end: usize) {
        self.view.lower_limit(end);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A heap stand-in for a mapping whose release is observable.
    struct Heap {
        bytes: Vec<u8>,
        released: Arc<AtomicBool>,
    }

    impl Drop for Heap {
        fn drop(&mut self) {
            assert!(
                !self.released.swap(true, Ordering::SeqCst),
                "released twice"
            );
        }
    }

    fn heap(len: usize) -> (Arc<Heap>, Arc<AtomicBool>) {
        let released = Arc::new(AtomicBool::new(false));
        let h = Heap {
            bytes: vec![0; len],
            released: Arc::clone(&released),
        };
        (Arc::new(h), released)
    }

    #[test]
    fn sole_holder_until_a_view_or_another_holder_of_the_mapping_exists() {
        let (m0, released) = heap(8);
        let mut p = Publisher::new(Arc::clone(&m0), 8);
        assert!(!p.is_sole_holder(), "the test still holds the mapping");
        drop(m0);
        assert!(p.is_sole_holder());
        let v = p.current().clone();
        assert!(!p.is_sole_holder(), "a view");
        drop(v);
        assert!(p.is_sole_holder());
        // A view of an older generation holds the state.
        let old = p.current().clone();
        let (m1, _) = heap(8);
        p.publish(m1, 8);
        assert!(!released.load(Ordering::SeqCst));
        assert!(!p.is_sole_holder(), "a view of an older generation");
        drop(old);
        assert!(released.load(Ordering::SeqCst));
        assert!(p.is_sole_holder());
    }

    #[test]
    fn publish_makes_old_views_stale_and_refresh_catches_up() {
        let (m0, _) = heap(8);
        let mut p = Publisher::new(m0, 8);
        let mut v = p.current().clone();
        assert!(v.is_current());
        assert!(!v.refresh());
        let (m1, _) = heap(16);
        assert_eq!(p.publish(m1, 16), 1);
        assert!(!v.is_current());
        assert_eq!((v.generation(), v.len()), (0, 8));
        assert!(v.refresh());
        assert_eq!((v.generation(), v.len(), v.map().bytes.len()), (1, 16, 16));
        assert!(v.is_current());
    }

    #[test]
    fn mapping_is_released_after_the_last_view_only() {
        let (m0, released0) = heap(8);
        let mut p = Publisher::new(m0, 8);
        let v = p.current().clone();
        let (m1, released1) = heap(16);
        p.publish(m1, 16);
        assert!(!released0.load(Ordering::SeqCst), "a view still holds it");
        drop(v);
        assert!(released0.load(Ordering::SeqCst));
        let v1 = p.current().clone();
        drop(p);
        assert!(!released1.load(Ordering::SeqCst));
        drop(v1);
        assert!(released1.load(Ordering::SeqCst));
    }

    #[test]
    fn truncation_limit_bounds_every_view_and_only_goes_down() {
        let (m0, _) = heap(100);
        let p = Publisher::new(m0, 100);
        let v = p.current().clone();
        assert!(v.check(90, 10));
        p.truncate(50);
        assert!(!v.check(49, 2));
        assert!(v.check(48, 2));
        assert!(!p.current().check(50, 1));
        p.truncate(80);
        assert_eq!(v.accessible_len(), 50);
        assert_eq!(v.truncation_limit(), 50);
    }

    #[test]
    fn follow_publishes_growth_records_truncation_and_never_remaps_otherwise() {
        let (m0, _) = heap(8);
        let mut p = Publisher::new(Arc::clone(&m0), 8);
        let never = |_: &Arc<Heap>, _: usize| -> Result<Arc<Heap>, ()> { panic!("remapped") };
        assert_eq!(p.follow(8, never), Ok(Follow::Unchanged));
        assert_eq!(p.current().generation(), 0);
        assert_eq!(
            p.follow(16, |cur, len| {
                assert_eq!(len, 16);
                Ok::<_, ()>(Arc::clone(cur))
            }),
            Ok(Follow::Grew)
        );
        assert_eq!((p.current().generation(), p.current().len()), (1, 16));
        assert_eq!(p.follow(32, |_, _| Err("no memory")), Err("no memory"));
        assert_eq!((p.current().generation(), p.current().len()), (1, 16));
        assert_eq!(p.follow(4, never), Ok(Follow::Truncated));
        assert_eq!(
            (p.current().generation(), p.current().accessible_len()),
            (1, 4)
        );
        // Sticky: a file grown back (or unchanged) is still reported.
        assert_eq!(p.follow(64, never), Ok(Follow::Truncated));
        assert_eq!(p.follow(16, never), Ok(Follow::Truncated));
        assert_eq!((p.current().generation(), p.current().len()), (1, 16));
    }

    #[test]
    fn concurrent_refreshes_see_consistent_snapshots_while_publishing() {
        // Under Miri this also runs the data-race detector over the protocol.
        let (m0, _) = heap(1);
        let mut p = Publisher::new(m0, 1);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let mut v = p.current().clone();
                std::thread::spawn(move || {
                    let mut last = 0;
                    for _ in 0..20 {
                        v.refresh();
                        // A snapshot's length always matches its mapping.
                        assert_eq!(v.map().bytes.len(), v.len());
                        assert_eq!(v.len(), usize::try_from(v.generation()).unwrap() + 1);
                        assert!(v.generation() >= last);
                        last = v.generation();
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        for g in 1..=10 {
            let (m, _) = heap(g + 1);
            p.publish(m, g + 1);
        }
        for r in readers {
            r.join().unwrap();
        }
    }

    #[test]
    fn growth_is_refused_after_a_shrink_even_once_the_file_regrew() {
        let (m0, _) = heap(100);
        let p = Publisher::new(m0, 100);
        assert!(!p.refuses_growth(100));
        assert!(!p.refuses_growth(150), "a peer's growth is no shrink");
        assert!(p.refuses_growth(60));
        assert_eq!(p.current().accessible_len(), 60);
        assert!(p.refuses_growth(200), "sticky after the file regrew");
    }

    #[test]
    fn checked_ranges_never_overflow() {
        let (m0, _) = heap(10);
        let p = Publisher::new(m0, 10);
        let v = p.current();
        assert!(v.check(10, 0));
        assert!(!v.check(usize::MAX, 1));
        assert!(!v.check(1, usize::MAX));
        assert!(!v.check(11, 0));
    }
}
