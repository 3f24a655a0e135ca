//! Copies between a caller's private buffer and memory that other threads
//! and processes may access at the same time (invariant 3 of the parent
//! module).

#[cfg(any(miri, not(any(target_arch = "x86", target_arch = "x86_64"))))]
use std::sync::atomic::{AtomicU8, Ordering};

/// Whether copies use the portable per-byte atomic loop (invariant 3)
/// rather than inline assembly.
pub(super) const PORTABLE_COPY: bool = cfg!(any(
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
/// `whole` is the length of the copy this is a part of (`dst.len()` for a
/// copy in one part; `Region::read_at` copies more than 64 KiB in pieces):
/// on x86_64 the way a part of more than 256 bytes is copied follows it
/// ([`large_copy`]), so that the parts of a 16 MiB copy use the stores that
/// suit 16 MiB. Elsewhere it is not used.
///
/// # Safety
///
/// - `[src, src + dst.len())` must be valid for reads for the duration of
///   the call, and must not overlap `dst`;
/// - when [`PORTABLE_COPY`] is true, the source must also be valid for
///   writes, unless [`read_only_load_ok`](super::read_only_load_ok)`(1)` holds (relaxed 1-byte atomic
///   loads of read-only memory are then allowed).
#[inline]
pub(crate) unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8], whole: usize) {
    #[cfg(any(miri, not(any(target_arch = "x86", target_arch = "x86_64"))))]
    let _ = whole;
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
    #[cfg(all(not(miri), target_arch = "x86_64"))]
    // SAFETY: the source is valid for reads for `dst.len()` bytes and does
    // not overlap `dst` (caller's contract, and `dst` is a unique borrow),
    // which is `asm_read`'s contract.
    unsafe {
        asm_read(src, dst, whole);
    }
    #[cfg(all(not(miri), target_arch = "x86"))]
    // SAFETY: the source is valid for reads and `dst` for writes, both for
    // `dst.len()` bytes, and they do not overlap (caller's contract, and
    // `dst` is a unique borrow). The block is opaque to the compiler and
    // its accesses are the hardware's byte-atomic ones (invariant 3).
    unsafe {
        asm_copy(src, dst.as_mut_ptr(), dst.len(), whole);
    }
}

/// Copies `dst.len()` bytes from `src` into `dst`. Up to 64 bytes, one
/// `readonly` asm block loads the source into registers (possibly
/// overlapping loads, as in [`asm_copy`]: four 16-byte ones from 33 bytes,
/// two from 17, two 8-byte ones from 8, so that 16 bytes are two general
/// registers, two 4-byte ones from 4, or three single bytes) and plain Rust
/// stores put them into `dst`. The block reads memory only, so the
/// compiler need not assume that it changed anything (no reload of the
/// caller's fields after the copy), and `dst` never escapes into assembly
/// (a small buffer, such as a header, can stay in registers). Where loads
/// overlap, a byte of `dst` is stored twice with values read from the same
/// source byte: each still holds a value some write stored there
/// (invariant 3). Above 64 bytes, [`asm_copy`] (given `whole`, the length
/// of the copy this is a part of).
///
/// # Safety
///
/// `[src, src + dst.len())` must be valid for reads and must not overlap
/// `dst`.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn asm_read(src: *const u8, dst: &mut [u8], whole: usize) {
    use core::arch::x86_64::__m128i;
    /// The bytes of a 16-byte register, in memory order.
    fn bytes(v: __m128i) -> [u8; 16] {
        // SAFETY: both types are 16 bytes of plain data, and every bit
        // pattern is a valid `[u8; 16]`.
        unsafe { core::mem::transmute::<__m128i, [u8; 16]>(v) }
    }
    let len = dst.len();
    if len > 64 {
        // SAFETY: the caller's contract, with `dst` valid for writes (a
        // unique borrow of `len` bytes), is `asm_copy`'s.
        unsafe { asm_copy(src, dst.as_mut_ptr(), len, whole) }
    } else if len > 32 {
        let (a, b, c, e): (__m128i, __m128i, __m128i, __m128i);
        // SAFETY: 33 <= len <= 64, so the 16-byte loads at 0, 16, len - 32
        // and len - 16 lie inside the source (caller's contract). The block
        // only reads memory (`readonly`; not `pure`, so it is never merged
        // with another read of memory a peer may change), uses no stack and
        // writes no flags; its results are the declared xmm outputs.
        unsafe {
            core::arch::asm!(
                "movups {a}, xmmword ptr [{s}]",
                "movups {b}, xmmword ptr [{s} + 16]",
                "movups {c}, xmmword ptr [{s} + {n} - 32]",
                "movups {e}, xmmword ptr [{s} + {n} - 16]",
                s = in(reg) src,
                n = in(reg) len,
                a = out(xmm_reg) a,
                b = out(xmm_reg) b,
                c = out(xmm_reg) c,
                e = out(xmm_reg) e,
                options(nostack, preserves_flags, readonly),
            );
        }
        dst[..16].copy_from_slice(&bytes(a));
        dst[16..32].copy_from_slice(&bytes(b));
        dst[len - 32..len - 16].copy_from_slice(&bytes(c));
        dst[len - 16..].copy_from_slice(&bytes(e));
    } else if len > 16 {
        let (a, b): (__m128i, __m128i);
        // SAFETY: 17 <= len <= 32: the 16-byte loads at 0 and len - 16 lie
        // inside the source; declared as above.
        unsafe {
            core::arch::asm!(
                "movups {a}, xmmword ptr [{s}]",
                "movups {b}, xmmword ptr [{s} + {n} - 16]",
                s = in(reg) src,
                n = in(reg) len,
                a = out(xmm_reg) a,
                b = out(xmm_reg) b,
                options(nostack, preserves_flags, readonly),
            );
        }
        dst[..16].copy_from_slice(&bytes(a));
        dst[len - 16..].copy_from_slice(&bytes(b));
    } else if len >= 8 {
        let (a, b): (u64, u64);
        // SAFETY: 8 <= len <= 16: the 8-byte loads at 0 and len - 8 lie
        // inside the source; declared as above, with general registers.
        // `out` (not `lateout`): `a` is written before `s` and `n` are
        // last read, so it must not share their registers.
        unsafe {
            core::arch::asm!(
                "mov {a}, qword ptr [{s}]",
                "mov {b}, qword ptr [{s} + {n} - 8]",
                s = in(reg) src,
                n = in(reg) len,
                a = out(reg) a,
                b = out(reg) b,
                options(nostack, preserves_flags, readonly),
            );
        }
        dst[..8].copy_from_slice(&a.to_ne_bytes());
        dst[len - 8..].copy_from_slice(&b.to_ne_bytes());
    } else if len >= 4 {
        let (a, b): (u32, u32);
        // SAFETY: 4 <= len < 8: the 4-byte loads at 0 and len - 4 lie
        // inside the source; declared as above.
        unsafe {
            core::arch::asm!(
                "mov {a:e}, dword ptr [{s}]",
                "mov {b:e}, dword ptr [{s} + {n} - 4]",
                s = in(reg) src,
                n = in(reg) len,
                a = out(reg) a,
                b = out(reg) b,
                options(nostack, preserves_flags, readonly),
            );
        }
        dst[..4].copy_from_slice(&a.to_ne_bytes());
        dst[len - 4..].copy_from_slice(&b.to_ne_bytes());
    } else if len > 0 {
        let (a, b, c): (u32, u32, u32);
        // SAFETY: 1 <= len <= 3: bytes 0, len / 2 and len - 1 lie inside
        // the source and together cover it; declared as above.
        unsafe {
            core::arch::asm!(
                "movzx {a:e}, byte ptr [{s}]",
                "movzx {b:e}, byte ptr [{s} + {h}]",
                "movzx {c:e}, byte ptr [{s} + {n} - 1]",
                s = in(reg) src,
                n = in(reg) len,
                h = in(reg) len / 2,
                a = out(reg) a,
                b = out(reg) b,
                c = out(reg) c,
                options(nostack, preserves_flags, readonly),
            );
        }
        // The loads zero-extended single bytes; truncation intended.
        dst[0] = a.to_le_bytes()[0];
        dst[len / 2] = b.to_le_bytes()[0];
        dst[len - 1] = c.to_le_bytes()[0];
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
/// `whole` is the length of the copy this is a part of, as for
/// [`copy_from_shared`].
///
/// # Safety
///
/// `[dst, dst + src.len())` must be valid for reads and writes for the
/// duration of the call, and must not overlap `src`.
#[inline]
pub(crate) unsafe fn copy_to_shared(src: &[u8], dst: *mut u8, whole: usize) {
    #[cfg(any(miri, not(any(target_arch = "x86", target_arch = "x86_64"))))]
    let _ = whole;
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
        asm_copy(src.as_ptr(), dst, src.len(), whole);
    }
}

/// Copies `len` bytes from `src` to `dst` in inline assembly the compiler
/// cannot see into (invariant 3): above 256 bytes `rep movsb` where
/// [`uses_rep_movsb`] says so, otherwise [`large_copy`]; below that,
/// where `rep movsb`'s start-up cost dominates, from 65 bytes a loop of
/// 32-byte steps (two 16-byte loads, then their stores) and a last,
/// possibly overlapping, 32-byte step at `len - 32`, and up to 64 bytes a
/// pair of possibly overlapping loads and stores of the widest size that
/// fits (two 16-byte pairs from 33 bytes). Overlapping parts are read twice
/// and written twice: each destination byte still ends up holding one value
/// read from its source byte, and every value a racing reader can see was
/// written by someone.
///
/// # Safety
///
/// `[src, src + len)` must be valid for reads and `[dst, dst + len)` for
/// writes, and the ranges must not overlap. (`whole`, the length of the
/// copy this is a part of, only chooses how.)
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn asm_copy(src: *const u8, dst: *mut u8, len: usize, whole: usize) {
    if len > 256 {
        if uses_rep_movsb(src as usize, dst as usize, whole.max(len)) {
            #[cfg(test)]
            copy_tests::LAST_PATH.with(|p| p.set(Some(LargePath::RepMovsb)));
            // SAFETY: the caller's contract is `rep_movsb`'s.
            unsafe { rep_movsb(src, dst, len) }
        } else {
            // SAFETY: the caller's contract, with `len > 256`, is
            // `large_copy`'s.
            unsafe { large_copy(src, dst, len, whole) }
        }
    } else if len > 64 {
        // SAFETY: 65 <= len <= 256, so `last = len - 32` is at least 33.
        // The loop copies the 32 bytes at i = 0, then at each i = 32, 64,
        // ... that is below `last` (so i + 32 < len), then the 32 bytes at
        // `last`, which end at len: every access lies inside both ranges
        // (caller's contract), and together they cover them. `i` is an
        // `out` (not `lateout`) register, apart from the inputs; `xor` on
        // its low half zeroes all of it. Declared as in the cases below,
        // except that `xor`, `add` and `cmp` write the flags (no
        // `preserves_flags`). `2:` is a local label, so the block may be
        // inlined more than once.
        unsafe {
            core::arch::asm!(
                "xor {i:e}, {i:e}",
                "2:",
                "movups {a}, xmmword ptr [{s} + {i}]",
                "movups {b}, xmmword ptr [{s} + {i} + 16]",
                "movups xmmword ptr [{d} + {i}], {a}",
                "movups xmmword ptr [{d} + {i} + 16], {b}",
                "add {i}, 32",
                "cmp {i}, {last}",
                "jb 2b",
                "movups {a}, xmmword ptr [{s} + {last}]",
                "movups {b}, xmmword ptr [{s} + {last} + 16]",
                "movups xmmword ptr [{d} + {last}], {a}",
                "movups xmmword ptr [{d} + {last} + 16], {b}",
                s = in(reg) src,
                d = in(reg) dst,
                last = in(reg) len - 32,
                i = out(reg) _,
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                options(nostack),
            );
        }
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

/// The 4 KiB aliasing window: a copy whose destination lies 1 to
/// `ALIAS_WINDOW - 1` bytes past its source, modulo 4096, is "aliased". The
/// hardware compares only the low 12 bits of a load's address with those
/// of the stores in flight, so there the loads of a forward copy look as if
/// they depended on the copy's own recent stores; `rep movsb` on AMD Zen
/// cores (`erms fsrm`) then takes 2 to 20 times as long as a vector loop
/// (and so does glibc's `memcpy`, which uses it from 2 KiB to the L2 cache
/// size), a backward loop runs at full speed (BENCHMARKS.md, "Copy
/// speed by size and page offset"). At distance 0 and from 64 on,
/// `rep movsb` keeps its speed here.
#[cfg(all(target_arch = "x86_64", not(miri)))]
const ALIAS_WINDOW: usize = 64;

/// With AVX, `rep movsb` is used from this length (below it the AVX loop is
/// as fast here, or faster: 4 KiB in 0.85x to 0.9x `memcpy`'s time)...
#[cfg(all(target_arch = "x86_64", not(miri)))]
const REP_MIN: usize = 32 << 10;

/// ...or from this one when both ends lie within [`NEAR`] bytes of the same
/// offset modulo 4096 (outside the aliasing window): there, at 16 KiB, the
/// AVX loop took up to 1.17 times `memcpy`'s time (which is `rep movsb` at
/// this size) in the bench, `rep movsb` 0.94 to 1.06; 2048 apart the loop
/// was the faster (BENCHMARKS.md).
#[cfg(all(target_arch = "x86_64", not(miri)))]
const REP_MIN_NEAR: usize = 16 << 10;

/// See [`REP_MIN_NEAR`].
#[cfg(all(target_arch = "x86_64", not(miri)))]
const NEAR: usize = 128;

/// ...to below this one: glibc's `memcpy` stops using `rep movsb` at the
/// L2 cache size on AMD (1 MiB here), and from 1 MiB `rep movsb` was no
/// faster than the AVX loop here (0.95 to 1.05 of `memcpy`'s time against
/// 0.97 to 1.0).
#[cfg(all(target_arch = "x86_64", not(miri)))]
const REP_MAX: usize = 1 << 20;

/// From this length, copies on CPUs with AVX store with non-temporal
/// stores (past the caches). On this machine kind (32 MiB of L3) they were
/// 1.33 to 1.53 times as fast as cached stores at 16 MiB, whose source and
/// destination together fill the L3, but 1.05 to 1.2 times slower at 8 MiB
/// and 1.6 to 1.75 times slower at 4 MiB, where a destination used again
/// stays cached (BENCHMARKS.md). Below it the destination stays cached for
/// the caller's next use of it.
#[cfg(all(target_arch = "x86_64", not(miri)))]
const NON_TEMPORAL_MIN: usize = 16 << 20;

/// Whether a copy from address `src` to address `dst` falls in the 4 KiB
/// aliasing window ([`ALIAS_WINDOW`]): `(dst - src) mod 4096` in `1 ..
/// ALIAS_WINDOW`. 4096 is the span of the address bits the hardware
/// compares, not the page size.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
fn four_k_aliased(src: usize, dst: usize) -> bool {
    let distance = dst.wrapping_sub(src) % 4096;
    distance != 0 && distance < ALIAS_WINDOW
}

/// Whether a copy of `whole` bytes (in all) from address `src` to address
/// `dst` uses `rep movsb` whatever the CPU: outside the aliasing window,
/// from [`rep_from`] to below [`REP_MAX`]. [`asm_copy`] asks this inline,
/// so that this common case makes no call (at 16 KiB the call measured up
/// to a few percent), and [`large_copy`] again.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
fn uses_rep_movsb(src: usize, dst: usize, whole: usize) -> bool {
    !four_k_aliased(src, dst) && (rep_from(src, dst)..REP_MAX).contains(&whole)
}

/// The length from which a copy from address `src` to address `dst` that
/// is not in the aliasing window uses `rep movsb` (on CPUs with AVX):
/// [`REP_MIN_NEAR`] when `(dst - src) mod 4096` is below [`NEAR`] or above
/// `4096 - NEAR`, [`REP_MIN`] otherwise.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
fn rep_from(src: usize, dst: usize) -> usize {
    let apart = dst.wrapping_sub(src) % 4096;
    if (NEAR..=4096 - NEAR).contains(&apart) {
        REP_MIN
    } else {
        REP_MIN_NEAR
    }
}

/// Copies of more than 256 bytes, chosen by CPU, length and the distance
/// between the buffers modulo 4096 (glibc's `memmove-vec-unaligned-erms`
/// decides by the same quantities; this is not its code). The length that
/// chooses is `whole`, that of the copy this is a part of (at least
/// `len`), so that a 16 MiB `read_at`, made in 64 KiB pieces, stores as a
/// 16 MiB copy should:
///
/// - with AVX (detected at run time; `is_x86_feature_detected!` caches the
///   answer in a static atomic after the first call): from
///   [`NON_TEMPORAL_MIN`] bytes [`avx_forward_nt`]; below it, in the 4 KiB
///   aliasing window ([`four_k_aliased`]) [`avx_backward`]; otherwise `rep
///   movsb` from [`rep_from`] ([`REP_MIN`], or [`REP_MIN_NEAR`] for
///   buffers at nearly the same offset modulo 4096) to below [`REP_MAX`],
///   [`avx_forward`] outside that range;
/// - without AVX: in the aliasing window [`sse_backward`], otherwise
///   `rep movsb`.
///
/// (Outside the window, a length in `rep_from..REP_MAX` takes `rep movsb`
/// before AVX is even asked about: either answer would choose it.)
///
/// Every path is plain loads and stores of at most 32 bytes, or `rep
/// movsb`, in `asm!` blocks (invariant 3).
///
/// # Safety
///
/// `len > 256`; `[src, src + len)` must be valid for reads and `[dst, dst +
/// len)` for writes, and the ranges must not overlap.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(never)]
unsafe fn large_copy(src: *const u8, dst: *mut u8, len: usize, whole: usize) {
    let path = large_path(src as usize, dst as usize, whole.max(len), || {
        std::arch::is_x86_feature_detected!("avx")
    });
    #[cfg(test)]
    copy_tests::LAST_PATH.with(|p| p.set(Some(path)));
    match path {
        // SAFETY: the caller's contract is `rep_movsb`'s.
        LargePath::RepMovsb => unsafe { rep_movsb(src, dst, len) },
        // SAFETY: `large_path` chooses this only when `avx` answered that
        // the CPU has AVX; `len > 256` and the ranges are the caller's.
        LargePath::AvxForwardNt => unsafe { avx_forward_nt(src, dst, len) },
        // SAFETY: as above.
        LargePath::AvxBackward => unsafe { avx_backward(src, dst, len) },
        // SAFETY: as above.
        LargePath::AvxForward => unsafe { avx_forward(src, dst, len) },
        // SAFETY: `len > 256` and the ranges are the caller's.
        LargePath::SseBackward => unsafe { sse_backward(src, dst, len) },
    }
}

/// The copy loops [`large_copy`] chooses from.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LargePath {
    /// [`rep_movsb`].
    RepMovsb,
    /// [`avx_forward`].
    AvxForward,
    /// [`avx_forward_nt`].
    AvxForwardNt,
    /// [`avx_backward`].
    AvxBackward,
    /// [`sse_backward`].
    SseBackward,
}

/// The loop for a copy from address `src` to address `dst` that is part
/// of one of `whole` bytes in all, as [`large_copy`] describes; `avx`
/// answers whether the CPU has AVX, and is asked only outside `rep
/// movsb`'s range.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
fn large_path(src: usize, dst: usize, whole: usize, avx: impl FnOnce() -> bool) -> LargePath {
    let aliased = four_k_aliased(src, dst);
    if uses_rep_movsb(src, dst, whole) {
        LargePath::RepMovsb
    } else if avx() {
        if whole >= NON_TEMPORAL_MIN {
            LargePath::AvxForwardNt
        } else if aliased {
            LargePath::AvxBackward
        } else {
            LargePath::AvxForward
        }
    } else if aliased {
        LargePath::SseBackward
    } else {
        LargePath::RepMovsb
    }
}

/// Forward copy of `len > 256` bytes in 32-byte AVX moves: the first 32 and
/// the last 128 source bytes are loaded first; the first 32 are stored
/// unaligned; then a loop copies 128 bytes per step (four unaligned loads,
/// then four stores aligned to 32 bytes in the destination) from the first
/// 32-byte boundary of the destination at offset `i0 = -dst mod 32` (0 to
/// 31, so it meets the first store) while `i < len - 128`; the 128 bytes
/// loaded first end the copy at `len - 128`, where the loop stopped or
/// beyond. Overlapping parts are written twice, each time with a value
/// read from the corresponding source byte (as in [`asm_copy`]).
///
/// # Safety
///
/// The CPU supports AVX; `len > 256`; `[src, src + len)` must be valid for
/// reads and `[dst, dst + len)` for writes, and the ranges must not overlap.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx")]
unsafe fn avx_forward(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: `len > 256`, so `end = len - 128 > 128 > 31 >= i0`: the loop
    // runs at least once, each step's accesses `[i, i + 128)` have `i <
    // end`, so they end before `len`; the first 32 and the last 128 bytes
    // lie inside both ranges (caller's contract). The stores at `dst + i`
    // are 32-byte aligned (`i = -dst mod 32` plus multiples of 128), as
    // `vmovdqa` needs. The block reads and writes memory (no `nomem` or
    // `readonly`), uses no stack, and writes the flags (`and`, `add`,
    // `cmp`). Every ymm register it writes is a declared output, and it
    // ends with `vzeroupper` (no penalty for later SSE code), which writes
    // the upper halves of all sixteen: the block names them explicitly
    // (ymm0 to ymm15, the ones it does not use as clobbers); AVX is
    // available (caller's contract, and `target_feature`). `i` and `end`
    // are `out` (not `lateout`) registers, apart from the inputs.
    unsafe {
        core::arch::asm!(
            "vmovdqu ymm0, ymmword ptr [{s}]",
            "vmovdqu ymm1, ymmword ptr [{s} + {n} - 128]",
            "vmovdqu ymm2, ymmword ptr [{s} + {n} - 96]",
            "vmovdqu ymm3, ymmword ptr [{s} + {n} - 64]",
            "vmovdqu ymm4, ymmword ptr [{s} + {n} - 32]",
            "vmovdqu ymmword ptr [{d}], ymm0",
            "mov {i}, {d}",
            "neg {i}",
            "and {i}, 31",
            "lea {end}, [{n} - 128]",
            "2:",
            "vmovdqu ymm5, ymmword ptr [{s} + {i}]",
            "vmovdqu ymm6, ymmword ptr [{s} + {i} + 32]",
            "vmovdqu ymm7, ymmword ptr [{s} + {i} + 64]",
            "vmovdqu ymm8, ymmword ptr [{s} + {i} + 96]",
            "vmovdqa ymmword ptr [{d} + {i}], ymm5",
            "vmovdqa ymmword ptr [{d} + {i} + 32], ymm6",
            "vmovdqa ymmword ptr [{d} + {i} + 64], ymm7",
            "vmovdqa ymmword ptr [{d} + {i} + 96], ymm8",
            "add {i}, 128",
            "cmp {i}, {end}",
            "jb 2b",
            "vmovdqu ymmword ptr [{d} + {n} - 128], ymm1",
            "vmovdqu ymmword ptr [{d} + {n} - 96], ymm2",
            "vmovdqu ymmword ptr [{d} + {n} - 64], ymm3",
            "vmovdqu ymmword ptr [{d} + {n} - 32], ymm4",
            "vzeroupper",
            s = in(reg) src,
            d = in(reg) dst,
            n = in(reg) len,
            i = out(reg) _,
            end = out(reg) _,
            out("ymm0") _,
            out("ymm1") _,
            out("ymm2") _,
            out("ymm3") _,
            out("ymm4") _,
            out("ymm5") _,
            out("ymm6") _,
            out("ymm7") _,
            out("ymm8") _,
            // Not used above, but `vzeroupper` writes their upper halves.
            out("ymm9") _,
            out("ymm10") _,
            out("ymm11") _,
            out("ymm12") _,
            out("ymm13") _,
            out("ymm14") _,
            out("ymm15") _,
            options(nostack),
        );
    }
}

/// As [`avx_forward`], with non-temporal stores (`vmovntdq`, past the
/// caches, weakly ordered) in the loop, and an `sfence` at the end, so that
/// every store of the copy is ordered before any later store of this thread
/// (such as the `Release` store that publishes the data: a reader that
/// acquires it sees the copied bytes).
///
/// # Safety
///
/// As for [`avx_forward`].
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx")]
unsafe fn avx_forward_nt(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: as for `avx_forward`, whose accesses these are (`vmovntdq`
    // also needs 32-byte alignment, which the stores at `dst + i` have).
    // Non-temporal stores are still plain stores to each byte (single-copy
    // atomic per byte, invariant 3), only weakly ordered: the final
    // `sfence` orders all of them before every later store, so a later
    // `Release` store publishes them as it does ordinary stores.
    unsafe {
        core::arch::asm!(
            "vmovdqu ymm0, ymmword ptr [{s}]",
            "vmovdqu ymm1, ymmword ptr [{s} + {n} - 128]",
            "vmovdqu ymm2, ymmword ptr [{s} + {n} - 96]",
            "vmovdqu ymm3, ymmword ptr [{s} + {n} - 64]",
            "vmovdqu ymm4, ymmword ptr [{s} + {n} - 32]",
            "vmovdqu ymmword ptr [{d}], ymm0",
            "mov {i}, {d}",
            "neg {i}",
            "and {i}, 31",
            "lea {end}, [{n} - 128]",
            "2:",
            "vmovdqu ymm5, ymmword ptr [{s} + {i}]",
            "vmovdqu ymm6, ymmword ptr [{s} + {i} + 32]",
            "vmovdqu ymm7, ymmword ptr [{s} + {i} + 64]",
            "vmovdqu ymm8, ymmword ptr [{s} + {i} + 96]",
            "vmovntdq ymmword ptr [{d} + {i}], ymm5",
            "vmovntdq ymmword ptr [{d} + {i} + 32], ymm6",
            "vmovntdq ymmword ptr [{d} + {i} + 64], ymm7",
            "vmovntdq ymmword ptr [{d} + {i} + 96], ymm8",
            "add {i}, 128",
            "cmp {i}, {end}",
            "jb 2b",
            "vmovdqu ymmword ptr [{d} + {n} - 128], ymm1",
            "vmovdqu ymmword ptr [{d} + {n} - 96], ymm2",
            "vmovdqu ymmword ptr [{d} + {n} - 64], ymm3",
            "vmovdqu ymmword ptr [{d} + {n} - 32], ymm4",
            "sfence",
            "vzeroupper",
            s = in(reg) src,
            d = in(reg) dst,
            n = in(reg) len,
            i = out(reg) _,
            end = out(reg) _,
            out("ymm0") _,
            out("ymm1") _,
            out("ymm2") _,
            out("ymm3") _,
            out("ymm4") _,
            out("ymm5") _,
            out("ymm6") _,
            out("ymm7") _,
            out("ymm8") _,
            // Not used above, but `vzeroupper` writes their upper halves.
            out("ymm9") _,
            out("ymm10") _,
            out("ymm11") _,
            out("ymm12") _,
            out("ymm13") _,
            out("ymm14") _,
            out("ymm15") _,
            options(nostack),
        );
    }
}

/// Backward copy of `len > 256` bytes in 32-byte AVX moves, for the 4 KiB
/// aliasing window (its loads run below the addresses of the stores just
/// made, so they never look dependent on them): the last 32 and the first
/// 128 source bytes are loaded first; the last 32 are stored unaligned;
/// then a loop copies the 128 bytes below `i` per step (four unaligned
/// loads, four stores aligned to 32 bytes), starting at `i = len - ((dst +
/// len) mod 32)` (the last 32-byte boundary of the destination, at most
/// 31 bytes before its end, inside the first store) while `i > 128`; the
/// 128 bytes loaded first end the copy at offset 0.
///
/// # Safety
///
/// As for [`avx_forward`].
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx")]
unsafe fn avx_backward(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: `len > 256`, so the start `i = len - ((dst + len) mod 32) >
    // 224 > 128`; the loop runs at least once, and each step's accesses
    // `[i - 128, i)` have `i > 128` and `i <= len`, so they lie inside both
    // ranges (caller's contract), as do the last 32 and the first 128
    // bytes. `dst + i` stays 32-byte aligned (`vmovdqa`). Declared as in
    // `avx_forward` (`and`, `sub`, `cmp` write the flags).
    unsafe {
        core::arch::asm!(
            "vmovdqu ymm0, ymmword ptr [{s} + {n} - 32]",
            "vmovdqu ymm1, ymmword ptr [{s}]",
            "vmovdqu ymm2, ymmword ptr [{s} + 32]",
            "vmovdqu ymm3, ymmword ptr [{s} + 64]",
            "vmovdqu ymm4, ymmword ptr [{s} + 96]",
            "vmovdqu ymmword ptr [{d} + {n} - 32], ymm0",
            "lea {i}, [{d} + {n}]",
            "and {i}, -32",
            "sub {i}, {d}",
            "2:",
            "vmovdqu ymm5, ymmword ptr [{s} + {i} - 32]",
            "vmovdqu ymm6, ymmword ptr [{s} + {i} - 64]",
            "vmovdqu ymm7, ymmword ptr [{s} + {i} - 96]",
            "vmovdqu ymm8, ymmword ptr [{s} + {i} - 128]",
            "vmovdqa ymmword ptr [{d} + {i} - 32], ymm5",
            "vmovdqa ymmword ptr [{d} + {i} - 64], ymm6",
            "vmovdqa ymmword ptr [{d} + {i} - 96], ymm7",
            "vmovdqa ymmword ptr [{d} + {i} - 128], ymm8",
            "sub {i}, 128",
            "cmp {i}, 128",
            "ja 2b",
            "vmovdqu ymmword ptr [{d}], ymm1",
            "vmovdqu ymmword ptr [{d} + 32], ymm2",
            "vmovdqu ymmword ptr [{d} + 64], ymm3",
            "vmovdqu ymmword ptr [{d} + 96], ymm4",
            "vzeroupper",
            s = in(reg) src,
            d = in(reg) dst,
            n = in(reg) len,
            i = out(reg) _,
            out("ymm0") _,
            out("ymm1") _,
            out("ymm2") _,
            out("ymm3") _,
            out("ymm4") _,
            out("ymm5") _,
            out("ymm6") _,
            out("ymm7") _,
            out("ymm8") _,
            // Not used above, but `vzeroupper` writes their upper halves.
            out("ymm9") _,
            out("ymm10") _,
            out("ymm11") _,
            out("ymm12") _,
            out("ymm13") _,
            out("ymm14") _,
            out("ymm15") _,
            options(nostack),
        );
    }
}

/// As [`avx_backward`] with 16-byte SSE2 moves (every x86_64 CPU has
/// SSE2): 64 bytes per step, stores aligned to 16 bytes, the last 16 and
/// the first 64 bytes loaded first. For CPUs without AVX, in the 4 KiB
/// aliasing window, where `rep movsb` is slow.
///
/// # Safety
///
/// `len > 256`; `[src, src + len)` must be valid for reads and `[dst, dst +
/// len)` for writes, and the ranges must not overlap.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(never)]
unsafe fn sse_backward(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: `len > 256`, so the start `i = len - ((dst + len) mod 16) >
    // 240 > 64`; the loop runs at least once, each step's accesses `[i -
    // 64, i)` have `i > 64` and `i <= len`, so they lie inside both ranges
    // (caller's contract), as do the last 16 and the first 64 bytes. `dst +
    // i` stays 16-byte aligned (`movaps`). The block reads and writes
    // memory, uses no stack, writes the flags (`and`, `sub`, `cmp`); every
    // xmm register it writes is a declared output; `i` is an `out` (not
    // `lateout`) register.
    unsafe {
        core::arch::asm!(
            "movups {t}, xmmword ptr [{s} + {n} - 16]",
            "movups {h0}, xmmword ptr [{s}]",
            "movups {h1}, xmmword ptr [{s} + 16]",
            "movups {h2}, xmmword ptr [{s} + 32]",
            "movups {h3}, xmmword ptr [{s} + 48]",
            "movups xmmword ptr [{d} + {n} - 16], {t}",
            "lea {i}, [{d} + {n}]",
            "and {i}, -16",
            "sub {i}, {d}",
            "2:",
            "movups {a}, xmmword ptr [{s} + {i} - 16]",
            "movups {b}, xmmword ptr [{s} + {i} - 32]",
            "movups {c}, xmmword ptr [{s} + {i} - 48]",
            "movups {e}, xmmword ptr [{s} + {i} - 64]",
            "movaps xmmword ptr [{d} + {i} - 16], {a}",
            "movaps xmmword ptr [{d} + {i} - 32], {b}",
            "movaps xmmword ptr [{d} + {i} - 48], {c}",
            "movaps xmmword ptr [{d} + {i} - 64], {e}",
            "sub {i}, 64",
            "cmp {i}, 64",
            "ja 2b",
            "movups xmmword ptr [{d}], {h0}",
            "movups xmmword ptr [{d} + 16], {h1}",
            "movups xmmword ptr [{d} + 32], {h2}",
            "movups xmmword ptr [{d} + 48], {h3}",
            s = in(reg) src,
            d = in(reg) dst,
            n = in(reg) len,
            i = out(reg) _,
            t = out(xmm_reg) _,
            h0 = out(xmm_reg) _,
            h1 = out(xmm_reg) _,
            h2 = out(xmm_reg) _,
            h3 = out(xmm_reg) _,
            a = out(xmm_reg) _,
            b = out(xmm_reg) _,
            c = out(xmm_reg) _,
            e = out(xmm_reg) _,
            options(nostack),
        );
    }
}

/// 32-bit x86 copies with `rep movsb` at every length.
///
/// # Safety
///
/// As for `rep_movsb`.
#[cfg(all(target_arch = "x86", not(miri)))]
#[inline(always)]
unsafe fn asm_copy(src: *const u8, dst: *mut u8, len: usize, _whole: usize) {
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

/// The copy primitives over heap memory, so that they also run under Miri
/// (the portable per-byte atomic copy there, the asm paths elsewhere on
/// x86).
#[cfg(test)]
mod copy_tests {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    use super::{
        avx_backward, avx_forward, avx_forward_nt, four_k_aliased, large_path, rep_from, rep_movsb,
        sse_backward, LargePath, NON_TEMPORAL_MIN, REP_MAX,
    };
    use std::sync::atomic::{AtomicU8, Ordering};

    #[cfg(all(target_arch = "x86_64", not(miri)))]
    std::thread_local! {
        /// The loop the last copy of more than 256 bytes on this thread
        /// took (set by `asm_copy` and `large_copy`).
        pub(super) static LAST_PATH: std::cell::Cell<Option<LargePath>> =
            const { std::cell::Cell::new(None) };
    }

    /// A copy out in one part (`whole` is the length).
    ///
    /// # Safety
    ///
    /// As for `super::copy_from_shared`.
    unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8]) {
        let whole = dst.len();
        // SAFETY: the caller's contract.
        unsafe { super::copy_from_shared(src, dst, whole) }
    }

    /// A copy in, in one part.
    ///
    /// # Safety
    ///
    /// As for `super::copy_to_shared`.
    unsafe fn copy_to_shared(src: &[u8], dst: *mut u8) {
        // SAFETY: the caller's contract.
        unsafe { super::copy_to_shared(src, dst, src.len()) }
    }

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
    fn copies_are_exact_for_every_length_to_300_at_every_offset_to_8() {
        // Every asm path and each boundary between them (16, 32, 64, 256),
        // the loop at every remainder; Miri (one per-byte path, and slow)
        // stops at 70.
        let max = if cfg!(miri) { 70 } else { 300 };
        for len in 0..=max {
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

    /// Copies `len` bytes from `src[s..]` to `dst[d..]`-style buffers in
    /// both directions, with the source at misalignment `s` and the
    /// destination at `d` (from a 16-byte boundary), and checks every byte
    /// of the destination: the copied range holds the data (it held the
    /// data's complement before, so a dropped store shows), the 16 guard
    /// bytes on each side are untouched (so an overwrite shows), and the
    /// source is unchanged.
    fn misaligned_round_trip(len: usize, s: usize, d: usize) {
        const GUARD: u8 = 0xEE;
        const AROUND: u8 = 0x11;
        // Data bytes in 0x20..0xE0: never a guard or a source neighbour.
        let data: Vec<u8> = (0..len)
            .map(|i| u8::try_from(0x20 + (i * 37 + len + 3 * s + d) % 0xC0).unwrap())
            .collect();
        let size = len + 64;
        // Source: AROUND everywhere, the data at misalignment `s`.
        let mut src = vec![AROUND; size];
        let s0 = src.as_ptr().align_offset(16) + 16 + s;
        src[s0..s0 + len].copy_from_slice(&data);
        let src_before = src.clone();
        // Destination: GUARD around, the data's complement inside.
        let fresh_dst = |buf: &mut Vec<u8>| -> usize {
            buf.clear();
            buf.resize(size, GUARD);
            let d0 = buf.as_ptr().align_offset(16) + 16 + d;
            for (b, v) in buf[d0..d0 + len].iter_mut().zip(&data) {
                *b = !v;
            }
            d0
        };
        let check = |buf: &[u8], d0: usize, way: &str| {
            let at = format!("{way}: len {len}, src +{s}, dst +{d}");
            assert!(buf[..d0].iter().all(|&b| b == GUARD), "before, {at}");
            assert_eq!(&buf[d0..d0 + len], &data[..], "copied, {at}");
            assert!(buf[d0 + len..].iter().all(|&b| b == GUARD), "after, {at}");
        };

        let mut dst = Vec::new();
        let d0 = fresh_dst(&mut dst);
        // SAFETY: `[dst + d0, + len)` lies inside `dst` (`d0 + len <=
        // size - 16`), valid for reads and writes; `src` is another
        // allocation.
        unsafe { copy_to_shared(&src[s0..s0 + len], dst.as_mut_ptr().wrapping_add(d0)) };
        check(&dst, d0, "copy_to_shared");

        let d0 = fresh_dst(&mut dst);
        let from = src.as_ptr().wrapping_add(s0);
        // SAFETY: `[from, from + len)` lies inside `src`, valid for reads
        // and writes (a Vec), and does not overlap `dst`.
        unsafe { copy_from_shared(from, &mut dst[d0..d0 + len]) };
        check(&dst, d0, "copy_from_shared");
        assert_eq!(src, src_before, "the source changed: len {len}, +{s}, +{d}");
    }

    #[test]
    fn copies_are_exact_for_every_length_to_600_at_every_source_and_destination_misalignment() {
        // Every length through each asm path and past `rep movsb`'s start
        // (256) to 600, at each of the 16 x 16 source and destination
        // misalignments from a 16-byte boundary. Miri (one per-byte path)
        // runs a corner of it.
        let (max, mis) = if cfg!(miri) { (16, 2) } else { (600, 16) };
        for len in 0..=max {
            for s in 0..mis {
                for d in 0..mis {
                    misaligned_round_trip(len, s, d);
                }
            }
        }
    }

    /// The `options(...)` of every `asm!` block of this file, in order,
    /// with the function it is in: the claims the compiler may act on.
    fn asm_options(source: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let mut rest = source;
        let mut function = String::new();
        while let Some(at) = rest.find("core::arch::asm!(") {
            // The last top-level `unsafe fn NAME(` before the block names
            // its function.
            if let Some(f) = rest[..at].rfind("\nunsafe fn ") {
                let name = &rest[f + "\nunsafe fn ".len()..];
                function = name[..name.find('(').unwrap()].to_string();
            }
            let block = &rest[at..];
            let end = block.find(");").unwrap();
            let options = block[..end]
                .find("options(")
                .map(|o| {
                    let o = &block[o + "options(".len()..end];
                    o[..o.find(')').unwrap()].to_string()
                })
                .unwrap_or_default();
            found.push((function.clone(), options));
            rest = &block[end..];
        }
        found
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "a check of this file's text: nothing for Miri to judge"
    )]
    fn every_asm_block_claims_exactly_the_audited_options() {
        // A wrong claim in `options(...)` (`nomem`, `readonly` or `pure` on
        // a block that writes, `preserves_flags` on one that writes the
        // flags, `nostack` dropped) changes what the compiler may assume,
        // and no behaviour test need notice; cargo-mutants never mutates
        // `unsafe fn`s. So the text of this file is held to the audited
        // list: a change here must come with a new audit of that block.
        const READ: &str = "nostack, preserves_flags, readonly";
        const COPY: &str = "nostack, preserves_flags";
        let expected: Vec<(&str, &str)> = [
            // asm_read, x86_64: loads only (33..64, 17..32, 8..16, 4..7, 1..3).
            [("asm_read", READ); 5].as_slice(),
            // asm_copy, x86_64: the 65..256 loop writes the flags (xor,
            // add, cmp), then 33..64, 16..32, 8..15, 4..7, 1..3.
            &[("asm_copy", "nostack")],
            &[("asm_copy", COPY); 5],
            // The copies above 256 bytes (large_copy's choices): loops
            // that write the flags (`and`, `add`/`sub`, `cmp`).
            &[("avx_forward", "nostack")],
            &[("avx_forward_nt", "nostack")],
            &[("avx_backward", "nostack")],
            &[("sse_backward", "nostack")],
            // rep_movsb on x86_64 and on x86.
            &[("rep_movsb", COPY); 2],
        ]
        .concat();
        let source = include_str!("copy.rs");
        // The blocks above this test module (which names them too).
        let source = &source[..source.find("mod copy_tests {").unwrap()];
        let found = asm_options(source);
        let found: Vec<(&str, &str)> = found
            .iter()
            .map(|(f, o)| (f.as_str(), o.as_str()))
            .collect();
        assert_eq!(found, expected);
    }

    /// The bytes of `[p, p + n)` of `buf`, with `n` guard bytes checked on
    /// each side: panics naming `at` unless the range holds `data` and the
    /// 16 bytes before and after it hold `guard`.
    fn check_guarded(buf: &[u8], p: usize, data: &[u8], guard: u8, at: &str) {
        let n = data.len();
        assert!(buf[p - 16..p].iter().all(|&b| b == guard), "before, {at}");
        assert!(buf[p..p + n] == data[..], "copied, {at}");
        assert!(
            buf[p + n..p + n + 16].iter().all(|&b| b == guard),
            "after, {at}"
        );
    }

    /// Copies `len` bytes in both directions between two buffers placed so
    /// that the destination starts `k` bytes past the source modulo 4096
    /// (`k` may be 4096 or more: then also a whole page past), and checks
    /// every byte of the destination and 16 guard bytes on each side, and
    /// that the source did not change.
    fn distance_round_trip(len: usize, k: usize) {
        const GUARD: u8 = 0xEE;
        const STALE: u8 = 0x01;
        // Data bytes in 0x20..0xE0: never a guard or a stale byte.
        let data: Vec<u8> = (0..len)
            .map(|i| u8::try_from(0x20 + (i * 37 + i / 256 + k) % 0xC0).unwrap())
            .collect();
        let size = len + 2 * 4096 + 64;
        let mut src_buf = vec![GUARD; size];
        let mut dst_buf = vec![GUARD; size];
        for way in 0..2 {
            src_buf.fill(GUARD);
            dst_buf.fill(GUARD);
            // The source 16 bytes past a 4096-byte boundary plus a little,
            // the destination `k` past it modulo 4096.
            let s0 = src_buf.as_ptr().align_offset(4096) + 16 + 5 * way;
            let src_addr = src_buf.as_ptr() as usize + s0;
            let dst_base = dst_buf.as_ptr() as usize + 16;
            let d0 = 16 + (src_addr + k).wrapping_sub(dst_base) % 4096;
            assert_eq!(
                (dst_buf.as_ptr() as usize + d0).wrapping_sub(src_addr) % 4096,
                k % 4096
            );
            src_buf[s0..s0 + len].copy_from_slice(&data);
            dst_buf[d0..d0 + len].fill(STALE);
            let at = format!("len {len}, distance {k}");
            if way == 0 {
                // SAFETY: `[d0, d0 + len)` lies inside `dst_buf` (`d0 <
                // 4096 + 16`, `size` has room), valid for reads and writes;
                // the source is another allocation.
                unsafe {
                    copy_to_shared(
                        &src_buf[s0..s0 + len],
                        dst_buf.as_mut_ptr().wrapping_add(d0),
                    );
                }
                check_guarded(&dst_buf, d0, &data, GUARD, &format!("to_shared, {at}"));
            } else {
                let from = src_buf.as_ptr().wrapping_add(s0);
                // SAFETY: `[from, from + len)` lies inside `src_buf`, valid
                // for reads and writes (a Vec), not `dst_buf`.
                unsafe { copy_from_shared(from, &mut dst_buf[d0..d0 + len]) };
                check_guarded(&dst_buf, d0, &data, GUARD, &format!("from_shared, {at}"));
            }
            check_guarded(&src_buf, s0, &data, GUARD, &format!("source, {at}"));
        }
    }

    #[test]
    fn copies_are_exact_at_every_destination_distance_to_64_past_the_source_modulo_4096() {
        // The 4 KiB aliasing choice of `large_copy`: the destination 0 to
        // 64 bytes past the source modulo 4096 (the window is 1..=63) and
        // a page more, 250 to 262 past, and just before the source (4032
        // to 4095), at lengths through each path and each length boundary
        // of the choice: just past the short copies (257), a few pages,
        // around `REP_MIN_NEAR` (16 KiB), `REP_MIN` (32 KiB) and `REP_MAX`
        // (1 MiB), and past the
        // non-temporal threshold (below). Miri (the per-byte path) runs a
        // corner.
        let (lens, ks): (Vec<usize>, Vec<usize>) = if cfg!(miri) {
            (vec![257, 300], vec![0, 1, 16, 63, 64, 4095, 4096 + 16])
        } else {
            let ks = (0..=64)
                .chain(250..=262)
                .chain(4032..4096)
                .chain([4096, 4096 + 1, 4096 + 16, 3 * 4096 + 63])
                .collect();
            let k = 1 << 10;
            let lens = vec![
                257,
                258,
                300,
                4 * k + 3,
                16 * k - 1,
                16 * k,
                32 * k - 1,
                32 * k,
                64 * k + 17,
            ];
            (lens, ks)
        };
        for &len in &lens {
            for &k in &ks {
                distance_round_trip(len, k);
            }
        }
        if !cfg!(miri) {
            // Around 1 MiB and the non-temporal threshold (16 MiB), at a
            // few distances (each copy is 1 MiB and more).
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            for len in [
                REP_MAX - 1,
                REP_MAX,
                REP_MAX + 5,
                NON_TEMPORAL_MIN - 1,
                NON_TEMPORAL_MIN,
                NON_TEMPORAL_MIN + 67,
            ] {
                let ks: &[usize] = if len >= NON_TEMPORAL_MIN - 1 {
                    &[0, 16, 64, 4080]
                } else {
                    &[0, 1, 16, 63, 64, 255, 256, 2048, 4080, 4095]
                };
                for &k in ks {
                    distance_round_trip(len, k);
                }
            }
        }
    }

    #[test]
    fn a_copy_in_64_kib_parts_with_the_whole_length_given_is_exact() {
        // As `Region::read_at` and `write_at` copy more than 64 KiB: each
        // part is moved as the whole length chooses (past the
        // non-temporal threshold here, and past 1 MiB), at distances in
        // and out of the aliasing window, with a last short part. Miri
        // runs 3 parts of 100 bytes of a "whole" of 32 MiB.
        let (part, lens) = if cfg!(miri) {
            (100, vec![250])
        } else {
            (64 << 10, vec![(1 << 20) + 300, (16 << 20) + 5 * 1024 + 7])
        };
        const GUARD: u8 = 0xEE;
        for len in lens {
            let whole = if cfg!(miri) { 32 << 20 } else { len };
            for k in [0, 16, 64, 2048, 4080] {
                let data: Vec<u8> = (0..len)
                    .map(|i| u8::try_from(0x20 + (i * 13 + i / 4096 + k) % 0xC0).unwrap())
                    .collect();
                let mut src = vec![GUARD; len + 8192];
                let mut dst = vec![GUARD; len + 8192];
                let s0 = src.as_ptr().align_offset(4096) + 16;
                let src_addr = src.as_ptr() as usize + s0;
                let d0 = 16 + (src_addr + k).wrapping_sub(dst.as_ptr() as usize + 16) % 4096;
                src[s0..s0 + len].copy_from_slice(&data);
                for way in ["to_shared", "from_shared"] {
                    dst.fill(GUARD);
                    dst[d0..d0 + len].fill(0x01);
                    let mut done = 0;
                    while done < len {
                        let n = part.min(len - done);
                        let to = dst.as_mut_ptr().wrapping_add(d0 + done);
                        if way == "to_shared" {
                            let from = &src[s0 + done..s0 + done + n];
                            // SAFETY: `[to, to + n)` lies inside `dst`
                            // (`d0 + len <= len + 4112 < dst.len()`), valid
                            // for reads and writes, and `src` is another
                            // allocation.
                            unsafe { super::copy_to_shared(from, to, whole) };
                        } else {
                            // The source through the Vec's own pointer
                            // (valid for reads and writes, as the portable
                            // copy's atomic loads need).
                            let from = src.as_mut_ptr().wrapping_add(s0 + done);
                            // SAFETY: `[to, to + n)` lies inside `dst` (as
                            // above), which nothing else borrows now.
                            let to = unsafe { std::slice::from_raw_parts_mut(to, n) };
                            // SAFETY: `[from, from + n)` lies inside `src`,
                            // valid for reads and writes, another
                            // allocation than `to`'s.
                            unsafe { super::copy_from_shared(from, to, whole) };
                        }
                        done += n;
                    }
                    let at = format!("{way}: len {len} in parts of {part}, distance {k}");
                    check_guarded(&dst, d0, &data, GUARD, &at);
                }
            }
        }
    }

    /// One of `large_copy`'s paths: `(src, dst, len)`.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    type CopyPath = unsafe fn(*const u8, *mut u8, usize);

    /// Runs the large-copy path `copy` from `src` at misalignment `s` to a
    /// destination at misalignment `d` (from a 32-byte boundary), and checks
    /// every byte of the destination and 16 guard bytes each side.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    fn path_round_trip(name: &str, copy: CopyPath, len: usize, s: usize, d: usize) {
        const GUARD: u8 = 0xEE;
        let data: Vec<u8> = (0..len)
            .map(|i| u8::try_from(0x20 + (i * 37 + len + 3 * s + d) % 0xC0).unwrap())
            .collect();
        let size = len + 96;
        let mut src = vec![GUARD; size];
        let s0 = src.as_ptr().align_offset(32) + 16 + s;
        src[s0..s0 + len].copy_from_slice(&data);
        let mut dst = vec![GUARD; size];
        let d0 = dst.as_ptr().align_offset(32) + 32 + d;
        dst[d0..d0 + len].fill(0x01);
        // SAFETY: both ranges lie inside their buffers (`s0, d0 < 64` with
        // 96 bytes of room), which are distinct allocations; `len > 256`.
        // `copy` is one of the paths below, whose further requirement
        // (AVX) the caller checked.
        unsafe {
            copy(
                src.as_ptr().wrapping_add(s0),
                dst.as_mut_ptr().wrapping_add(d0),
                len,
            )
        };
        let at = format!("{name}: len {len}, src +{s}, dst +{d}");
        check_guarded(&dst, d0, &data, GUARD, &at);
        check_guarded(&src, s0, &data, GUARD, &format!("source, {at}"));
    }

    #[test]
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    fn every_large_copy_path_is_exact_for_every_length_to_700_at_every_misalignment() {
        // Each path of `large_copy` called directly, whatever this CPU
        // would choose: every length from 257 (each loop's first length)
        // to 700 (several steps, every remainder), at source and
        // destination misalignments 0..32 from a 32-byte boundary (every
        // second one, both ends included) plus 1..8.
        let mut paths: Vec<(&str, CopyPath)> =
            vec![("sse_backward", sse_backward), ("rep_movsb", rep_movsb)];
        if std::arch::is_x86_feature_detected!("avx") {
            paths.push(("avx_forward", avx_forward));
            paths.push(("avx_forward_nt", avx_forward_nt));
            paths.push(("avx_backward", avx_backward));
        } else {
            eprintln!("this CPU has no AVX: the AVX paths are not run here");
        }
        let mis: Vec<usize> = (0..32).step_by(2).chain([1, 3, 5, 7, 31]).collect();
        for &(name, copy) in &paths {
            for len in 257..=700 {
                for &s in &mis {
                    for &d in &mis {
                        path_round_trip(name, copy, len, s, d);
                    }
                }
            }
        }
    }

    #[test]
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    fn the_aliasing_choice_is_the_destination_1_to_63_bytes_past_the_source_modulo_4096() {
        // (src, dst, aliased): distance 0 out, 1 and 63 in, 64 and 4095
        // out; a page and 16 more in; the destination 16 before the source
        // (4080 modulo 4096) out, a page before it and 32 past that in
        // (only the distance modulo 4096 counts); across the top of the
        // address space.
        let cases = [
            (0x1000, 0x1000, false),
            (0x1000, 0x1001, true),
            (0x1000, 0x103f, true),
            (0x1000, 0x1040, false),
            (0x1000, 0x1fff, false),
            (0x1000, 0x2010, true),
            (0x7000, 0x3010, true),
            (0x1000, 0x9000, false),
            (0x1010, 0x1000, false),
            (0x2000, 0x1020, true),
            (0x2000, 0x1100, false),
            (usize::MAX - 7, 8, true),
            (8, usize::MAX - 7, false),
        ];
        for (src, dst, aliased) in cases {
            assert_eq!(four_k_aliased(src, dst), aliased, "{src:#x} -> {dst:#x}");
        }
    }

    #[test]
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    fn rep_movsb_starts_at_16_kib_for_buffers_within_128_of_the_same_offset_and_at_32_kib_elsewhere(
    ) {
        // (src, dst, from): distance 0, 127, 4096 - 127 and a page more
        // are near; 128, 2048 and 4096 - 128 are not.
        let cases = [
            (0x1000, 0x1000, 16 << 10),
            (0x1000, 0x107f, 16 << 10),
            (0x1000, 0x1080, 32 << 10),
            (0x1000, 0x1800, 32 << 10),
            (0x1080, 0x1000, 32 << 10),
            (0x107f, 0x1000, 16 << 10),
            (0x1000, 0x3010, 16 << 10),
            (usize::MAX - 7, 8, 16 << 10),
        ];
        for (src, dst, from) in cases {
            assert_eq!(rep_from(src, dst), from, "{src:#x} -> {dst:#x}");
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "a check of this file's text: nothing for Miri to judge"
    )]
    fn every_block_with_vzeroupper_declares_every_vector_register_clobbered() {
        // `vzeroupper` zeroes the upper halves of ymm0..ymm15 (and of
        // zmm0..zmm15 with AVX-512), not only of the registers a block
        // names: a register the block does not declare must leave it as
        // it came in (`asm.rules.reg-not-output`). So each such block
        // declares ymm0 to ymm15 as outputs (an explicit register covers
        // its xmm and zmm aliases too); a value the compiler kept in
        // another vector register across the
        // block (possible once an AVX function is inlined, as with
        // `-C target-cpu=native`) would otherwise lose its upper half.
        let source = include_str!("copy.rs");
        let source = &source[..source.find("mod copy_tests {").unwrap()];
        let mut blocks = 0;
        for block in source.split("core::arch::asm!(").skip(1) {
            let block = &block[..block.find(");").unwrap()];
            if block.contains("\"vzeroupper\"") {
                blocks += 1;
                for k in 0..16 {
                    assert!(
                        block.contains(&format!("out(\"ymm{k}\") _")),
                        "a vzeroupper block that does not declare ymm{k}: {}",
                        &block[..block.find('\n').unwrap_or(block.len())]
                    );
                }
            }
        }
        assert_eq!(blocks, 3, "the blocks that end with vzeroupper");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "a check of this file's text: nothing for Miri to judge"
    )]
    fn every_non_temporal_store_is_fenced_in_its_own_block() {
        // Non-temporal stores are weakly ordered: a later Release store
        // publishes them only after an `sfence`. No test can see a missing
        // fence on one core, so the text is checked: every block with a
        // `movnt` store ends its stores with `sfence`, after its last one.
        let source = include_str!("copy.rs");
        let source = &source[..source.find("mod copy_tests {").unwrap()];
        let mut blocks = 0;
        for block in source.split("core::arch::asm!(").skip(1) {
            let block = &block[..block.find(");").unwrap()];
            if let Some(last) = block.rfind("movnt") {
                blocks += 1;
                let fence = block
                    .rfind("\"sfence\"")
                    .expect("a movnt block without sfence");
                assert!(fence > last, "sfence before the last movnt");
                assert!(
                    !block[fence..].contains("ptr ["),
                    "a store after the sfence"
                );
            }
        }
        assert_eq!(blocks, 1, "the blocks with non-temporal stores");
    }

    #[test]
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    fn the_large_copy_loop_is_chosen_by_the_whole_length_the_distance_modulo_4096_and_avx() {
        use LargePath::{
            AvxBackward as Back, AvxForward as Fwd, AvxForwardNt as Nt, RepMovsb as Rep,
            SseBackward as Sse,
        };
        const K: usize = 1 << 10;
        const M: usize = 1 << 20;
        // Distance 2048 (far), 0 and 4096 - 127 (near), 1 and 63 (in the
        // aliasing window) modulo 4096.
        let far = (0x1000, 0x1800);
        let near = (0x1000, 0x1000);
        let near_below = (0x107f, 0x1000);
        let aliased = (0x1000, 0x1001);
        let edge = (0x1000, 0x103f);
        // (buffers, whole, the loop with AVX, without)
        let cases = [
            (far, 257, Fwd, Rep),
            (far, 32 * K - 1, Fwd, Rep),
            (far, 32 * K, Rep, Rep),
            (far, M - 1, Rep, Rep),
            (far, M, Fwd, Rep),
            (far, 16 * M - 1, Fwd, Rep),
            (far, 16 * M, Nt, Rep),
            (far, usize::MAX, Nt, Rep),
            (near, 16 * K - 1, Fwd, Rep),
            (near, 16 * K, Rep, Rep),
            (near_below, 16 * K, Rep, Rep),
            (near, M, Fwd, Rep),
            (near, 16 * M, Nt, Rep),
            (aliased, 257, Back, Sse),
            (aliased, 32 * K, Back, Sse),
            (edge, M - 1, Back, Sse),
            (aliased, 16 * M - 1, Back, Sse),
            (aliased, 16 * M, Nt, Sse),
        ];
        for ((src, dst), whole, with, without) in cases {
            let at = format!("{src:#x} -> {dst:#x}, {whole} bytes");
            assert_eq!(large_path(src, dst, whole, || true), with, "{at} with AVX");
            assert_eq!(
                large_path(src, dst, whole, || false),
                without,
                "{at} without AVX"
            );
        }
        // In `rep movsb`'s range the CPU is not asked about.
        let never = || -> bool { panic!("asked about AVX") };
        assert_eq!(large_path(0x1000, 0x1800, 64 * K, never), Rep);
    }

    #[test]
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    fn a_part_of_a_longer_copy_takes_the_loop_of_the_whole_length_and_is_exact() {
        use LargePath::{
            AvxBackward as Back, AvxForward as Fwd, AvxForwardNt as Nt, RepMovsb as Rep,
            SseBackward as Sse,
        };
        const PART: usize = 64 << 10;
        let avx = std::arch::is_x86_feature_detected!("avx");
        let src = pattern(9, PART + 8192);
        let mut dst = vec![0u8; PART + 8192];
        // (distance modulo 4096, whole, the loop with AVX, without): a
        // whole below the part is the part.
        let cases = [
            (2048, PART, Rep, Rep),
            (2048, 0, Rep, Rep),
            (2048, REP_MAX, Fwd, Rep),
            (2048, NON_TEMPORAL_MIN, Nt, Rep),
            (1, PART, Back, Sse),
            (1, NON_TEMPORAL_MIN, Nt, Sse),
        ];
        for (k, whole, with, without) in cases {
            let s0 = src.as_ptr().align_offset(4096) + 16;
            let src_addr = src.as_ptr() as usize + s0;
            let d0 = 16 + (src_addr + k).wrapping_sub(dst.as_ptr() as usize + 16) % 4096;
            dst.fill(0);
            LAST_PATH.with(|p| p.set(None));
            let d = dst.as_mut_ptr().wrapping_add(d0);
            // SAFETY: `[d0, d0 + PART)` lies in `dst` (`d0 < 4096 + 16`),
            // which nothing else accesses, and does not overlap `src`.
            unsafe { super::copy_to_shared(&src[s0..s0 + PART], d, whole) }
            let want = if avx { with } else { without };
            assert_eq!(
                LAST_PATH.with(std::cell::Cell::get),
                Some(want),
                "distance {k}, whole {whole}"
            );
            assert!(
                dst[d0..d0 + PART] == src[s0..s0 + PART],
                "distance {k}, whole {whole}: bytes differ"
            );
            assert!(dst[..d0].iter().chain(&dst[d0 + PART..]).all(|&b| b == 0));
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "a check of this file's text: nothing for Miri to judge"
    )]
    fn every_block_that_writes_a_ymm_register_ends_with_vzeroupper() {
        // A block that leaves the upper halves of the ymm registers dirty
        // makes later SSE instructions of the thread pay a transition
        // penalty (the copy itself stays exact): no test sees it, so the
        // text is checked. Every block with a ymm operand has `vzeroupper`
        // as its last instruction.
        let source = include_str!("copy.rs");
        let source = &source[..source.find("mod copy_tests {").unwrap()];
        let mut blocks = 0;
        for block in source.split("core::arch::asm!(").skip(1) {
            let block = &block[..block.find(");").unwrap()];
            // `ymm_reg` operands or explicit `"ymm0"`..`"ymm15"` ones.
            if block.contains("ymm_reg") || block.contains("(\"ymm") {
                blocks += 1;
                let last = block.lines().map(str::trim).rfind(|l| l.starts_with('"'));
                assert_eq!(last, Some("\"vzeroupper\","), "{block}");
            }
        }
        assert_eq!(blocks, 3, "the blocks with ymm registers");
    }
}
