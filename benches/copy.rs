//! Copy speed by size and page offset: `Region::read_at` (mapped region
//! into a private buffer) and `Region::write_at` (private buffer into the
//! region) against `std::ptr::copy_nonoverlapping` (glibc's `memcpy`) over
//! the same bytes: the same private buffer, and a memmap2 mapping of the
//! region's file, whose pages sit at the same page offsets as the
//! region's.
//!
//! Sizes 4 KiB to 16 MiB; placements: the mapped side page-aligned and the
//! private buffer at page offset 0, 16 (where glibc's `malloc` puts every
//! block of 128 KiB and more), 64, 2048 and 4080; then the private buffer
//! page-aligned and the mapped side at offset 16 and 4080. And
//! `for_each_chunk` over 16 MiB against a loop of `memcpy` into a stack
//! buffer of the same chunk size.
//!
//! Each cell runs rounds of ours, memcpy, memcpy, ours (ABBA, so a drift
//! within a round weighs on both alike) and compares the medians. Each
//! timed sample copies about 4 MiB (many copies of a small size, one or
//! more of a large one). Run it pinned to one core where the machine is
//! shared: `taskset -c 1 cargo bench --bench copy`.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use shm_region::{FileCleanup, MmapRegion, Region};

const SIZES: [usize; 7] = [
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
];
const PAGE: usize = 4096;
/// Bytes the mapped side needs: the largest size at the largest offset.
const MAPPED: usize = (16 << 20) + 2 * PAGE;

/// Where a copy's two ends sit, as page offsets.
#[derive(Clone, Copy)]
struct Placement {
    mapped: usize,
    private: usize,
}

const PLACEMENTS: [Placement; 7] = [
    Placement {
        mapped: 0,
        private: 0,
    },
    Placement {
        mapped: 0,
        private: 16,
    },
    Placement {
        mapped: 0,
        private: 64,
    },
    Placement {
        mapped: 0,
        private: 2048,
    },
    Placement {
        mapped: 0,
        private: 4080,
    },
    Placement {
        mapped: 16,
        private: 0,
    },
    Placement {
        mapped: 4080,
        private: 0,
    },
];

/// The medians of `ours` and `other` (each given `state`) over ABBA rounds, and the 25th and
/// 75th percentiles of the per-round ratio (ours / other), a measure of
/// the noise.
struct Cell {
    ours: f64,
    other: f64,
    q1: f64,
    q3: f64,
}

impl Cell {
    fn ratio(&self) -> f64 {
        self.ours / self.other
    }
}

fn abba<T: ?Sized>(
    rounds: usize,
    reps: usize,
    state: &mut T,
    mut ours: impl FnMut(&mut T),
    mut other: impl FnMut(&mut T),
) -> Cell {
    let mut time = |f: &mut dyn FnMut(&mut T)| {
        // One untimed copy first, so that each side is timed in its own
        // steady state: a copy with non-temporal stores leaves the
        // destination out of the caches, which would otherwise slow the
        // next sample of the other side (up to 1.9x at 4 MiB here).
        f(state);
        let t = Instant::now();
        for _ in 0..reps {
            f(state);
        }
        t.elapsed().as_secs_f64() / reps as f64
    };
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let a1 = time(&mut ours);
        let b1 = time(&mut other);
        let b2 = time(&mut other);
        let a2 = time(&mut ours);
        a.extend([a1, a2]);
        b.extend([b1, b2]);
        r.push((a1 + a2) / (b1 + b2));
    }
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let (a, b, r) = (sorted(a), sorted(b), sorted(r));
    Cell {
        ours: a[a.len() / 2],
        other: b[b.len() / 2],
        q1: r[r.len() / 4],
        q3: r[r.len() * 3 / 4],
    }
}

fn human(size: usize) -> String {
    if size >= 1 << 20 {
        format!("{} MiB", size >> 20)
    } else {
        format!("{} KiB", size >> 10)
    }
}

fn main() {
    let dir = support::scratch();
    let path = dir.path().join("segment");
    let region = MmapRegion::create(&path, MAPPED, FileCleanup::Manual).expect("create");
    let view: Region = region.region();
    let fill: Vec<u8> = (0..MAPPED)
        .map(|i| u8::try_from((i * 7 + i / 251) % 251).unwrap())
        .collect();
    view.write_at(0, &fill).expect("fill");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    // SAFETY: memmap2's contract: while this bench runs, only its own
    // copies (one at a time, on this thread) touch the file's bytes.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.expect("memmap2");
    assert_eq!(map.as_ptr().align_offset(PAGE), 0);
    // The private buffer: a heap allocation, used from a page boundary
    // inside it plus the placement's offset.
    let mut heap = vec![1u8; MAPPED + PAGE];
    let base = heap.as_ptr().align_offset(PAGE);

    println!("=== copy: shm-region vs copy_nonoverlapping (memcpy), ABBA rounds, medians ===");
    println!(
        "ratio = shm-region time / memcpy time (<= 1.053 is >= 0.95x speed); speed = 1 / ratio; \
         [q1..q3] = quartiles of the per-round ratio (noise)"
    );
    println!(
        "{:>7} {:>15} | {:>9} {:>9} {:>6} {:>6} {:>13} | {:>9} {:>9} {:>6} {:>6} {:>13}",
        "size",
        "placement",
        "read us",
        "memcpy",
        "ratio",
        "speed",
        "[q1..q3]",
        "write us",
        "memcpy",
        "ratio",
        "speed",
        "[q1..q3]"
    );
    let mut worst: Option<(f64, String)> = None;
    // `COPY_BENCH_SIZES=16,1024` (KiB) runs only those sizes.
    let sizes: Vec<usize> = match std::env::var("COPY_BENCH_SIZES") {
        Ok(v) => v
            .split(',')
            .map(|k| {
                k.trim()
                    .parse::<usize>()
                    .expect("COPY_BENCH_SIZES: KiB, comma-separated")
                    << 10
            })
            .filter(|&n| n > 0 && n <= SIZES[SIZES.len() - 1])
            .collect(),
        Err(_) => SIZES.to_vec(),
    };
    for &size in &sizes {
        let reps = ((4 << 20) / size).max(1);
        let rounds = if size >= 4 << 20 { 31 } else { 61 };
        for p in PLACEMENTS {
            let private = base + p.private;
            let m = p.mapped;
            let read = {
                let buf = &mut heap[private..private + size];
                let src = map[m..m + size].as_ptr();
                abba(
                    rounds,
                    reps,
                    buf,
                    |buf| {
                        view.read_at(m, black_box(&mut *buf)).expect("read_at");
                    },
                    |buf| {
                        // SAFETY: `src` is `size` bytes of the memmap2
                        // mapping, `buf` as many of the heap buffer; they
                        // do not overlap and nothing else runs meanwhile.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                black_box(src),
                                black_box(buf.as_mut_ptr()),
                                size,
                            );
                        }
                        black_box(&mut *buf);
                    },
                )
            };
            let write = {
                let data = &heap[private..private + size];
                let dst = map[m..m + size].as_mut_ptr();
                abba(
                    rounds,
                    reps,
                    &mut (),
                    |()| view.write_at(m, black_box(data)).expect("write_at"),
                    |()| {
                        // SAFETY: as above, the other way round.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                black_box(data.as_ptr()),
                                black_box(dst),
                                size,
                            );
                        }
                    },
                )
            };
            let placement = if p.mapped == 0 {
                format!("private +{}", p.private)
            } else {
                format!("mapped +{}", p.mapped)
            };
            println!(
                "{:>7} {:>15} | {:>9.2} {:>9.2} {:>6.3} {:>6.3} {:>13} | {:>9.2} {:>9.2} {:>6.3} {:>6.3} {:>13}",
                human(size),
                placement,
                read.ours * 1e6,
                read.other * 1e6,
                read.ratio(),
                1.0 / read.ratio(),
                format!("[{:.2}..{:.2}]", read.q1, read.q3),
                write.ours * 1e6,
                write.other * 1e6,
                write.ratio(),
                1.0 / write.ratio(),
                format!("[{:.2}..{:.2}]", write.q1, write.q3),
            );
            for (way, c) in [("read", &read), ("write", &write)] {
                if worst.as_ref().is_none_or(|(r, _)| c.ratio() > *r) {
                    worst = Some((c.ratio(), format!("{way} {} {placement}", human(size))));
                }
            }
        }
    }
    // `for_each_chunk`'s snapshots: 16 MiB in chunks of `CHUNK_SIZE` into
    // its stack buffer, against memcpy into a stack buffer of that size.
    let len = 16 << 20;
    let chunks = abba(
        31,
        1,
        &mut (),
        |()| {
            view.for_each_chunk(0, len, |chunk| {
                black_box(chunk);
            })
            .expect("for_each_chunk");
        },
        |()| {
            let mut buf = [0u8; Region::CHUNK_SIZE];
            for at in (0..len).step_by(Region::CHUNK_SIZE) {
                // SAFETY: `CHUNK_SIZE` bytes at `at < len` are inside the
                // memmap2 mapping; `buf` is a private stack buffer.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        black_box(map[at..].as_ptr()),
                        black_box(buf.as_mut_ptr()),
                        Region::CHUNK_SIZE,
                    );
                }
                black_box(&mut buf);
            }
        },
    );
    println!(
        "for_each_chunk 16 MiB vs memcpy chunks: {:.1} us / {:.1} us = {:.3} (speed {:.3}) [{:.2}..{:.2}]",
        chunks.ours * 1e6,
        chunks.other * 1e6,
        chunks.ratio(),
        1.0 / chunks.ratio(),
        chunks.q1,
        chunks.q3
    );
    if let Some((r, at)) = worst {
        let verdict = if r <= 1.0 / 0.95 { "met" } else { "MISSED" };
        println!(
            "worst cell: {at}: ratio {r:.3} (speed {:.3}; target >= 0.95x: {verdict})",
            1.0 / r
        );
    }
}
