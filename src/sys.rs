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
//!    `[base, base + len)` from construction until `Drop`. It was returned by
//!    `mmap` with a null hint (so the kernel chose a free range), nothing
//!    outside this module maps, unmaps or remaps inside it, and it is
//!    unmapped exactly once, in `Drop`. The file is never on hugetlbfs
//!    (`fs::validate` and the create path refuse it), so the kernel backs
//!    the range with base pages and `munmap(base, len)` covers all of it.
//! 2. **Whole range mapped.** All of `[base, base + len)` is mapped readable
//!    (and writable when `writable`), `MAP_SHARED`, to the file from offset 0.
//!    `len` is a multiple of the page size and never changes. The range may
//!    extend past the file's end: that is how a region grows in place (the
//!    file grows under an existing mapping, so the base address stays and no
//!    page already faulted in is dropped).
//! 3. **Foreign memory.** Other processes may write any byte of the mapping
//!    at any time, and so may other threads of this process through other
//!    views. No `&[u8]` or `&mut [u8]` is ever formed over it: bytes move
//!    only through [`copy_from_shared`] and [`copy_to_shared`] between the
//!    mapping and a caller's private buffer, or through
//!    `AtomicU32`/`AtomicU64` references. A copy racing a write may observe
//!    a mix of old and new bytes, but every byte it reads is a value some
//!    write stored there; it never reads outside the mapping.
//!
//!    *Copies racing accesses from this process.* The `core::sync::atomic`
//!    module documentation, "Memory model for atomic accesses", makes a data
//!    race (conflicting, unsynchronized accesses, at least one non-atomic)
//!    undefined behaviour, so a plain `ptr::copy_nonoverlapping` racing
//!    another thread's copy or atomic store would be. The copies therefore
//!    are:
//!    - on x86 and x86_64 (outside Miri), `asm!` blocks: `rep movsb`, or on
//!      x86_64 for copies of at most 64 bytes a few overlapping 16-, 8-, 4-
//!      and 1-byte moves (a byte written twice gets the same value twice).
//!      By the Rust Reference's rules for inline assembly the
//!      compiler treats each block as a black box and may assume only its
//!      declared interface (`asm.rules.black-box`): its register operands,
//!      `nostack`, `preserves_flags`, and that it may read and write any
//!      memory an FFI function could (`asm.rules.mem-same-as-ffi`; neither
//!      `nomem` nor `readonly` is declared). The block is not a Rust
//!      non-atomic access, so there is no data race for the compiler to
//!      assume absent, and what the copy observes is defined by the
//!      hardware: x86 memory is coherent (x86-TSO) and every byte load and
//!      store is single-copy atomic, so each byte the copy reads or writes
//!      holds a value some store wrote. That is the outcome a loop of
//!      per-byte relaxed atomic accesses would give.
//!    - on every other target, and under Miri (which cannot run `asm!`), a
//!      loop of per-byte `AtomicU8` accesses with `Ordering::Relaxed`. The
//!      `AtomicU8::from_ptr` requirements hold: the alignment of `AtomicU8`
//!      is 1; the bytes are valid for reads and writes for the duration of
//!      each access (invariants 1 and 2), except on read-only mappings,
//!      where only relaxed loads are made, which the module documentation's
//!      "Atomic accesses to read-only memory" allows for sizes up to 4 or 8
//!      bytes on the targets it lists ([`read_only_load_ok`]); and the
//!      memory model is followed, since every copy uses the same 1-byte size
//!      and so races other copies only with same-size atomic accesses. Word
//!      and byte accesses are never mixed inside copies: two copies at
//!      different alignments would then race with different sizes. On
//!      targets outside that table a read-only mapping is read with
//!      `ptr::copy_nonoverlapping`: nothing in this process writes through a
//!      read-only mapping (the crate refuses, and the pages fault on a
//!      store), so that copy races only reads, which is no data race.
//!
//!    *Mixed-size atomics.* `Mapping::atomic_u32` and
//!    `Mapping::atomic_u64` at overlapping offsets (and, wherever copies are
//!    the per-byte loop, a copy's 1-byte atomics and a wider atomic) are
//!    atomic accesses of different sizes to the same bytes. The memory-model
//!    section allows racing ones only if both are reads, and the `from_ptr`
//!    requirements repeat that atomic accesses of different sizes may not be
//!    mixed without synchronization. The crate does not prevent such a race
//!    between two threads of this process: that is the caller's
//!    responsibility, documented on `Region::atomic_u32` and
//!    `Region::atomic_u64`. Refusing it would need a per-byte registry
//!    consulted on every access through every view, it could not cover
//!    other processes anyway, and the hardware keeps such accesses coherent:
//!    on x86, Arm, RISC-V and POWER each byte that a racing access of any
//!    size reads is a value some store wrote to it. Racing mixed-size reads
//!    are allowed by std. On x86 and x86_64 (outside Miri) a copy racing an
//!    atomic is not in this case: the copy is not a Rust atomic access.
//! 4. **File length.** Pages of the mapping that lie past the file's current
//!    end raise `SIGBUS` when touched. That is a crash, not undefined
//!    behaviour, and this module does not prevent it: its own checks keep
//!    every access inside the mapping, and the callers bound every access by
//!    the length they last validated against `fstat`. A peer that truncates
//!    the file between that check and the access can still cause it;
//!    `SECURITY.md` documents this limit of path-backed files.
//! 5. **Release.** `Drop` never panics and never leaks silently: if the
//!    kernel refuses to unmap the range, it stays mapped (nothing else can
//!    be placed there, so no memory is misused) and the crate-global counter
//!    read by [`unmap_failures`] goes up by one.
// Only this module may use unsafe code and the raw mapping calls.
#![allow(unsafe_code)]
#![allow(clippy::disallowed_methods)]

use std::ffi::c_void;
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};
#[cfg(any(miri, not(any(target_arch = "x86", target_arch = "x86_64"))))]
use std::sync::atomic::AtomicU8;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

/// Mappings that `Drop` could not unmap (invariant 5).
static UNMAP_FAILURES: AtomicU64 = AtomicU64::new(0);

/// How many mappings this process could not release.
///
/// A mapping is released (`munmap`) when the last [`Region`](crate::Region)
/// view and [`MmapRegion`](crate::MmapRegion) handle holding it are
/// dropped. Dropping never panics; if the kernel refuses to unmap, the
/// address range stays reserved for the rest of the process's life and this
/// counter, shared by the whole crate, goes up by one. It stays 0 in normal
/// use: the crate maps only whole base pages of files not on hugetlbfs, so
/// the kernel refuses only if code outside this crate unmapped or remapped
/// part of a mapping the crate owns.
#[must_use]
pub fn unmap_failures() -> u64 {
    UNMAP_FAILURES.load(Ordering::Relaxed)
}

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

/// Whether copies use the portable per-byte atomic loop (invariant 3)
/// rather than inline assembly.
const PORTABLE_COPY: bool = cfg!(any(
    miri,
    not(any(target_arch = "x86", target_arch = "x86_64"))
));

/// Copies `dst.len()` bytes from memory other threads and processes may be
/// accessing at the same time (invariant 3) into the private buffer `dst`.
///
/// Sound when it races any access to the source from another thread of
/// this process, except, where [`PORTABLE_COPY`] is true (targets other
/// than x86 and x86_64, and Miri), an atomic write wider than a byte (the mixed-size rule of invariant 3). Each byte
/// of `dst` receives a value that some write stored at the corresponding
/// source byte.
///
/// # Safety
///
/// - `[src, src + dst.len())` must be valid for reads for the duration of
///   the call, and must not overlap `dst`;
/// - when [`PORTABLE_COPY`] is true, the source must also be valid for
///   writes, unless [`read_only_load_ok`]`(1)` holds (relaxed 1-byte atomic
///   loads of read-only memory are then allowed).
#[inline]
pub(crate) unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8]) {
    #[cfg(any(miri, not(any(target_arch = "x86", target_arch = "x86_64"))))]
    for (i, d) in dst.iter_mut().enumerate() {
        let p = src.wrapping_add(i).cast_mut();
        // SAFETY: `p` is inside the source range, valid for reads (and for
        // writes, or a target where relaxed byte loads of read-only memory
        // are allowed) by the caller's contract; `AtomicU8` has alignment 1.
        // Every racing access a copy makes is a 1-byte atomic (invariant 3).
        let byte = unsafe { AtomicU8::from_ptr(p) };
        *d = byte.load(Ordering::Relaxed);
    }
    #[cfg(all(not(miri), any(target_arch = "x86", target_arch = "x86_64")))]
    // SAFETY: the source is valid for reads and `dst` for writes, both for
    // `dst.len()` bytes, and they do not overlap (caller's contract, and
    // `dst` is a unique borrow). The block is opaque to the compiler and
    // its accesses are the hardware's byte-atomic ones (invariant 3).
    unsafe {
        asm_copy(src, dst.as_mut_ptr(), dst.len());
    }
}

/// Copies the private buffer `src` into memory other threads and processes
/// may be accessing at the same time (invariant 3).
///
/// Sound when it races any access to the destination from another thread
/// of this process, except, where [`PORTABLE_COPY`] is true (targets other
/// than x86 and x86_64, and Miri), an atomic access wider than a byte (the mixed-size rule of invariant 3).
/// A racing reader sees, in each byte, a value some write stored there.
///
/// # Safety
///
/// `[dst, dst + src.len())` must be valid for reads and writes for the
/// duration of the call, and must not overlap `src`.
#[inline]
pub(crate) unsafe fn copy_to_shared(src: &[u8], dst: *mut u8) {
    #[cfg(any(miri, not(any(target_arch = "x86", target_arch = "x86_64"))))]
    for (i, &s) in src.iter().enumerate() {
        let p = dst.wrapping_add(i);
        // SAFETY: `p` is inside the destination range, valid for reads and
        // writes by the caller's contract; `AtomicU8` has alignment 1.
        // Every racing access a copy makes is a 1-byte atomic (invariant 3).
        let byte = unsafe { AtomicU8::from_ptr(p) };
        byte.store(s, Ordering::Relaxed);
    }
    #[cfg(all(not(miri), any(target_arch = "x86", target_arch = "x86_64")))]
    // SAFETY: `src` is valid for reads and the destination for writes, both
    // for `src.len()` bytes, and they do not overlap (caller's contract).
    // The block is opaque to the compiler and its accesses are the
    // hardware's byte-atomic ones (invariant 3).
    unsafe {
        asm_copy(src.as_ptr(), dst, src.len());
    }
}

/// Copies `len` bytes from `src` to `dst` in inline assembly the compiler
/// cannot see into (invariant 3): `rep movsb` above 64 bytes, and below
/// that, where `rep movsb`'s start-up cost dominates, a pair of possibly
/// overlapping loads and stores of the widest size that fits (two 16-byte
/// pairs from 33 bytes). Overlapping parts are read twice and written
/// twice: each destination byte still ends up holding one value read from
/// its source byte, and every value a racing reader can see was written by
/// someone.
///
/// # Safety
///
/// `[src, src + len)` must be valid for reads and `[dst, dst + len)` for
/// writes, and the ranges must not overlap.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn asm_copy(src: *const u8, dst: *mut u8, len: usize) {
    if len > 64 {
        // SAFETY: the caller's contract is `rep_movsb`'s.
        unsafe { rep_movsb(src, dst, len) }
    } else if len > 32 {
        // SAFETY: 33 <= len <= 64, so the four 16-byte accesses at 0, 16,
        // len - 32 and len - 16 lie inside both ranges (caller's contract).
        // The block reads and writes memory (no `nomem`/`readonly`), uses no
        // stack and writes no flags; the xmm registers are declared.
        unsafe {
            core::arch::asm!(
                "movups {a}, xmmword ptr [{s}]",
                "movups {b}, xmmword ptr [{s} + 16]",
                "movups {c}, xmmword ptr [{s} + {n} - 32]",
                "movups {e}, xmmword ptr [{s} + {n} - 16]",
                "movups xmmword ptr [{d}], {a}",
                "movups xmmword ptr [{d} + 16], {b}",
                "movups xmmword ptr [{d} + {n} - 32], {c}",
                "movups xmmword ptr [{d} + {n} - 16], {e}",
                s = in(reg) src,
                d = in(reg) dst,
                n = in(reg) len,
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                c = out(xmm_reg) _,
                e = out(xmm_reg) _,
                options(nostack, preserves_flags),
            );
        }
    } else if len >= 16 {
        // SAFETY: 16 <= len <= 32: the 16-byte accesses at 0 and len - 16
        // lie inside both ranges; declared as above.
        unsafe {
            core::arch::asm!(
                "movups {a}, xmmword ptr [{s}]",
                "movups {b}, xmmword ptr [{s} + {n} - 16]",
                "movups xmmword ptr [{d}], {a}",
                "movups xmmword ptr [{d} + {n} - 16], {b}",
                s = in(reg) src,
                d = in(reg) dst,
                n = in(reg) len,
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                options(nostack, preserves_flags),
            );
        }
    } else if len >= 8 {
        // SAFETY: 8 <= len < 16: the 8-byte accesses at 0 and len - 8 lie
        // inside both ranges. `out` (not `lateout`) keeps the scratch
        // registers apart from the inputs.
        unsafe {
            core::arch::asm!(
                "mov {a}, qword ptr [{s}]",
                "mov {b}, qword ptr [{s} + {n} - 8]",
                "mov qword ptr [{d}], {a}",
                "mov qword ptr [{d} + {n} - 8], {b}",
                s = in(reg) src,
                d = in(reg) dst,
                n = in(reg) len,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, preserves_flags),
            );
        }
    } else if len >= 4 {
        // SAFETY: 4 <= len < 8: the 4-byte accesses at 0 and len - 4 lie
        // inside both ranges; declared as above.
        unsafe {
            core::arch::asm!(
                "mov {a:e}, dword ptr [{s}]",
                "mov {b:e}, dword ptr [{s} + {n} - 4]",
                "mov dword ptr [{d}], {a:e}",
                "mov dword ptr [{d} + {n} - 4], {b:e}",
                s = in(reg) src,
                d = in(reg) dst,
                n = in(reg) len,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, preserves_flags),
            );
        }
    } else if len > 0 {
        // SAFETY: 1 <= len <= 3: bytes 0, len / 2 and len - 1 lie inside
        // both ranges and together cover them; declared as above.
        unsafe {
            core::arch::asm!(
                "movzx {a:e}, byte ptr [{s}]",
                "movzx {b:e}, byte ptr [{s} + {h}]",
                "movzx {c:e}, byte ptr [{s} + {n} - 1]",
                "mov byte ptr [{d}], {a:l}",
                "mov byte ptr [{d} + {h}], {b:l}",
                "mov byte ptr [{d} + {n} - 1], {c:l}",
                s = in(reg) src,
                d = in(reg) dst,
                n = in(reg) len,
                h = in(reg) len / 2,
                a = out(reg) _,
                b = out(reg) _,
                c = out(reg) _,
                options(nostack, preserves_flags),
            );
        }
    }
}

/// 32-bit x86 copies with `rep movsb` at every length.
///
/// # Safety
///
/// As for `rep_movsb`.
#[cfg(all(target_arch = "x86", not(miri)))]
#[inline(always)]
unsafe fn asm_copy(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller's contract is `rep_movsb`'s.
    unsafe { rep_movsb(src, dst, len) }
}

/// `rep movsb`: copies `len` bytes from `src` to `dst`, forwards, in one
/// `asm!` block the compiler cannot see into (invariant 3).
///
/// # Safety
///
/// `[src, src + len)` must be valid for reads and `[dst, dst + len)` for
/// writes, and the ranges must not overlap.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn rep_movsb(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the ranges are valid and disjoint (caller's contract).
    // `rep movsb` reads `[rsi, rsi + rcx)`, writes `[rdi, rdi + rcx)` in
    // ascending order (the direction flag is clear on entry to `asm!`,
    // `asm.rules.x86-df`), and leaves rcx, rsi and rdi changed, which the
    // operands declare. It writes no flags (`preserves_flags`) and no stack
    // (`nostack`); memory is neither `nomem` nor `readonly`, because it is
    // read and written.
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") len => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags),
        );
    }
}

/// As the x86_64 `rep_movsb`, for 32-bit x86, where `esi` cannot be an
/// operand (LLVM may use it as a base pointer), so the block saves and
/// restores it around the copy.
///
/// # Safety
///
/// As for the x86_64 version.
#[cfg(all(target_arch = "x86", not(miri)))]
#[inline(always)]
unsafe fn rep_movsb(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: as for x86_64. `xchg` and `mov` write no flags; the
    // register holding `src` on entry holds the caller's `esi` after the
    // `xchg`, and `esi` is restored from it before the block exits
    // (`asm.rules.reg-not-output`); that register is declared clobbered.
    unsafe {
        core::arch::asm!(
            "xchg esi, {src}",
            "rep movsb",
            "mov esi, {src}",
            src = inout(reg) src => _,
            inout("ecx") len => _,
            inout("edi") dst => _,
            options(nostack, preserves_flags),
        );
    }
}

/// A `MAP_SHARED` mapping of a file, usually longer than the file so that
/// the file can grow under it without the mapping moving.
///
/// The mapping is released (`munmap`) when the value is dropped; the crate
/// keeps it in an `Arc` so that every view holding it keeps the memory valid.
#[derive(Debug)]
pub(crate) struct Mapping {
    base: NonNull<u8>,
    /// Bytes mapped (invariants 1 and 2).
    len: usize,
    writable: bool,
}

// SAFETY: `Mapping` holds a raw pointer only as the address of a range it
// owns (invariant 1); the range is valid from any thread, and it is unmapped
// exactly once, in `Drop`, on whichever thread drops the last owner.
unsafe impl Send for Mapping {}

// SAFETY: `Mapping` has no state that its `&self` methods change; they
// reach the mapped bytes only (a) through `copy_from_shared` and
// `copy_to_shared`, which are sound when they race any access from another
// thread (invariant 3: an opaque `asm!` copy on x86 and x86_64, per-byte
// relaxed atomics elsewhere), and (b) through `AtomicU32`/`AtomicU64`
// references, which are `Sync`. The one race this does not exclude is the
// mixed-size one of invariant 3, left to the caller and documented on the
// public atomic accessors.
unsafe impl Sync for Mapping {}

fn prot(writable: bool) -> ProtFlags {
    if writable {
        ProtFlags::READ | ProtFlags::WRITE
    } else {
        ProtFlags::READ
    }
}

impl Mapping {
    /// Maps `fd` shared from offset 0 over at least `len` bytes, and over
    /// `reserve` bytes when that is larger and the address space allows, so
    /// that the file can grow to `reserve` bytes in place.
    ///
    /// If the larger mapping cannot be made (address space, `RLIMIT_AS`, an
    /// offset the file system cannot map), exactly the page-rounded `len` is
    /// mapped. The file may be shorter than the mapping; callers must not
    /// publish bytes past the file's end (invariant 4).
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
        let exact = round_up_to_page(len).ok_or(Errno::INVAL)?;
        let want = round_up_to_page(reserve).unwrap_or(exact);
        if want > exact {
            if let Ok(m) = Self::map(fd, want, writable) {
                return Ok(m);
            }
        }
        Self::map(fd, exact, writable)
    }

    fn map(fd: BorrowedFd<'_>, len: usize, writable: bool) -> Result<Self, Errno> {
        // SAFETY: a null hint without `MAP_FIXED` lets the kernel choose a
        // free range, so no existing mapping is replaced; the range returned
        // is owned by the `Mapping` built below (invariant 1) and is mapped
        // shared to `fd` from offset 0 for `len` bytes (invariant 2).
        let base = unsafe {
            rustix::mm::mmap(
                ptr::null_mut(),
                len,
                prot(writable),
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let base = NonNull::new(base.cast::<u8>()).ok_or(Errno::NOMEM)?;
        Ok(Self {
            base,
            len,
            writable,
        })
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
    #[cfg(test)]
    pub(crate) fn mapped_len(&self) -> usize {
        self.len
    }

    /// Whether the pages were mapped writable.
    #[inline]
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// Returns the address of `base + offset` if `len` bytes from there are
    /// inside the mapping.
    #[inline]
    fn checked_ptr(&self, offset: usize, len: usize) -> Option<*mut u8> {
        if !range_fits(offset, len, self.len) {
            return None;
        }
        // SAFETY: `offset <= self.len` (checked above), so the result stays
        // within, or one past the end of, our own range (invariant 1).
        Some(unsafe { self.base.as_ptr().add(offset) })
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the mapping.
    /// Returns `false`, copying nothing, if the range is not inside it.
    #[inline]
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> bool {
        let Some(src) = self.checked_ptr(offset, buf.len()) else {
            return false;
        };
        if PORTABLE_COPY && !self.writable && !read_only_load_ok(1) {
            // SAFETY: `[src, src + buf.len())` is inside the mapping (checked
            // by `checked_ptr`) and mapped readable (invariant 2); `buf` is
            // the caller's private memory, so the ranges cannot overlap. The
            // pages are read-only, so no thread of this process writes them
            // and this plain copy races only reads (invariant 3).
            unsafe { ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        } else {
            // SAFETY: `[src, src + buf.len())` is inside the mapping (checked
            // by `checked_ptr`), mapped readable, and writable or read through
            // relaxed byte loads that std allows on read-only memory
            // (`read_only_load_ok(1)`, checked above for the portable copy;
            // invariants 2 and 3). `buf` is the caller's private memory, so
            // the ranges cannot overlap.
            unsafe { copy_from_shared(src, buf) };
        }
        true
    }

    /// Copies `data` into the mapping at `offset`. Returns `false`, copying
    /// nothing, if the range is not inside it or the mapping is read-only.
    #[inline]
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> bool {
        if !self.writable {
            return false;
        }
        let Some(dst) = self.checked_ptr(offset, data.len()) else {
            return false;
        };
        // SAFETY: `[dst, dst + data.len())` is inside the mapping, mapped
        // readable and writable (checked above, invariant 2), and `data` is
        // the caller's private memory, so the ranges cannot overlap. Racing
        // accesses from other threads and processes are expected
        // (invariant 3); no reference to the destination is formed.
        unsafe { copy_to_shared(data, dst) };
        true
    }

    /// An atomic view of the aligned 4 bytes at `offset`, if mapped writable
    /// and aligned.
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
    Populate,
}

impl Mapping {
    /// The page-aligned range covering `[offset, offset + len)`, if inside
    /// the mapping, as a pointer and a length.
    fn page_range(&self, offset: usize, len: usize) -> Option<(*mut c_void, usize)> {
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
    fn on_pages(
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

    /// `madvise` over the pages covering `[offset, offset + len)`.
    pub(crate) fn advise(&self, offset: usize, len: usize, hint: Hint) -> Result<(), Errno> {
        use rustix::mm::Advice;
        let advice = match hint {
            Hint::Normal => Advice::Normal,
            Hint::Random => Advice::Random,
            Hint::Sequential => Advice::Sequential,
            Hint::WillNeed => Advice::WillNeed,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Hint::DontNeed => Advice::LinuxDontNeed,
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Hint::DontNeed => Advice::DontNeed,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Hint::Populate if self.writable => Advice::LinuxPopulateWrite,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Hint::Populate => Advice::LinuxPopulateRead,
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Hint::Populate => Advice::WillNeed,
        };
        self.on_pages(offset, len, |ptr, len| {
            // SAFETY: `[ptr, ptr + len)` lies inside our mapping (checked by
            // `page_range`). The advice values above are hints or, for
            // `DontNeed` on a `MAP_SHARED` file mapping, drop page-table
            // entries whose contents stay in the file; none discards shared
            // data or touches memory we do not own.
            unsafe { rustix::mm::madvise(ptr, len, advice) }
        })
    }

    /// `msync` over the pages covering `[offset, offset + len)`.
    pub(crate) fn sync(&self, offset: usize, len: usize, wait: bool) -> Result<(), Errno> {
        use rustix::mm::MsyncFlags;
        let flags = if wait {
            MsyncFlags::SYNC
        } else {
            MsyncFlags::ASYNC
        };
        self.on_pages(offset, len, |ptr, len| {
            // SAFETY: the range lies inside our mapping (checked by
            // `page_range`); `msync` only writes dirty pages back to the
            // file.
            unsafe { rustix::mm::msync(ptr, len, flags) }
        })
    }

    /// `mlock` over the pages covering `[offset, offset + len)`. The
    /// pages are unlocked when the mapping is unmapped.
    pub(crate) fn lock(&self, offset: usize, len: usize) -> Result<(), Errno> {
        self.on_pages(offset, len, |ptr, len| {
            // SAFETY: the range lies inside our mapping (checked by
            // `page_range`) and below the file's end (the caller passes a
            // published length); locking faults the pages in and keeps them
            // resident, changing no contents.
            unsafe { rustix::mm::mlock(ptr, len) }
        })
    }

    /// An atomic load of the aligned 4 bytes at `offset`, allowed on
    /// read-only mappings too (see [`read_only_load_ok`]). `None` if the
    /// word is not inside the mapping, misaligned, `order` is not a load
    /// ordering, or the target cannot load read-only memory atomically.
    pub(crate) fn load_u32(&self, offset: usize, order: Ordering) -> Option<u32> {
        let p = self.load_ptr(offset, std::mem::size_of::<u32>(), order)?;
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

    /// The checks shared by the loads: alignment, bounds, a load ordering,
    /// and read-only support for `size` on this target.
    fn load_ptr(&self, offset: usize, size: usize, order: Ordering) -> Option<*mut u8> {
        if offset % size != 0 || matches!(order, Ordering::Release | Ordering::AcqRel) {
            return None;
        }
        if !self.writable && !read_only_load_ok(size) {
            return None;
        }
        self.checked_ptr(offset, size)
    }
}

/// After a relaxed load, the fence that gives it `order`'s guarantees (the
/// way std recommends acquiring on read-only memory).
fn fence_for(order: Ordering) {
    match order {
        Ordering::Acquire => std::sync::atomic::fence(Ordering::Acquire),
        Ordering::SeqCst => std::sync::atomic::fence(Ordering::SeqCst),
        _ => {}
    }
}

/// Whether a relaxed atomic load of `size` bytes works on read-only memory
/// on this target, per the table in `core::sync::atomic`'s documentation.
pub(crate) const fn read_only_load_ok(size: usize) -> bool {
    if cfg!(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "loongarch64",
        target_arch = "mips64",
        target_arch = "powerpc64",
        target_arch = "riscv64",
        target_arch = "sparc64",
        target_arch = "s390x"
    )) {
        size <= 8
    } else if cfg!(any(
        target_arch = "x86",
        target_arch = "arm",
        target_arch = "loongarch32",
        target_arch = "mips",
        target_arch = "powerpc",
        target_arch = "riscv32",
        target_arch = "sparc",
        target_arch = "hexagon"
    )) {
        size <= 4
    } else {
        false
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let base = self.base.as_ptr().cast::<c_void>();
        // SAFETY: we own `[base, base + len)` (invariant 1), and `Drop` runs
        // once, when no `&Mapping` (and so no copy or atomic reference
        // derived from one) can exist any more.
        let res = unsafe { rustix::mm::munmap(base, self.len) };
        if res.is_err() {
            // Invariant 5: the range stays mapped, and the leak is counted.
            UNMAP_FAILURES.fetch_add(1, Ordering::Relaxed);
        }
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

/// The copy primitives over heap memory, so that they also run under Miri
/// (the portable per-byte atomic copy there, `rep movsb` elsewhere on x86).
#[cfg(test)]
mod copy_tests {
    use super::*;
    use std::sync::atomic::AtomicU8;

    /// A recognisable byte for position `i` of pattern `seed`.
    fn pattern(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from((i * 31 + usize::from(seed)) % 251).unwrap())
            .collect()
    }

    /// Copies `len` bytes at every offset 0..8 into and out of a guarded
    /// "shared" buffer and checks exactly which bytes changed.
    fn round_trip(len: usize) {
        const GUARD: u8 = 0xEE;
        let data = pattern(1, len);
        for offset in 0..8 {
            let mut shared = vec![GUARD; len + 16];
            // SAFETY: `shared` has `offset + len` bytes from its start
            // (`offset < 16`), is valid for reads and writes, and is a
            // different allocation from `data`.
            unsafe { copy_to_shared(&data, shared.as_mut_ptr().wrapping_add(offset)) };
            assert!(shared[..offset].iter().all(|&b| b == GUARD), "before");
            assert_eq!(&shared[offset..offset + len], &data[..], "copied");
            assert!(shared[offset + len..].iter().all(|&b| b == GUARD), "after");

            let mut out = vec![GUARD; len + 2];
            let src = shared.as_ptr().wrapping_add(offset);
            // SAFETY: `[src, src + len)` lies inside `shared` (as above),
            // which is valid for reads and writes and is not `out`.
            unsafe { copy_from_shared(src, &mut out[1..=len]) };
            assert_eq!(out[0], GUARD);
            assert_eq!(&out[1..=len], &data[..]);
            assert_eq!(out[len + 1], GUARD);
        }
    }

    #[test]
    fn copies_are_exact_for_every_length_to_70_at_every_offset_to_8() {
        for len in 0..=70 {
            round_trip(len);
        }
    }

    #[test]
    fn copies_are_exact_for_a_large_buffer() {
        // 1 MiB natively; Miri runs a smaller one (its per-byte atomics are
        // slow there) that still spans many words and cache lines.
        let len = if cfg!(miri) { 4096 + 3 } else { 1 << 20 };
        let data = pattern(7, len);
        let mut shared = vec![0u8; len + 1];
        // SAFETY: `shared` holds `len + 1` bytes; we write `len` from offset
        // 1. Distinct allocations.
        unsafe { copy_to_shared(&data, shared.as_mut_ptr().wrapping_add(1)) };
        assert_eq!(shared[0], 0);
        assert!(shared[1..] == data[..]);
        let mut out = vec![0u8; len];
        // SAFETY: `len` bytes from offset 1 are inside `shared`; `out` is
        // another allocation.
        unsafe { copy_from_shared(shared.as_ptr().wrapping_add(1), &mut out) };
        assert!(out == data);
    }

    #[test]
    fn four_threads_racing_copies_over_the_same_bytes_read_only_written_values() {
        // Two writers copy buffers filled with their own byte into the same
        // range, two readers copy it out; every byte read must be the
        // initial byte or one writer's. Miri's data-race detector checks
        // that the race itself is allowed.
        const LEN: usize = if cfg!(miri) { 48 } else { 4096 };
        const ROUNDS: usize = if cfg!(miri) { 12 } else { 2000 };
        const INITIAL: u8 = 0x5A;
        const FILLS: [u8; 2] = [0x11, 0x22];
        // The "shared memory": heap bytes reached only through a raw
        // pointer derived from the `UnsafeCell`s inside the atomics.
        let shared: Vec<AtomicU8> = (0..LEN + 8).map(|_| AtomicU8::new(INITIAL)).collect();
        let shared = &shared[..];
        std::thread::scope(|s| {
            for (t, fill) in FILLS.into_iter().enumerate() {
                s.spawn(move || {
                    let data = [fill; LEN];
                    let base = shared.as_ptr().cast::<u8>().cast_mut();
                    for round in 0..ROUNDS {
                        let offset = (round + t) % 8;
                        let len = LEN - (round * 7) % LEN;
                        // SAFETY: `offset + len <= LEN + 8` bytes of
                        // `shared`, valid for reads and writes (interior
                        // mutability); `data` is this thread's own.
                        unsafe { copy_to_shared(&data[..len], base.wrapping_add(offset)) };
                    }
                });
            }
            for t in 0..2 {
                s.spawn(move || {
                    let mut buf = [0u8; LEN];
                    let base = shared.as_ptr().cast::<u8>().cast_mut();
                    for round in 0..ROUNDS {
                        let offset = (round * 3 + t) % 8;
                        let len = LEN - (round * 5) % LEN;
                        // SAFETY: as for the writers; `buf` is private.
                        unsafe { copy_from_shared(base.wrapping_add(offset), &mut buf[..len]) };
                        for &b in &buf[..len] {
                            assert!(b == INITIAL || FILLS.contains(&b), "read {b:#04x}");
                        }
                    }
                });
            }
        });
        for b in shared {
            let b = b.load(Ordering::Relaxed);
            assert!(b == INITIAL || FILLS.contains(&b));
        }
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
    fn exact_mapping_covers_only_the_rounded_length() {
        let ps = page_size();
        let f = file_of(u64::try_from(ps).unwrap());
        let m = Mapping::new(f.as_fd(), 10, 0, true).unwrap();
        assert_eq!(m.mapped_len(), ps);
        assert!(m.covers(ps) && !m.covers(ps + 1));
    }

    #[test]
    fn unmappable_reservation_falls_back_to_an_exact_mapping() {
        let ps = page_size();
        let f = file_of(u64::try_from(ps).unwrap());
        // Far more address space than exists: the reservation fails.
        let m = Mapping::new(f.as_fd(), ps, usize::MAX / 2, true).unwrap();
        assert_eq!(m.mapped_len(), ps);
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
    fn failed_unmap_is_counted_instead_of_panicking() {
        let before = unmap_failures();
        // Not page-aligned, so `munmap` refuses it (EINVAL) without
        // touching anything.
        let bogus = Mapping {
            base: NonNull::dangling(),
            len: page_size(),
            writable: false,
        };
        drop(bogus);
        assert_eq!(unmap_failures(), before + 1);
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
