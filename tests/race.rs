//! Copies and atomics racing over the same bytes from several threads of one
//! process. Every byte read must be a value somebody wrote, and the race must
//! not be undefined behaviour: CI runs this file under ThreadSanitizer over a
//! file mapping, and under Miri (which cannot map files, and judges data
//! races and provenance itself) over an in-memory region, with fewer rounds.
//!
//! Under Miri the copies are the portable per-byte atomic loop, whose
//! contract (`src/sys/copy.rs`) excludes racing an atomic access wider than
//! a byte over the same bytes (mixed-size atomics, which Miri's weak-memory
//! model cannot represent: it stops with an internal error). There the
//! atomics use their own bytes, `[SPAN, 2 * SPAN)`: copies race copies and
//! atomics race atomics, and the mixed race is left to ThreadSanitizer over
//! the assembly copies.
#![cfg(unix)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Barrier;

use shm_region::{MmapRegion, Region};

/// The threads fight over bytes `[0, SPAN)` of the region.
const SPAN: usize = 1024;
/// Rounds per thread: Miri runs about a thousand times slower (each round
/// copies up to `SPAN` bytes one at a time there).
/// Where the atomic words start: over the copies' bytes natively, past them
/// under Miri (see the module's documentation).
const ATOMICS_AT: usize = if cfg!(miri) { SPAN } else { 0 };
const ROUNDS: usize = if cfg!(miri) { 16 } else { 4000 };
const THREADS: usize = 4;
/// What the main thread writes before the race starts.
const INITIAL: u8 = 0x5A;
/// The fill byte of each thread: its copies write only this byte, its atomic
/// stores store words made of it.
const FILLS: [u8; THREADS] = [0x11, 0x22, 0x33, 0x44];
/// Copy lengths, chosen to cover short copies and long ones, and to start and
/// end inside the 8-byte words the atomics use.
const LENS: [usize; 14] = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 64, 65, 300, SPAN];

fn assert_written_by_someone(bytes: &[u8], what: &str) {
    for (i, &b) in bytes.iter().enumerate() {
        assert!(
            b == INITIAL || FILLS.contains(&b),
            "{what}: byte {i} is {b:#04x}, which nobody wrote"
        );
    }
}

/// One racing thread: alternates `write_at` and `atomic_u64(..).store` of its
/// own fill, and checks every `read_at` and `atomic_u64(..).load`. Returns
/// how many reads saw bytes from more than one writer (evidence that the
/// threads really overlapped; informational only).
fn racer(region: &Region, id: usize, start: &Barrier) -> usize {
    let fill = FILLS[id];
    let data = [fill; SPAN];
    let word = u64::from_ne_bytes([fill; 8]);
    let mut buf = [0u8; SPAN];
    let mut mixed = 0;
    start.wait();
    for round in 0..ROUNDS {
        let len = LENS[(round + id) % LENS.len()];
        let offset = (round * 7 + id * 5) % (SPAN - len + 1);
        if (round + id) % 2 == 0 {
            region.write_at(offset, &data[..len]).unwrap();
        } else {
            let at = ATOMICS_AT + 8 * ((round * 3 + id) % (SPAN / 8));
            let order = [Ordering::Relaxed, Ordering::Release, Ordering::SeqCst][round % 3];
            region.atomic_u64(at).unwrap().store(word, order);
        }

        let len = LENS[(round * 5 + id) % LENS.len()];
        let offset = (round * 11 + id) % (SPAN - len + 1);
        region.read_at(offset, &mut buf[..len]).unwrap();
        assert_written_by_someone(&buf[..len], "read_at");
        if buf[..len].windows(2).any(|w| w[0] != w[1]) {
            mixed += 1;
        }

        let at = ATOMICS_AT + 8 * ((round * 13 + id) % (SPAN / 8));
        let order = [Ordering::Relaxed, Ordering::Acquire, Ordering::SeqCst][round % 3];
        let v = region.atomic_u64(at).unwrap().load(order);
        assert_written_by_someone(&v.to_ne_bytes(), "atomic_u64 load");
    }
    mixed
}

/// A file mapping natively (what ThreadSanitizer checks); an in-memory
/// region under Miri. The directory, if any, lives as long as the test.
#[cfg(not(miri))]
fn backing() -> (tempfile::TempDir, MmapRegion) {
    let dir = tempfile::tempdir().unwrap();
    let host =
        MmapRegion::create(common::seg(&dir), 4096, shm_region::FileCleanup::Manual).unwrap();
    (dir, host)
}

#[cfg(miri)]
fn backing() -> ((), MmapRegion) {
    ((), MmapRegion::in_memory(4096).unwrap())
}

#[test]
fn racing_copies_and_atomics_from_four_threads_are_race_free() {
    let (_dir, host) = backing();
    let region = host.region();
    region.write_at(0, &[INITIAL; SPAN]).unwrap();
    // Under Miri the atomics' own bytes start as `INITIAL` too, stored by
    // atomics of their width (Miri refuses mixed sizes even in sequence).
    if ATOMICS_AT != 0 {
        for at in (ATOMICS_AT..ATOMICS_AT + SPAN).step_by(8) {
            let word = u64::from_ne_bytes([INITIAL; 8]);
            region
                .atomic_u64(at)
                .unwrap()
                .store(word, Ordering::Relaxed);
        }
    }

    let start = Barrier::new(THREADS);
    let mixed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|id| {
                let view = region.clone();
                let start = &start;
                s.spawn(move || racer(&view, id, start))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    println!("reads that saw more than one writer: {mixed}");

    let mut end = [0u8; SPAN];
    region.read_at(0, &mut end).unwrap();
    assert_written_by_someone(&end, "final contents");
    for at in (ATOMICS_AT..ATOMICS_AT + SPAN).step_by(8) {
        let v = region.atomic_u64(at).unwrap().load(Ordering::Relaxed);
        assert_written_by_someone(&v.to_ne_bytes(), "final atomic word");
    }
}
