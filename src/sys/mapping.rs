//! `Mapping`: a `MAP_SHARED` mapping of a file, the bounds-checked accesses
//! to it, and its release (invariants 1, 2, 4 and 5 of the parent module).

use std::ffi::c_void;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::Errno;

use super::copy::{copy_from_shared, copy_to_shared, PORTABLE_COPY};
use super::sigbus::Registration;
use super::{fence_for, page_size, range_fits, read_only_load_ok, round_up_to_page};

/// Mappings that `Drop` could not unmap (invariant 5).
pub(super) static UNMAP_FAILURES: AtomicU64 = AtomicU64::new(0);

/// How many mappings this process could not release.
///
/// A mapping is released (`munmap`) when the last [`Region`](crate::Region)
/// view and [`MmapRegion`](crate::MmapRegion) handle holding it are
/// dropped, and the mapping of a `Frozen` (Linux and Android) when its last
/// `Frozen` is dropped. Dropping never panics; if the kernel refuses to unmap, the
/// address range stays reserved for the rest of the process's life and this
/// counter, shared by the whole crate, goes up by one. The crate unmaps
/// exactly the whole base pages it mapped (never of a file on hugetlbfs),
/// so the kernel can refuse only for want of memory to split its own
/// records of the range: when the process is at its mapping-count limit
/// (`vm.max_map_count`) and the range shares a record with a neighbour or
/// code outside the crate changed part of it (`mprotect`, `madvise`).
///
/// On Windows the release is `UnmapViewOfFile` (`VirtualFree` for an
/// in-memory region), which fails only for an address that is not the
/// start of a view or reservation: never for the crate's own, so there
/// the count stays 0 unless the system misbehaves.
///
/// It is a function of the crate, not a method of one of those types:
/// the count is the process's, one for every mapping the crate made,
/// whichever handle, view or `Frozen` held it, and a failure happens when
/// nothing that held the mapping is left to ask.
#[must_use]
pub fn unmap_failures() -> u64 {
    UNMAP_FAILURES.load(Ordering::Relaxed)
}

/// A `MAP_SHARED` mapping of a file, usually longer than the file so that
/// the file can grow under it without the mapping moving.
///
/// The mapping is released (`munmap`) when the value is dropped; the crate
/// keeps it in an `Arc` so that every view holding it keeps the memory valid.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(super) base: NonNull<u8>,
    /// Bytes mapped (invariants 1 and 2).
    pub(super) len: usize,
    pub(super) writable: bool,
    /// How the range was obtained, and so how it is released (invariant 1).
    pub(super) origin: Origin,
    /// For a hostile region (`hostile.rs`), the input that copies out and
    /// loads return instead of the memory's bytes.
    #[cfg(all(feature = "arbitrary", not(loom)))]
    pub(super) hostile: Option<Box<super::hostile::Input>>,
    /// The mapping's entry in the `SIGBUS` registry (file mappings only;
    /// invariant 6), and so its cut offset.
    pub(super) guard: Registration,
    /// The descriptor of the mapped file, shared with the handle that made
    /// the mapping, so that a failed descriptor copy can `fstat` the file
    /// (`None` for memory and where the maker did not attach it). It plays
    /// no part in the mapping's safety.
    pub(super) file: Option<Arc<super::OwnedFile>>,
    /// Kept until the range is unmapped, then dropped: the share of the
    /// address-space budget a default reservation holds (`map.rs`).
    pub(super) held: Option<Box<dyn std::fmt::Debug + Send + Sync>>,
}

/// Where a [`Mapping`]'s range came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// `mmap` of a file; released with `munmap`.
    File,
    /// Private anonymous memory (`mmap`), for in-memory regions; released
    /// with `munmap`.
    Anon,
    /// The global allocator (`alloc_zeroed` with this layout), for
    /// in-memory regions under Miri; released with `dealloc`.
    #[cfg_attr(not(miri), allow(dead_code, reason = "made only under Miri"))]
    Heap(std::alloc::Layout),
}

// SAFETY: `Mapping` holds a raw pointer only as the address of a range it
// owns (invariant 1); the range is valid from any thread, and it is unmapped
// exactly once, in `Drop`, on whichever thread drops the last owner. The
// other fields (`held` included) are `Send` themselves.
unsafe impl Send for Mapping {}

// SAFETY: the only state of `Mapping` that its `&self` methods change
// is a hostile region's input cursor, behind a `Mutex`; they reach the
// mapped bytes only (a) through `copy_from_shared` and
// `copy_to_shared`, which are sound when they race any access from another
// thread (invariant 3: an opaque `asm!` copy on x86 and x86_64, per-byte
// relaxed atomics elsewhere), and (b) through `AtomicU32`/`AtomicU64`
// references, which are `Sync`. The one race this does not exclude is the
// mixed-size one of invariant 3, left to the caller and documented on the
// public atomic accessors.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The offset from which a contained `SIGBUS` replaced this mapping's
    /// pages with private zero pages (a multiple of the page size), or
    /// `usize::MAX` if that never happened (invariant 6). Loaded after an
    /// acquire fence, so that an access made before it that faulted, or
    /// that read a page another thread's handler replaced, sees the cut.
    #[inline]
    pub(crate) fn cut(&self) -> usize {
        self.guard.cut()
    }

    /// Makes this mapping's cut that of the handle that made `earlier`
    /// too: a cut of either (a contained `SIGBUS`, invariant 6) is
    /// reported by both [`cut`](Self::cut)s from then on. Called on a new
    /// mapping of the same file, before anyone else can reach it.
    pub(crate) fn join(&mut self, earlier: &Self) {
        self.guard.join(&earlier.guard);
    }

    /// Whether the first `len` bytes of the file lie inside this mapping, so
    /// that a growth to `len` needs no new mapping.
    #[inline]
    pub(crate) fn covers(&self, len: usize) -> bool {
        len <= self.len
    }

    /// The address of the first byte.
    #[inline]
    pub(crate) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Bytes mapped (a multiple of the page size).
    pub(crate) fn mapped_len(&self) -> usize {
        self.len
    }

    /// Keeps `token` until this mapping is unmapped, and drops it then
    /// (after `munmap`, as the fields drop after `Drop::drop`).
    pub(crate) fn hold(&mut self, token: Box<dyn std::fmt::Debug + Send + Sync>) {
        self.held = Some(token);
    }

    /// Whether the pages were mapped writable.
    #[inline]
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// Returns the address of `base + offset` if `len` bytes from there are
    /// inside the mapping.
    #[inline]
    pub(super) fn checked_ptr(&self, offset: usize, len: usize) -> Option<*mut u8> {
        self.checked_ptr_within(offset, len, self.len)
    }

    /// Returns the address of `base + offset` if `len` bytes from there are
    /// inside both `0..limit` and the mapping. The bound is clamped to the
    /// mapping's own length, so no `limit` can widen it.
    #[inline]
    pub(super) fn checked_ptr_within(
        &self,
        offset: usize,
        len: usize,
        limit: usize,
    ) -> Option<*mut u8> {
        if !range_fits(offset, len, limit.min(self.len)) {
            return None;
        }
        // SAFETY: `offset <= min(limit, self.len) <= self.len` (checked
        // above), so the result stays within, or one past the end of, our
        // own range (invariant 1).
        Some(unsafe { self.base.as_ptr().add(offset) })
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the mapping.
    /// Returns `false`, copying nothing, if the range is not inside it.
    #[cfg(test)]
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> bool {
        self.read_within(offset, buf, usize::MAX)
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the mapping if
    /// they lie inside both `0..limit` (the caller's bound, such as a view's
    /// accessible length) and the mapping, which this method checks itself
    /// whatever `limit` is. Returns `false`, copying nothing, otherwise.
    #[inline]
    pub(crate) fn read_within(&self, offset: usize, buf: &mut [u8], limit: usize) -> bool {
        self.read_part_within(offset, buf, limit, buf.len())
    }

    /// As [`read_within`](Self::read_within), for one part of a copy of
    /// `whole` bytes made in parts: `whole` chooses how the bytes are
    /// moved (`copy_from_shared`), nothing else.
    #[inline]
    pub(crate) fn read_part_within(
        &self,
        offset: usize,
        buf: &mut [u8],
        limit: usize,
        whole: usize,
    ) -> bool {
        let Some(src) = self.checked_ptr_within(offset, buf.len(), limit) else {
            return false;
        };
        #[cfg(all(feature = "arbitrary", not(loom)))]
        if let Some(input) = &self.hostile {
            input.fill(buf);
            return true;
        }
        if PORTABLE_COPY && !self.can_load(1) {
            // SAFETY: `[src, src + buf.len())` is inside the mapping (checked
            // by `checked_ptr_within`) and mapped readable (invariant 2); `buf` is
            // the caller's private memory, so the ranges cannot overlap. The
            // pages are read-only, so no thread of this process writes them
            // and this plain copy races only reads (invariant 3).
            unsafe { ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        } else {
            // SAFETY: `[src, src + buf.len())` is inside the mapping (checked
            // by `checked_ptr_within`), mapped readable, and writable or read through
            // relaxed byte loads that std allows on read-only memory
            // (`can_load(1)`, checked above for the portable copy;
            // invariants 2 and 3). `buf` is the caller's private memory, so
            // the ranges cannot overlap.
            unsafe { copy_from_shared(src, buf, whole) };
        }
        true
    }

    /// Copies `data` into the mapping at `offset`. Returns `false`, copying
    /// nothing, if the range is not inside it or the mapping is read-only.
    #[cfg(test)]
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> bool {
        self.write_within(offset, data, usize::MAX)
    }

    /// Copies `data` into the mapping at `offset` if the range lies inside
    /// both `0..limit` and the mapping (checked here whatever `limit` is).
    /// Returns `false`, copying nothing, otherwise or if the mapping is
    /// read-only.
    #[inline]
    pub(crate) fn write_within(&self, offset: usize, data: &[u8], limit: usize) -> bool {
        self.write_part_within(offset, data, limit, data.len())
    }

    /// As [`write_within`](Self::write_within), for one part of a copy of
    /// `whole` bytes made in parts (see
    /// [`read_part_within`](Self::read_part_within)).
    #[inline]
    pub(crate) fn write_part_within(
        &self,
        offset: usize,
        data: &[u8],
        limit: usize,
        whole: usize,
    ) -> bool {
        if !self.writable {
            return false;
        }
        let Some(dst) = self.checked_ptr_within(offset, data.len(), limit) else {
            return false;
        };
        // SAFETY: `[dst, dst + data.len())` is inside the mapping, mapped
        // readable and writable (checked above, invariant 2), and `data` is
        // the caller's private memory, so the ranges cannot overlap. Racing
        // accesses from other threads and processes are expected
        // (invariant 3); no reference to the destination is formed.
        unsafe { copy_to_shared(data, dst, whole) };
        true
    }

    /// An atomic view of the aligned 4 bytes at `offset`, if mapped writable
    /// and aligned.
    #[inline]
    pub(crate) fn atomic_u32(&self, offset: usize) -> Option<&AtomicU32> {
        if !self.writable || offset % std::mem::align_of::<AtomicU32>() != 0 {
            return None;
        }
        let p = self.checked_ptr(offset, std::mem::size_of::<AtomicU32>())?;
        // SAFETY: `p` is inside the mapping for 4 bytes, aligned (the base
        // is page-aligned and `offset` is a multiple of 4), and the pages
        // are mapped writable, as atomics need even to load on some targets.
        // The memory stays mapped for as long as `&self` lives (invariant 1:
        // unmapped only in `Drop`). Other processes access it concurrently,
        // which atomics permit (invariant 3).
        Some(unsafe { AtomicU32::from_ptr(p.cast::<u32>()) })
    }

    /// An atomic view of the aligned 8 bytes at `offset`, if mapped writable
    /// and aligned.
    #[inline]
    pub(crate) fn atomic_u64(&self, offset: usize) -> Option<&AtomicU64> {
        if !self.writable || offset % std::mem::align_of::<AtomicU64>() != 0 {
            return None;
        }
        let p = self.checked_ptr(offset, std::mem::size_of::<AtomicU64>())?;
        // SAFETY: as in `atomic_u32`, for 8 bytes aligned to
        // `align_of::<AtomicU64>()`.
        Some(unsafe { AtomicU64::from_ptr(p.cast::<u64>()) })
    }
}

/// Advice the crate passes to `madvise`: hints only, never anything that
/// discards or changes the shared contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    Normal,
    Random,
    Sequential,
    WillNeed,
    /// Drop this process's page-table entries; the bytes stay in the file
    /// and are faulted back in on the next access (shared file mappings).
    DontNeed,
    /// Fault the pages in now (`MADV_POPULATE_READ`/`WRITE`, Linux 5.14+).
    #[cfg_attr(windows, allow(dead_code, reason = "`populate` is refused on Windows"))]
    Populate,
}

impl Mapping {
    /// The page-aligned range covering `[offset, offset + len)`, if inside
    /// the mapping, as a pointer and a length.
    pub(super) fn page_range(&self, offset: usize, len: usize) -> Option<(*mut c_void, usize)> {
        if !range_fits(offset, len, self.len) {
            return None;
        }
        let start = offset & !(page_size() - 1);
        // `offset + len <= self.len` (checked), and `self.len` is a page
        // multiple, so rounding up cannot pass it.
        let end = round_up_to_page(offset + len)?;
        let ptr = self.checked_ptr(start, end - start)?;
        Some((ptr.cast::<c_void>(), end - start))
    }

    /// Runs `f` on the page-aligned range covering `[offset, offset + len)`
    /// unless it is empty; `EINVAL` if the range is not inside the mapping.
    #[cfg_attr(
        windows,
        allow(dead_code, reason = "Windows flushes through `section::flush`")
    )]
    pub(super) fn on_pages(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(*mut c_void, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        match self.page_range(offset, len).ok_or(Errno::INVAL)? {
            (_, 0) => Ok(()),
            (ptr, len) => f(ptr, len),
        }
    }

    /// An atomic load of the aligned 4 bytes at `offset`, allowed on
    /// read-only mappings too (see [`read_only_load_ok`]). `None` if the
    /// word is not inside the mapping, misaligned, `order` is not a load
    /// ordering, or the target cannot load read-only memory atomically.
    pub(crate) fn load_u32(&self, offset: usize, order: Ordering) -> Option<u32> {
        let p = self.load_ptr(offset, std::mem::size_of::<u32>(), order)?;
        #[cfg(all(feature = "arbitrary", not(loom)))]
        if let Some(input) = &self.hostile {
            return Some(u32::from_ne_bytes(input.take()));
        }
        if self.writable {
            // SAFETY: `p` is inside the mapping for 4 bytes, aligned, mapped
            // writable, and stays mapped while `&self` lives (invariants 1
            // to 3); `order` is a load ordering (checked by `load_ptr`).
            return Some(unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.load(order));
        }
        // SAFETY: as above, except the pages are read-only: std documents
        // relaxed atomic loads of this size as sound on read-only memory on
        // the targets `read_only_load_ok` accepts (checked by `load_ptr`).
        let v = unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.load(Ordering::Relaxed);
        fence_for(order);
        Some(v)
    }

    /// As [`load_u32`](Self::load_u32), for 8 bytes.
    pub(crate) fn load_u64(&self, offset: usize, order: Ordering) -> Option<u64> {
        let p = self.load_ptr(offset, std::mem::size_of::<u64>(), order)?;
        #[cfg(all(feature = "arbitrary", not(loom)))]
        if let Some(input) = &self.hostile {
            return Some(u64::from_ne_bytes(input.take()));
        }
        if self.writable {
            // SAFETY: as in `load_u32`, for 8 aligned bytes.
            return Some(unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }.load(order));
        }
        // SAFETY: as in `load_u32`, for 8 aligned bytes on a target where
        // relaxed 8-byte loads of read-only memory are documented as sound.
        let v = unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }.load(Ordering::Relaxed);
        fence_for(order);
        Some(v)
    }

    /// Whether atomic loads of `size` bytes may be made here: always on a
    /// writable mapping, and on a read-only one where this target allows
    /// relaxed loads of that width of read-only memory
    /// ([`read_only_load_ok`]).
    pub(crate) fn can_load(&self, size: usize) -> bool {
        self.writable || read_only_load_ok(size)
    }

    /// The checks shared by the loads: alignment, bounds, a load ordering,
    /// and read-only support for `size` on this target.
    fn load_ptr(&self, offset: usize, size: usize, order: Ordering) -> Option<*mut u8> {
        if offset % size != 0 || matches!(order, Ordering::Release | Ordering::AcqRel) {
            return None;
        }
        if !self.can_load(size) {
            return None;
        }
        self.checked_ptr(offset, size)
    }
}

#[cfg(all(test, unix, not(loom)))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn file_of(len: u64) -> std::fs::File {
        let f = tempfile::tempfile().unwrap();
        f.set_len(len).unwrap();
        f
    }

    #[test]
    fn loads_refuse_misalignment_and_store_orderings_on_their_own() {
        // `Region` refuses these before calling down; the mapping refuses
        // them as well (it trusts no caller).
        let m = Mapping::in_memory(page_size()).unwrap();
        assert!(m.write(0, &7u64.to_ne_bytes()));
        assert_eq!(m.load_u64(0, Ordering::Acquire), Some(7));
        assert_eq!(
            m.load_u32(0, Ordering::Relaxed),
            Some(7u64.to_ne_bytes()[0].into())
        );
        assert_eq!(m.load_u32(2, Ordering::Relaxed), None);
        assert_eq!(m.load_u64(4, Ordering::Acquire), None);
        for order in [Ordering::Release, Ordering::AcqRel] {
            assert_eq!(m.load_u32(0, order), None, "{order:?}");
            assert_eq!(m.load_u64(0, order), None, "{order:?}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a file")]
    fn file_grows_under_a_reserved_mapping_without_moving_it() {
        let ps = page_size();
        let f = file_of(u64::try_from(ps).unwrap());
        let m = Mapping::new(f.as_fd(), ps, 16 * ps, true).unwrap();
        assert_eq!(m.mapped_len(), 16 * ps);
        assert!(m.write(0, b"head"));
        assert!(m.covers(16 * ps) && !m.covers(16 * ps + 1));
        f.set_len(u64::try_from(4 * ps).unwrap()).unwrap();
        // The grown pages are reachable through the same mapping.
        assert!(m.write(4 * ps - 4, b"tail"));
        let mut b = [0u8; 4];
        assert!(m.read(0, &mut b));
        assert_eq!(&b, b"head");
        let mut from_file = [0u8; 4];
        std::os::unix::fs::FileExt::read_exact_at(
            &f,
            &mut from_file,
            u64::try_from(4 * ps - 4).unwrap(),
        )
        .unwrap();
        assert_eq!(&from_file, b"tail");
        assert!(!m.read(16 * ps - 3, &mut b), "past the mapping");
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a file")]
    fn exact_mapping_covers_only_the_rounded_length() {
        let ps = page_size();
        let f = file_of(u64::try_from(ps).unwrap());
        let m = Mapping::new(f.as_fd(), 10, 0, true).unwrap();
        assert_eq!(m.mapped_len(), ps);
        assert!(m.covers(ps) && !m.covers(ps + 1));
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a file")]
    fn unmappable_reservation_falls_back_to_an_exact_mapping() {
        let ps = page_size();
        let f = file_of(u64::try_from(ps).unwrap());
        // Far more address space than exists: the reservation fails.
        let m = Mapping::new(f.as_fd(), ps, usize::MAX / 2, true).unwrap();
        assert_eq!(m.mapped_len(), ps);
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a file")]
    fn read_only_mapping_refuses_writes_and_atomics() {
        let ps = page_size();
        let f = file_of(u64::try_from(ps).unwrap());
        let m = Mapping::new(f.as_fd(), ps, 0, false).unwrap();
        assert!(!m.write(0, b"x"));
        assert!(m.atomic_u32(0).is_none());
        let mut b = [1u8; 1];
        assert!(m.read(0, &mut b));
        assert_eq!(b, [0]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a file")]
    fn atomics_require_alignment_and_bounds() {
        let ps = page_size();
        let f = file_of(u64::try_from(ps).unwrap());
        let m = Mapping::new(f.as_fd(), ps, 0, true).unwrap();
        assert!(m.atomic_u32(2).is_none());
        assert!(m.atomic_u64(4).is_none());
        assert!(m.atomic_u64(ps).is_none());
        m.atomic_u64(ps - 8).unwrap().store(7, Ordering::SeqCst);
        assert_eq!(m.atomic_u32(ps - 8).unwrap().load(Ordering::SeqCst), 7);
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls munmap")]
    fn failed_unmap_is_counted_instead_of_panicking() {
        let before = unmap_failures();
        // Not page-aligned, so `munmap` refuses it (EINVAL) without
        // touching anything.
        let bogus = Mapping {
            base: NonNull::dangling(),
            len: page_size(),
            writable: false,
            origin: Origin::File,
            #[cfg(all(feature = "arbitrary", not(loom)))]
            hostile: None,
            guard: Registration::none(),
            file: None,
            held: None,
        };
        drop(bogus);
        assert_eq!(unmap_failures(), before + 1);
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a file")]
    fn zero_length_mapping_is_refused() {
        let f = file_of(1);
        assert_eq!(
            Mapping::new(f.as_fd(), 0, 0, true).unwrap_err(),
            Errno::INVAL
        );
        assert_eq!(
            Mapping::new(f.as_fd(), usize::MAX, 0, true).unwrap_err(),
            Errno::INVAL
        );
    }
}
