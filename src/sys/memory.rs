//! In-memory backing for regions made with `MmapRegion::in_memory`: a
//! page-aligned range of zero bytes that stands in for a file mapping
//! (invariants 1 and 2 of the parent module). It is private anonymous
//! memory (`mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)`), so the
//! capacity costs address space only and pages are zero-filled when first
//! touched, as a file mapping's are. Under Miri, which supports no `mmap`
//! of this kind here, it is a zeroed allocation from the global allocator
//! instead (Miri allocates all of it at once; keep capacities small there).

use std::alloc::Layout;
use std::ptr::NonNull;

use super::Errno;

use super::mapping::{Mapping, Origin};
#[cfg(miri)]
use super::page_size;
use super::round_up_to_page;

impl Mapping {
    /// A writable range of `capacity` zero bytes (rounded up to pages),
    /// aligned to the page size like a file mapping, owned until `Drop`.
    /// On Windows the range is reserved and none of it committed: bytes
    /// may be touched only once [`commit`](Mapping::commit) made them
    /// accessible (W10, W11); elsewhere `commit` has nothing to do.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a zero or unrepresentable capacity, `ENOMEM` if the
    /// allocator has no room.
    pub(crate) fn in_memory(capacity: usize) -> Result<Self, Errno> {
        let len = round_up_to_page(capacity)
            .filter(|&n| n > 0 && isize::try_from(n).is_ok())
            .ok_or(Errno::INVAL)?;
        #[cfg(not(miri))]
        let (base, origin) = (super::platform::anonymous(len)?, Origin::Anon);
        #[cfg(miri)]
        let (base, origin) = heap(len)?;
        Ok(Self {
            base,
            len,
            writable: true,
            origin,
            #[cfg(all(feature = "arbitrary", not(loom)))]
            hostile: None,
            // Private anonymous memory has no file to lose.
            guard: super::sigbus::Registration::none(),
            file: None,
            held: None,
        })
    }
}

/// `len` zero bytes from the global allocator, page-aligned (Miri).
#[cfg(miri)]
fn heap(len: usize) -> Result<(NonNull<u8>, Origin), Errno> {
    let layout = Layout::from_size_align(len, page_size()).map_err(|_| Errno::INVAL)?;
    // SAFETY: `layout` has a non-zero size (checked by the caller), as
    // `alloc_zeroed` requires. The block it returns is owned by the
    // `Mapping` built from it (invariant 1: released once, in `Drop`,
    // through `release` with the same layout) and is zeroed, readable and
    // writable for `len` bytes (invariant 2).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    Ok((NonNull::new(ptr).ok_or(Errno::NOMEM)?, Origin::Heap(layout)))
}

/// Returns an in-memory range to the allocator (`Drop` of a `Mapping` whose
/// origin is `Origin::Heap(layout)`, made only under Miri).
pub(super) fn release(base: NonNull<u8>, layout: Layout) {
    // SAFETY: `base` was returned by `alloc_zeroed(layout)` in
    // `heap` (the only place that makes `Origin::Heap`), and
    // the `Mapping` being dropped owned it exclusively (invariant 1), so it
    // is freed exactly once, when no reference into it can exist any more.
    unsafe { std::alloc::dealloc(base.as_ptr(), layout) };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sys::page_size;

    // Also under Miri, where a zero capacity would reach the allocator as a
    // zero-size layout.
    #[test]
    fn in_memory_capacities_of_zero_or_past_isize_max_are_einval() {
        assert_eq!(Mapping::in_memory(0).err(), Some(Errno::INVAL));
        assert_eq!(Mapping::in_memory(usize::MAX).err(), Some(Errno::INVAL));
        let past = usize::try_from(isize::MAX).unwrap() + 1;
        assert_eq!(Mapping::in_memory(past).err(), Some(Errno::INVAL));
        assert_eq!(Mapping::in_memory(1).unwrap().mapped_len(), page_size());
    }
}
