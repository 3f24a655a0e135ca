//! Copies and atomics racing over the same bytes from several threads of one
//! process. Every byte read must be a value somebody wrote, and the race must
//! not be undefined behaviour: CI runs this file under ThreadSanitizer.
#![cfg(all(unix, not(miri)))]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Barrier;

use common::*;
use shm_region::{FileCleanup, MmapRegion, Region};

/// The threads fight over bytes `[0, SPAN)` of the region.
const SPAN: usize = 1024;
const ROUNDS: usize = 4000;
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
            let at = 8 * ((round * 3 + id) % (SPAN / 8));
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

        let at = 8 * ((round * 13 + id) % (SPAN / 8));
        let order = [Ordering::Relaxed, Ordering::Acquire, Ordering::SeqCst][round % 3];
        let v = region.atomic_u64(at).unwrap().load(order);
        assert_written_by_someone(&v.to_ne_bytes(), "atomic_u64 load");
    }
    mixed
}

#[test]
fn racing_copies_and_atomics_from_four_threads_are_race_free() {
    let dir = tempfile::tempdir().unwrap();
    let host = MmapRegion::create(seg(&dir), 4096, FileCleanup::Manual).unwrap();
    let region = host.region();
    region.write_at(0, &[INITIAL; SPAN]).unwrap();

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
}
