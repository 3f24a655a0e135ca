//! In-memory backing: a zeroed, page-aligned allocation from the global
//! allocator that stands in for a file mapping (invariants 1 and 2 of the
//! parent module), for regions made with `MmapRegion::in_memory`. It runs
//! wherever the allocator does, Miri included.

use std::alloc::Layout;
use std::ptr::NonNull;

use rustix::io::Errno;

use super::mapping::{Mapping, Origin};
use super::{page_size, round_up_to_page};

impl Mapping {
    /// A writable range of `capacity` zero bytes (rounded up to pages),
    /// aligned to the page size like a file mapping, owned until `Drop`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a zero or unrepresentable capacity, `ENOMEM` if the
    /// allocator has no room.
    pub(crate) fn in_memory(capacity: usize) -> Result<Self, Errno> {
        let len = round_up_to_page(capacity)
            .filter(|&n| n > 0)
            .ok_or(Errno::INVAL)?;
        let layout = Layout::from_size_align(len, page_size()).map_err(|_| Errno::INVAL)?;
        // SAFETY: `layout` has a non-zero size (checked above), as
        // `alloc_zeroed` requires. The block it returns is owned by the
        // `Mapping` built below (invariant 1: released once, in `Drop`,
        // through `release` with the same layout) and is zeroed, readable
        // and writable for `len` bytes (invariant 2).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let base = NonNull::new(ptr).ok_or(Errno::NOMEM)?;
        Ok(Self {
            base,
            len,
            writable: true,
            origin: Origin::Heap(layout),
            #[cfg(all(feature = "arbitrary", not(loom)))]
            hostile: None,
        })
    }
}

/// Returns an in-memory range to the allocator (`Drop` of a `Mapping` whose
/// origin is `Origin::Heap(layout)`).
pub(super) fn release(base: NonNull<u8>, layout: Layout) {
    // SAFETY: `base` was returned by `alloc_zeroed(layout)` in
    // `Mapping::in_memory` (the only place that makes `Origin::Heap`), and
    // the `Mapping` being dropped owned it exclusively (invariant 1), so it
    // is freed exactly once, when no reference into it can exist any more.
    unsafe { std::alloc::dealloc(base.as_ptr(), layout) };
}
