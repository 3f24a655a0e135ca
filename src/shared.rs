//! `SharedU32` and `SharedU64`: atomic words of a region that own a
//! reference to their mapping instead of borrowing a view.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::Ordering;

// `std`'s atomics and `Arc`, or loom's under `--cfg loom`.
use crate::sync::{Arc, AtomicU32, AtomicU64};
use crate::sys::Mapping;

/// An atomic 4-byte word of a region, as
/// [`Region::atomic_u32`](crate::Region::atomic_u32) gives it, but owned:
/// it holds the mapping it points into instead of borrowing a view.
///
/// Made by [`Region::shared_u32`](crate::Region::shared_u32). It derefs to
/// [`AtomicU32`](std::sync::atomic::AtomicU32) and is `Clone`, `Send` and
/// `Sync`, so a control word can be stored in a struct or moved to another
/// thread. It stays valid after the view it came from is
/// [refreshed](crate::Region::refresh) or dropped and after its
/// [`MmapRegion`](crate::MmapRegion) is dropped, and it reaches the same
/// memory as every other view, handle and process mapping the file. The
/// mapping is released once the last view, handle and shared word holding
/// it are dropped.
///
/// The checks were made when it was made. Unlike the checked accessors of a
/// view it is not fenced by a truncation detected later: like an
/// `&AtomicU32` taken earlier, after a peer truncated the file below the
/// word, an access raises `SIGBUS` if the word's page is gone (with
/// [`sigbus::install`](crate::sigbus::install) that is contained: the page
/// is replaced by a zero page no peer sees, and a word whose page already
/// lies in a replaced area reads and writes that memory without a fault; a
/// later fault may reset it to zeros), and if the page remains (the file
/// ends inside it) the word is past the file's end: shared by the file's
/// mappers but no part of the file on disk (see `SECURITY.md`). The mixed-size rule
/// of [`Region::atomic_u32`](crate::Region::atomic_u32) applies.
///
/// Under loom it derefs to loom's `AtomicU32`, as `atomic_u32` does.
///
/// ```
/// # fn main() -> Result<(), shm_region::Error> {
/// use std::sync::atomic::Ordering;
/// use shm_region::MmapRegion;
///
/// let host = MmapRegion::in_memory(4096)?;
/// let flag = host.region().shared_u32(0)?;   // no borrow of the view
/// let worker = std::thread::spawn(move || flag.store(1, Ordering::Release));
/// worker.join().unwrap();
/// assert_eq!(host.region().load_u32(0, Ordering::Acquire)?, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SharedU32 {
    map: Arc<Mapping>,
    offset: usize,
}

impl SharedU32 {
    /// The word at `offset` of `map`, if `map` gives an atomic there.
    pub(crate) fn new(map: Arc<Mapping>, offset: usize) -> Option<Self> {
        map.atomic_u32(offset)?;
        Some(Self { map, offset })
    }

    /// The word's offset in the region.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl Deref for SharedU32 {
    type Target = AtomicU32;

    #[inline]
    fn deref(&self) -> &AtomicU32 {
        // `new` checked that the mapping gives an atomic at `offset`, and a
        // mapping's length and protection never change.
        self.map
            .atomic_u32(self.offset)
            .expect("checked when the shared word was made")
    }
}

impl fmt::Debug for SharedU32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedU32")
            .field("offset", &self.offset)
            .field("value", &self.load(Ordering::Relaxed))
            .finish()
    }
}

/// An atomic 8-byte word of a region, as
/// [`Region::atomic_u64`](crate::Region::atomic_u64) gives it, but owned.
///
/// Made by [`Region::shared_u64`](crate::Region::shared_u64); everything
/// said of [`SharedU32`] holds, with [`AtomicU64`](std::sync::atomic::AtomicU64)
/// and the mixed-size rule of
/// [`Region::atomic_u64`](crate::Region::atomic_u64).
#[derive(Clone)]
pub struct SharedU64 {
    map: Arc<Mapping>,
    offset: usize,
}

impl SharedU64 {
    /// The word at `offset` of `map`, if `map` gives an atomic there.
    pub(crate) fn new(map: Arc<Mapping>, offset: usize) -> Option<Self> {
        map.atomic_u64(offset)?;
        Some(Self { map, offset })
    }

    /// The word's offset in the region.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl Deref for SharedU64 {
    type Target = AtomicU64;

    #[inline]
    fn deref(&self) -> &AtomicU64 {
        // As for `SharedU32`.
        self.map
            .atomic_u64(self.offset)
            .expect("checked when the shared word was made")
    }
}

impl fmt::Debug for SharedU64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedU64")
            .field("offset", &self.offset)
            .field("value", &self.load(Ordering::Relaxed))
            .finish()
    }
}
