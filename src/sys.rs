//! The audited module: every `unsafe` operation of the crate lives here.
//!
//! # Safety
//!
//! This module owns address-space ranges created with `mmap` and is the only
//! code that maps, unmaps or dereferences them. The rest of the crate reaches
//! the memory through the safe, bounds-checked methods of [`Mapping`]. The
//! invariants, referred to by number in the `SAFETY:` comments below:
//!
//! 1. **Ownership.** A `Mapping` exclusively owns the address range
//!    `[base, base + reserved)` from construction until `Drop`. It was
//!    returned by `mmap` with a null hint (so the kernel chose a free range),
//!    and nothing outside this module maps, unmaps or remaps inside it.
//!    `reserved` only shrinks, and only when a failed `MAP_FIXED` may have
//!    left a hole past `mapped` that we must no longer claim.
//! 2. **Mapped prefix.** `[base, base + mapped)` is mapped readable (and
//!    writable when `writable`) and `MAP_SHARED` to the file at offset 0.
//!    `mapped` is a multiple of the page size, never exceeds `reserved`, and
//!    only grows; it is published with `Release` after the `mmap` that backs
//!    it returned, and read with `Acquire` before any access.
//! 3. **Foreign memory.** Other processes may write any byte of the mapping
//!    at any time. No `&[u8]` or `&mut [u8]` is ever formed over it: bytes
//!    move only through `ptr::copy_nonoverlapping` between the mapping and a
//!    caller's private buffer, or through `AtomicU32`/`AtomicU64` references,
//!    whose interior mutability makes concurrent foreign writes permitted.
//!    A copy racing a peer's write may observe a mix of old and new bytes;
//!    it never reads outside the mapping.
//! 4. **File length.** Pages of `[base, base + mapped)` lying past the file's
//!    current end raise `SIGBUS` when touched. That is a crash, not undefined
//!    behaviour, and this module does not prevent it: the callers bound every
//!    access by the length they last validated against `fstat`. A peer that
//!    truncates the file between that check and the access can still cause
//!    it; `SECURITY.md` documents this limit of path-backed files.
// Only this module may use unsafe code and the raw mapping calls.
#![allow(unsafe_code)]
#![allow(clippy::disallowed_methods)]

use std::ffi::c_void;
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

/// The system page size in bytes (a power of two).
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// Rounds `n` up to a multiple of the page size, or `None` on overflow.
pub(crate) fn round_up_to_page(n: usize) -> Option<usize> {
    let mask = page_size() - 1;
    n.checked_add(mask).map(|v| v & !mask)
}

/// Whether `len` bytes starting at `offset` lie inside `0..limit`, computed
/// without overflow (`offset + len` is never formed).
#[inline]
pub(crate) fn range_fits(offset: usize, len: usize, limit: usize) -> bool {
    offset <= limit && len <= limit - offset
}

/// A `MAP_SHARED` mapping of a file, inside an address-space reservation
/// that lets it grow without moving.
///
/// The mapping is released (`munmap` of the whole reservation) when the value
/// is dropped; the crate keeps it in an `Arc` so that every view holding it
/// keeps the memory valid.
pub(crate) struct Mapping {
    base: NonNull<u8>,
    /// Bytes of address space owned (invariant 1).
    reserved: AtomicUsize,
    /// Bytes mapped to the file from offset 0 (invariant 2).
    mapped: AtomicUsize,
    writable: bool,
    /// Serialises `extend`, so `mapped` and the address space change together.
    grow_lock: Mutex<()>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("base", &self.base)
            .field("mapped", &self.mapped_len())
            .field("reserved", &self.reserved_len())
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

// SAFETY: `Mapping` holds a raw pointer only as the address of a range it
// owns (invariant 1); the range is valid from any thread, and it is unmapped
// exactly once, in `Drop`, which runs on whichever thread drops the last
// owner. Moving the owner between threads changes nothing about that range.
unsafe impl Send for Mapping {}

// SAFETY: every method taking `&self` either reads the atomics `mapped` and
// `reserved`, copies bytes through raw pointers after a bounds check against
// `mapped` (invariants 2 and 3: no references to the bytes are formed, and
// foreign concurrent writes are expected anyway), hands out atomic
// references (which are `Sync`), or extends the mapping under `grow_lock`
// into address space no other method touches (past `mapped`). Shared use from
// many threads is therefore no different from use by many processes.
unsafe impl Sync for Mapping {}

fn prot(writable: bool) -> ProtFlags {
    if writable {
        ProtFlags::READ | ProtFlags::WRITE
    } else {
        ProtFlags::READ
    }
}

impl Mapping {
    /// Maps the first `len` bytes of `fd` shared, inside a reservation of at
    /// least `reserve` bytes of address space.
    ///
    /// If the reservation cannot be made (or `reserve` is not larger than the
    /// page-rounded `len`) the file is mapped exactly, with no room to grow in
    /// place. The file may be shorter than `len`; callers must not publish
    /// bytes past the file's end (invariant 4).
    ///
    /// # Errors
    ///
    /// `EINVAL` for `len == 0` or a length that overflows when rounded to
    /// pages, and whatever `mmap` reports.
    pub(crate) fn new(
        fd: BorrowedFd<'_>,
        len: usize,
        reserve: usize,
        writable: bool,
    ) -> Result<Self, Errno> {
        if len == 0 {
            return Err(Errno::INVAL);
        }
        let mapped = round_up_to_page(len).ok_or(Errno::INVAL)?;
        let reserve = round_up_to_page(reserve).unwrap_or(mapped);
        if reserve > mapped {
            if let Ok(base) = Self::reserve_then_map(fd, mapped, reserve, writable) {
                return Ok(Self::from_parts(base, reserve, mapped, writable));
            }
        }
        // SAFETY: a null hint without `MAP_FIXED` lets the kernel choose a
        // free range, so no existing mapping is replaced; the result is owned
        // by the `Mapping` built below (invariant 1) and is mapped shared to
        // `fd` from offset 0 for `mapped` bytes (invariant 2).
        let base = unsafe {
            rustix::mm::mmap(
                ptr::null_mut(),
                mapped,
                prot(writable),
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let base = NonNull::new(base.cast::<u8>()).ok_or(Errno::NOMEM)?;
        Ok(Self::from_parts(base, mapped, mapped, writable))
    }

    fn from_parts(base: NonNull<u8>, reserved: usize, mapped: usize, writable: bool) -> Self {
        Self {
            base,
            reserved: AtomicUsize::new(reserved),
            mapped: AtomicUsize::new(mapped),
            writable,
            grow_lock: Mutex::new(()),
        }
    }

    /// Reserves `reserve` bytes of inaccessible address space, then maps the
    /// file over its first `mapped` bytes.
    fn reserve_then_map(
        fd: BorrowedFd<'_>,
        mapped: usize,
        reserve: usize,
        writable: bool,
    ) -> Result<NonNull<u8>, Errno> {
        // SAFETY: a null hint without `MAP_FIXED` cannot replace an existing
        // mapping; the returned range is ours alone. `PROT_NONE` private
        // anonymous memory is neither accessible nor charged as committed.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                ptr::null_mut(),
                reserve,
                ProtFlags::empty(),
                MapFlags::PRIVATE,
            )?
        };
        // SAFETY: `[base, base + mapped)` lies inside the reservation just
        // made (`mapped < reserve`), which no one else knows of, so
        // `MAP_FIXED` replaces only our own inaccessible pages.
        let mapped_at = unsafe {
            rustix::mm::mmap(
                base,
                mapped,
                prot(writable),
                MapFlags::SHARED | MapFlags::FIXED,
                fd,
                0,
            )
        };
        match mapped_at {
            Ok(p) => NonNull::new(p.cast::<u8>()).ok_or(Errno::NOMEM),
            Err(e) => {
                // SAFETY: `[base, base + reserve)` is the reservation made
                // above, still owned by this function alone and never
                // exposed; unmapping it returns the address space.
                let _ = unsafe { rustix::mm::munmap(base, reserve) };
                Err(e)
            }
        }
    }

    /// Extends the mapped prefix so that it covers `new_len` bytes of the
    /// file, in place.
    ///
    /// Returns `Ok(true)` when the first `new_len` bytes are mapped at the
    /// same base (nothing to do, or the tail was mapped into the
    /// reservation), `Ok(false)` when `new_len` does not fit the reservation
    /// (the caller must make a new `Mapping`).
    ///
    /// # Errors
    ///
    /// Whatever `mmap` reports; the mapping then covers what it covered
    /// before the call.
    pub(crate) fn extend(&self, fd: BorrowedFd<'_>, new_len: usize) -> Result<bool, Errno> {
        let _guard = self
            .grow_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mapped = self.mapped.load(Ordering::Acquire);
        let want = round_up_to_page(new_len).ok_or(Errno::INVAL)?;
        if want <= mapped {
            return Ok(true);
        }
        let reserved = self.reserved.load(Ordering::Acquire);
        if want > reserved {
            return Ok(false);
        }
        let tail_len = want - mapped;
        let offset = u64::try_from(mapped).map_err(|_| Errno::INVAL)?;
        // SAFETY: `mapped <= reserved` (invariant 2), so `base + mapped` is
        // inside or one past the reserved range and the offset cannot wrap.
        let tail = unsafe { self.base.as_ptr().add(mapped) };
        // SAFETY: `[tail, tail + tail_len)` = `[base + mapped, base + want)`
        // lies inside our reservation (`want <= reserved`) and past `mapped`,
        // so it holds only our `PROT_NONE` pages (or pages a previous failed
        // attempt left unpublished); no view reads there, because every
        // access is bounded by `mapped`, which we raise only afterwards. We
        // hold `grow_lock`, so no other extension races this one.
        let res = unsafe {
            rustix::mm::mmap(
                tail.cast::<c_void>(),
                tail_len,
                prot(self.writable),
                MapFlags::SHARED | MapFlags::FIXED,
                fd,
                offset,
            )
        };
        match res {
            Ok(_) => {
                self.mapped.store(want, Ordering::Release);
                Ok(true)
            }
            Err(e) => {
                // A failed MAP_FIXED may have unmapped part of the range on
                // older kernels. Put the reservation back; if even that
                // fails, stop claiming the tail so that `Drop` never unmaps
                // a range someone else may have been given since.
                // SAFETY: same range and reasoning as the call above; an
                // anonymous `PROT_NONE` mapping restores the reservation.
                let restored = unsafe {
                    rustix::mm::mmap_anonymous(
                        tail.cast::<c_void>(),
                        tail_len,
                        ProtFlags::empty(),
                        MapFlags::PRIVATE | MapFlags::FIXED,
                    )
                };
                if restored.is_err() {
                    self.reserved.store(mapped, Ordering::Release);
                }
                Err(e)
            }
        }
    }

    /// The address of the first byte.
    pub(crate) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Bytes currently mapped to the file (a multiple of the page size).
    pub(crate) fn mapped_len(&self) -> usize {
        self.mapped.load(Ordering::Acquire)
    }

    /// Bytes of address space owned, including the unmapped reservation.
    pub(crate) fn reserved_len(&self) -> usize {
        self.reserved.load(Ordering::Acquire)
    }

    /// Whether the pages were mapped writable.
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// Returns the address of `base + offset` if `len` bytes from there are
    /// inside the mapped prefix.
    #[inline]
    fn checked_ptr(&self, offset: usize, len: usize) -> Option<*mut u8> {
        if !range_fits(offset, len, self.mapped.load(Ordering::Acquire)) {
            return None;
        }
        // SAFETY: `offset <= mapped <= reserved` (checked above and
        // invariant 2), so the result stays within our own range.
        Some(unsafe { self.base.as_ptr().add(offset) })
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the mapping.
    /// Returns `false`, copying nothing, if the range is not mapped.
    #[inline]
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> bool {
        let Some(src) = self.checked_ptr(offset, buf.len()) else {
            return false;
        };
        // SAFETY: `[src, src + buf.len())` is inside the mapped prefix
        // (checked by `checked_ptr`, invariant 2) and readable; `buf` is
        // private memory of the caller, so the ranges cannot overlap. The
        // copy goes through raw pointers only (invariant 3).
        unsafe { ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// Copies `data` into the mapping at `offset`. Returns `false`, copying
    /// nothing, if the range is not mapped or the mapping is read-only.
    #[inline]
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> bool {
        if !self.writable {
            return false;
        }
        let Some(dst) = self.checked_ptr(offset, data.len()) else {
            return false;
        };
        // SAFETY: `[dst, dst + data.len())` is inside the mapped prefix
        // (invariant 2), mapped writable (checked above), and `data` is the
        // caller's private memory, so the ranges cannot overlap. Concurrent
        // writers elsewhere are expected (invariant 3); no reference to the
        // destination is formed.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        true
    }

    /// An atomic view of the aligned 4 bytes at `offset`, if mapped writable
    /// and aligned.
    pub(crate) fn atomic_u32(&self, offset: usize) -> Option<&AtomicU32> {
        if !self.writable || offset % std::mem::align_of::<AtomicU32>() != 0 {
            return None;
        }
        let p = self.checked_ptr(offset, std::mem::size_of::<AtomicU32>())?;
        // SAFETY: `p` is inside the mapped prefix for 4 bytes, aligned
        // (the base is page-aligned and `offset` is a multiple of 4), and
        // the pages are mapped writable, as atomics need even to load on
        // some targets. The memory stays mapped for as long as `&self` lives
        // (invariant 1: unmapped only in `Drop`). Other processes access it
        // concurrently, which atomics permit (invariant 3).
        Some(unsafe { AtomicU32::from_ptr(p.cast::<u32>()) })
    }

    /// An atomic view of the aligned 8 bytes at `offset`, if mapped writable
    /// and aligned.
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

impl Drop for Mapping {
    fn drop(&mut self) {
        let reserved = *self.reserved.get_mut();
        // SAFETY: we own `[base, base + reserved)` (invariant 1), and `Drop`
        // runs once, when no `&Mapping` (and so no copy or atomic reference
        // derived from one) can exist any more.
        let res = unsafe { rustix::mm::munmap(self.base.as_ptr().cast::<c_void>(), reserved) };
        debug_assert!(res.is_ok(), "munmap of an owned range failed: {res:?}");
    }
}

#[cfg(test)]
mod arithmetic_tests {
    use super::*;

    #[test]
    fn range_fits_rejects_overflowing_ranges() {
        assert!(range_fits(0, 10, 10));
        assert!(range_fits(10, 0, 10));
        assert!(!range_fits(10, 1, 10));
        assert!(!range_fits(11, 0, 10));
        assert!(!range_fits(usize::MAX, 2, 10));
        assert!(!range_fits(2, usize::MAX, 10));
        assert!(!range_fits(1, usize::MAX, usize::MAX));
        assert!(range_fits(1, usize::MAX - 1, usize::MAX));
    }

    #[test]
    fn round_up_to_page_is_exact_and_overflow_checked() {
        let ps = page_size();
        assert!(ps.is_power_of_two());
        assert_eq!(round_up_to_page(0), Some(0));
        assert_eq!(round_up_to_page(1), Some(ps));
        assert_eq!(round_up_to_page(ps), Some(ps));
        assert_eq!(round_up_to_page(ps + 1), Some(2 * ps));
        assert_eq!(round_up_to_page(usize::MAX), None);
        assert_eq!(round_up_to_page(usize::MAX - ps + 2), None);
    }
}

#[cfg(all(test, not(miri), not(loom)))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn file_of(len: u64) -> std::fs::File {
        let f = tempfile::tempfile().unwrap();
        f.set_len(len).unwrap();
        f
    }

    #[test]
    fn extend_in_reservation_keeps_base_and_bytes() {
        let ps = page_size();
        let f = file_of(u64::try_from(ps).unwrap());
        let m = Mapping::new(f.as_fd(), ps, 16 * ps, true).unwrap();
        let base = m.base();
        assert!(m.write(0, b"head"));
        f.set_len(u64::try_from(4 * ps).unwrap()).unwrap();
        assert_eq!(m.extend(f.as_fd(), 4 * ps), Ok(true));
        assert_eq!(m.base(), base);
        assert_eq!(m.mapped_len(), 4 * ps);
        let mut b = [0u8; 4];
        assert!(m.read(0, &mut b));
        assert_eq!(&b, b"head");
        assert!(m.write(4 * ps - 4, b"tail"));
        assert!(!m.read(4 * ps - 3, &mut b), "past the mapped prefix");
        assert_eq!(
            m.extend(f.as_fd(), 17 * ps),
            Ok(false),
            "beyond the reservation"
        );
    }

    #[test]
    fn exact_mapping_cannot_extend() {
        let ps = page_size();
        let f = file_of(u64::try_from(ps).unwrap());
        let m = Mapping::new(f.as_fd(), ps, 0, true).unwrap();
        assert_eq!(m.reserved_len(), ps);
        assert_eq!(m.extend(f.as_fd(), ps + 1), Ok(false));
        assert_eq!(m.extend(f.as_fd(), ps), Ok(true));
    }

    #[test]
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
