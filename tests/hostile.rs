//! `shm_region::hostile::region` (feature `arbitrary`): reads and loads
//! follow the fuzzer's input byte for byte and differ between two reads of
//! the same offset, an exhausted input reads zeros, atomics start from the
//! input's initial bytes and see writes, `wait_u32` and `wake_u32` act on
//! the memory, and every check is that of an ordinary region. No test needs a file, so all run under Miri too
//! (`cargo +nightly miri test --features arbitrary --test hostile`).
//!
//! Run with `cargo test --features arbitrary --test hostile`.
#![cfg(all(unix, feature = "arbitrary"))]

use std::sync::atomic::Ordering;

use arbitrary::Unstructured;
use shm_region::{hostile, ErrorKind, MmapOptions, Region};

fn hostile(input: &[u8], len: usize) -> Region {
    hostile::region(&mut Unstructured::new(input), len).unwrap()
}

fn read<const N: usize>(r: &Region, offset: usize) -> [u8; N] {
    let mut b = [0xAA; N];
    r.read_at(offset, &mut b).unwrap();
    b
}

#[test]
fn two_reads_of_the_same_offset_differ_and_follow_the_input() {
    // k = 0: no initial contents; everything after is the stream.
    let r = hostile(&[0, 1, 2, 3, 4, 5, 6, 7, 8], 64);
    assert_eq!(read::<4>(&r, 0), [1, 2, 3, 4]);
    assert_eq!(read::<4>(&r, 0), [5, 6, 7, 8], "same offset, new bytes");
    assert_eq!(read::<4>(&r, 0), [0; 4], "then zeros");
}

#[test]
fn the_offset_does_not_change_what_is_read_and_loads_take_native_order() {
    let input: Vec<u8> = std::iter::once(0).chain(1..=20).collect();
    let r = hostile(&input, 64);
    assert_eq!(read::<2>(&r, 60), [1, 2]);
    assert_eq!(
        r.load_u32(8, Ordering::Acquire).unwrap(),
        u32::from_ne_bytes([3, 4, 5, 6])
    );
    assert_eq!(
        r.load_u64(56, Ordering::Relaxed).unwrap(),
        u64::from_ne_bytes([7, 8, 9, 10, 11, 12, 13, 14])
    );
    // A read that runs past the end of the input: the rest, then zeros.
    assert_eq!(read::<8>(&r, 0), [15, 16, 17, 18, 19, 20, 0, 0]);
    assert_eq!(r.load_u64(0, Ordering::SeqCst).unwrap(), 0);
    assert_eq!(r.load_u32(0, Ordering::SeqCst).unwrap(), 0);
}

#[test]
fn empty_and_exhausted_input_reads_zeros() {
    for input in [&[][..], &[0], &[200], &[3, 1, 2, 3]] {
        let r = hostile(input, 4096);
        assert_eq!(read::<16>(&r, 4080), [0; 16]);
        assert_eq!(r.load_u32(4092, Ordering::Acquire).unwrap(), 0);
        assert_eq!(r.load_u64(0, Ordering::Acquire).unwrap(), 0);
        let mut big = vec![0xAA; 4096];
        r.read_at(0, &mut big).unwrap();
        assert!(big.iter().all(|&b| b == 0));
    }
}

#[test]
fn atomics_start_from_the_input_and_see_writes_that_reads_do_not() {
    // k = 14: bytes 1..=14 become the memory's first 14 bytes. (Each word
    // is used with one size only: see the mixed-size rule on `atomic_u32`.)
    let input = [14, 1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8, 9, 10, 0xEE, 0xFF];
    let r = hostile(&input, 32);
    let word = r.atomic_u32(0).unwrap();
    let wide = r.atomic_u64(8).unwrap();
    assert_eq!(
        word.load(Ordering::Relaxed),
        u32::from_ne_bytes([1, 2, 3, 4])
    );
    assert_eq!(
        wide.load(Ordering::Relaxed),
        u64::from_ne_bytes([5, 6, 7, 8, 9, 10, 0, 0])
    );
    assert_eq!(r.atomic_u64(16).unwrap().load(Ordering::Relaxed), 0);
    // The stream starts after the initial bytes.
    assert_eq!(read::<3>(&r, 0), [0xEE, 0xFF, 0]);

    word.store(77, Ordering::Release);
    assert_eq!(r.atomic_u32(0).unwrap().load(Ordering::Acquire), 77);
    r.write_at(24, &[9; 8]).unwrap();
    assert_eq!(
        r.atomic_u64(24).unwrap().load(Ordering::Acquire),
        u64::from_ne_bytes([9; 8])
    );
    // Reads and loads do not see the memory.
    assert_eq!(read::<8>(&r, 24), [0; 8]);
    assert_eq!(r.load_u32(0, Ordering::Acquire).unwrap(), 0);
    assert_eq!(r.load_u64(24, Ordering::Acquire).unwrap(), 0);
}

#[test]
fn wait_and_wake_act_on_the_memory_and_take_no_input() {
    // k = 4: the memory's first word is [1, 2, 3, 4]; the stream is 9, 8, 7, 6.
    let r = hostile(&[4, 1, 2, 3, 4, 9, 8, 7, 6], 64);
    let in_memory = u32::from_ne_bytes([1, 2, 3, 4]);
    let timeout = Some(std::time::Duration::from_millis(1));
    assert_eq!(r.wait_u32(0, in_memory, timeout), Ok(false));
    assert_eq!(r.wait_u32(0, 0, timeout), Ok(true));
    assert_eq!(r.wait_u32(4, 0, timeout), Ok(false));
    assert_eq!(r.wake_u32(0, 1), Ok(0));
    assert_eq!(
        r.wait_u32(2, 0, timeout).unwrap_err().kind(),
        ErrorKind::Misaligned
    );
    // The stream is untouched.
    assert_eq!(
        r.load_u32(0, Ordering::Relaxed).unwrap(),
        u32::from_ne_bytes([9, 8, 7, 6])
    );
}

#[test]
fn initial_contents_are_capped_by_the_length_and_by_the_input() {
    // k = 255 but len = 4: four bytes of memory, the rest is the stream.
    let r = hostile(&[255, 1, 2, 3, 4, 5, 6], 4);
    assert_eq!(
        r.atomic_u32(0).unwrap().load(Ordering::Relaxed),
        u32::from_ne_bytes([1, 2, 3, 4])
    );
    assert_eq!(read::<4>(&r, 0), [5, 6, 0, 0]);
    // k = 10 with two bytes left: both go to memory, the stream is empty.
    let r = hostile(&[10, 7, 8], 8);
    assert_eq!(
        r.atomic_u32(0).unwrap().load(Ordering::Relaxed),
        u32::from_ne_bytes([7, 8, 0, 0])
    );
    assert_eq!(read::<2>(&r, 0), [0, 0]);
}

#[test]
fn clones_share_the_stream() {
    let r = hostile(&[0, 1, 2, 3, 4], 8);
    let c = r.clone();
    assert_eq!(read::<2>(&r, 0), [1, 2]);
    assert_eq!(read::<2>(&c, 0), [3, 4]);
    assert_eq!(read::<1>(&r, 0), [0]);
}

#[test]
fn the_region_takes_the_rest_of_the_input() {
    let input = [42, 43, 0, 1, 2];
    let mut u = Unstructured::new(&input);
    let first: u8 = u.arbitrary().unwrap();
    assert_eq!(first, 42);
    let r = hostile::region(&mut u, 8).unwrap();
    assert!(u.is_empty());
    // k = 43 took 0, 1 and 2 into memory; nothing is left to read.
    assert_eq!(read::<3>(&r, 0), [0; 3]);
    assert_eq!(
        r.atomic_u32(0).unwrap().load(Ordering::Relaxed),
        u32::from_ne_bytes([0, 1, 2, 0])
    );
}

#[test]
fn zero_and_oversized_lengths_are_incorrect_format_and_take_no_input() {
    for len in [0, hostile::MAX_LEN + 1, usize::MAX] {
        let mut u = Unstructured::new(&[0, 1, 2]);
        let err = hostile::region(&mut u, len).unwrap_err();
        assert!(
            matches!(err, arbitrary::Error::IncorrectFormat),
            "{len}: {err:?}"
        );
        assert_eq!(u.len(), 3);
    }
    let r = hostile(&[], hostile::MAX_LEN);
    assert_eq!(r.len(), hostile::MAX_LEN);
    assert_eq!(
        (r.generation(), r.is_current(), r.is_read_only()),
        (0, true, false)
    );
}

/// Every refused access gives the error an ordinary in-memory region of the
/// same length gives, and consumes no input.
#[test]
fn checks_and_errors_are_those_of_an_ordinary_region() {
    for len in [1, 7, 8, 12, 4096, 5000] {
        let h = hostile(&[0, 1, 2, 3], len);
        let plain = MmapOptions::new()
            .address_space(len)
            .in_memory(len)
            .unwrap()
            .region();
        let offsets = [
            0,
            1,
            2,
            4,
            len.saturating_sub(8),
            len.saturating_sub(4),
            len - 1,
            len,
            len + 1,
            usize::MAX - 3,
            usize::MAX,
        ];
        let orders = [
            Ordering::Relaxed,
            Ordering::Acquire,
            Ordering::SeqCst,
            Ordering::Release,
            Ordering::AcqRel,
        ];
        for &off in &offsets {
            for n in [0, 1, 4, 9, len] {
                let mut a = vec![0; n];
                let mut b = vec![0; n];
                let ha = h.read_at(off, &mut a).map_err(|e| e.kind());
                let pb = plain.read_at(off, &mut b).map_err(|e| e.kind());
                assert_eq!(ha.is_ok(), pb.is_ok(), "read_at({off}, {n}) len {len}");
                if let (Err(x), Err(y)) = (ha, pb) {
                    assert_eq!(x, y);
                }
                assert_eq!(
                    h.write_at(off, &a).map_err(|e| e.kind()),
                    plain.write_at(off, &b).map_err(|e| e.kind()),
                    "write_at({off}, {n}) len {len}"
                );
            }
            assert_eq!(
                h.atomic_u32(off).map(drop).map_err(|e| e.kind()),
                plain.atomic_u32(off).map(drop).map_err(|e| e.kind())
            );
            assert_eq!(
                h.atomic_u64(off).map(drop).map_err(|e| e.kind()),
                plain.atomic_u64(off).map(drop).map_err(|e| e.kind())
            );
            for order in orders {
                assert_eq!(
                    h.load_u32(off, order).map(drop).map_err(|e| e.kind()),
                    plain.load_u32(off, order).map(drop).map_err(|e| e.kind())
                );
                assert_eq!(
                    h.load_u64(off, order).map(drop).map_err(|e| e.kind()),
                    plain.load_u64(off, order).map(drop).map_err(|e| e.kind())
                );
            }
        }
    }
    // The kinds themselves, on a fresh region whose stream must survive.
    let h = hostile(&[0, 5, 6, 7, 8], 16);
    let kind = |r: shm_region::Result<()>| r.unwrap_err().kind();
    assert_eq!(kind(h.read_at(13, &mut [0; 4])), ErrorKind::OutOfBounds);
    assert_eq!(
        kind(h.read_at(usize::MAX, &mut [0; 2])),
        ErrorKind::OutOfBounds
    );
    assert_eq!(
        kind(h.load_u32(2, Ordering::Acquire).map(drop)),
        ErrorKind::Misaligned
    );
    assert_eq!(
        kind(h.load_u64(4, Ordering::Acquire).map(drop)),
        ErrorKind::Misaligned
    );
    assert_eq!(
        kind(h.load_u64(16, Ordering::Acquire).map(drop)),
        ErrorKind::OutOfBounds
    );
    assert_eq!(
        kind(h.load_u32(0, Ordering::Release).map(drop)),
        ErrorKind::InvalidOrdering
    );
    assert_eq!(kind(h.atomic_u64(12).map(drop)), ErrorKind::Misaligned);
    assert_eq!(kind(h.write_at(15, &[1, 2])), ErrorKind::OutOfBounds);
    assert_eq!(
        read::<4>(&h, 12),
        [5, 6, 7, 8],
        "no refused access consumed input"
    );
}

/// Short and odd inputs, every length class, every accessor: no panic.
#[test]
fn no_input_makes_any_access_panic() {
    let mut seed = 0x9E37_79B9_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for input_len in 0..40 {
        let input: Vec<u8> = (0..input_len).map(|_| next().to_le_bytes()[0]).collect();
        for len in [1, 3, 8, 100, 4096] {
            let mut u = Unstructured::new(&input);
            let r = hostile::region(&mut u, len).unwrap();
            for _ in 0..20 {
                let off = usize::try_from(next()).unwrap() % (len + 9);
                let n = usize::try_from(next()).unwrap() % 17;
                let mut buf = vec![0; n];
                let _ = r.read_at(off, &mut buf);
                let _ = r.write_at(off, &buf);
                let _ = r.load_u32(off & !3, Ordering::Acquire);
                let _ = r.load_u64(off & !7, Ordering::Relaxed);
                // Loads only: `write_at` stores bytes here, and a wider
                // atomic store over them is a mixed-size pattern Miri cannot
                // model (the atomics test covers stores).
                if let Ok(a) = r.atomic_u32(off & !3) {
                    a.load(Ordering::Relaxed);
                }
                if let Ok(a) = r.atomic_u64(off & !7) {
                    a.load(Ordering::Relaxed);
                }
            }
        }
    }
}

#[test]
fn threads_share_one_stream_and_every_byte_is_read_once() {
    let input: Vec<u8> = std::iter::once(0)
        .chain((1..=255).cycle().take(4000))
        .collect();
    let r = hostile(&input, 64);
    let seen: Vec<Vec<u8>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                s.spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..250 {
                        got.extend_from_slice(&read::<4>(&r, 0));
                    }
                    got
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u8> = seen.concat();
    let mut want = input[1..].to_vec();
    all.sort_unstable();
    want.sort_unstable();
    assert_eq!(all, want);
}

/// The guide's motivating example (`shm_region::guide::verifying`), on the input libFuzzer finds for it
/// (`fuzz/fuzz_targets/double_fetch.rs` with `DOUBLE_FETCH_BUGGY=1`): no
/// initial memory, a first length of 0, then a second one of 139. The
/// parser that fetches the length twice indexes past its buffer; the one
/// that validates and uses one copy does not.
#[test]
fn the_double_fetch_is_caught_and_the_single_fetch_is_not() {
    const MAX: usize = 64;
    fn payload_len(r: &Region) -> Option<usize> {
        let mut header = [0u8; 4];
        r.read_at(0, &mut header).ok()?;
        usize::try_from(u32::from_le_bytes(header)).ok()
    }
    fn parse_buggy(r: &Region, out: &mut [u8; MAX]) -> Option<usize> {
        if payload_len(r)? > MAX {
            return None;
        }
        let len = payload_len(r)?;
        r.read_at(4, &mut out[..len]).ok()?;
        Some(len)
    }
    fn parse_fixed(r: &Region, out: &mut [u8; MAX]) -> Option<usize> {
        let len = payload_len(r)?;
        if len > MAX {
            return None;
        }
        r.read_at(4, &mut out[..len]).ok()?;
        Some(len)
    }
    let input = [0, 0, 0, 0, 0, 0x8b];
    let buggy = std::panic::catch_unwind(|| parse_buggy(&hostile(&input, 4 + MAX), &mut [0; MAX]));
    assert!(buggy.is_err(), "the double fetch indexes past the buffer");
    // One fetch sees length 0 and reads an empty payload.
    assert_eq!(
        parse_fixed(&hostile(&input, 4 + MAX), &mut [0; MAX]),
        Some(0)
    );
    // The fixed parser never panics, whatever the peer writes.
    for second in [0u8, 1, 64, 65, 0x8b, 0xff] {
        for first in [0u8, 64, 65, 0xff] {
            let input = [0, first, 0, 0, 0, second, 0, 0, 0];
            let r = hostile(&input, 4 + MAX);
            let got = parse_fixed(&r, &mut [0; MAX]);
            assert_eq!(
                got,
                (usize::from(first) <= MAX).then_some(usize::from(first))
            );
        }
    }
}
