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
/// # Safety
///
/// - `[src, src + dst.len())` must be valid for reads for the duration of
///   the call, and must not overlap `dst`;
/// - when [`PORTABLE_COPY`] is true, the source must also be valid for
///   writes, unless [`read_only_load_ok`](super::read_only_load_ok)`(1)` holds (relaxed 1-byte atomic
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
    #[cfg(all(not(miri), target_arch = "x86_64"))]
    // SAFETY: the source is valid for reads for `dst.len()` bytes and does
    // not overlap `dst` (caller's contract, and `dst` is a unique borrow),
    // which is `asm_read`'s contract.
    unsafe {
        asm_read(src, dst);
    }
    #[cfg(all(not(miri), target_arch = "x86"))]
    // SAFETY: the source is valid for reads and `dst` for writes, both for
    // `dst.len()` bytes, and they do not overlap (caller's contract, and
    // `dst` is a unique borrow). The block is opaque to the compiler and
    // its accesses are the hardware's byte-atomic ones (invariant 3).
    unsafe {
        asm_copy(src, dst.as_mut_ptr(), dst.len());
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
/// (invariant 3). Above 64 bytes, [`asm_copy`].
///
/// # Safety
///
/// `[src, src + dst.len())` must be valid for reads and must not overlap
/// `dst`.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn asm_read(src: *const u8, dst: &mut [u8]) {
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
        unsafe { asm_copy(src, dst.as_mut_ptr(), len) }
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
/// cannot see into (invariant 3): `rep movsb` above 256 bytes; below that,
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
/// writes, and the ranges must not overlap.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(always)]
unsafe fn asm_copy(src: *const u8, dst: *mut u8, len: usize) {
    if len > 256 {
        // SAFETY: the caller's contract is `rep_movsb`'s.
        unsafe { rep_movsb(src, dst, len) }
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

/// The copy primitives over heap memory, so that they also run under Miri
/// (the portable per-byte atomic copy there, `rep movsb` elsewhere on x86).
#[cfg(test)]
mod copy_tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};

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
}
