//! Copies in and out of a region: `read_at` / `write_at` of 64 B, 4 KiB and
//! 1 MiB next to `ptr::copy_nonoverlapping` between the same buffer and the
//! same mapped memory (what the checked, race-tolerant copies cost over a
//! raw copy). One run prints the six ratios with their targets.
// The baseline copies through raw pointers; each unsafe block says why it
// is sound. The crate's own unsafe code stays in src/sys/.
#![allow(unsafe_code)]

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;

use criterion::Throughput;
use shm_region::{FileCleanup, MmapRegion};
use support::Row;

const SIZES: [(&str, usize); 3] = [("64b", 64), ("4kib", 4 << 10), ("1mib", 1 << 20)];

fn group(name: &str) -> String {
    format!("access_{name}")
}

fn main() {
    let mut c = support::criterion();
    let dir = support::scratch();
    let region = MmapRegion::create(dir.path().join("segment"), 2 << 20, FileCleanup::Manual)
        .expect("create");
    let view = region.region();
    let base = view.as_ptr();
    // Fault every page in first so no variant pays for it.
    view.write_at(0, &vec![1u8; 2 << 20]).expect("prefault");

    for (name, size) in SIZES {
        let mut g = c.benchmark_group(group(name));
        g.throughput(Throughput::Bytes(u64::try_from(size).unwrap()));
        let offset = 4096;
        let mut buf = vec![7u8; size];
        g.bench_function("read_at", |b| {
            b.iter(|| {
                view.read_at(black_box(offset), black_box(&mut buf))
                    .expect("read")
            });
        });
        g.bench_function("copy_read", |b| {
            b.iter(|| {
                let src = black_box(base).wrapping_add(offset);
                // SAFETY: `[offset, offset + size)` is inside the 2 MiB
                // mapping `view` keeps alive; `buf` is private memory.
                unsafe {
                    std::ptr::copy_nonoverlapping(src, black_box(&mut buf).as_mut_ptr(), size)
                };
            });
        });
        g.bench_function("write_at", |b| {
            b.iter(|| {
                view.write_at(black_box(offset), black_box(&buf))
                    .expect("write")
            });
        });
        g.bench_function("copy_write", |b| {
            b.iter(|| {
                let dst = black_box(base).wrapping_add(offset);
                // SAFETY: as above, in the other direction.
                unsafe { std::ptr::copy_nonoverlapping(black_box(&buf).as_ptr(), dst, size) };
            });
        });
        g.finish();
    }
    c.final_summary();

    let groups: Vec<String> = SIZES.iter().map(|(n, _)| group(n)).collect();
    let mut rows = Vec::new();
    for ((name, _), g) in SIZES.iter().zip(&groups) {
        // Targets, as time ratios: 64 B at most 3x the raw copy's time;
        // at least 0.75x its throughput at 4 KiB (time <= 1/0.75, rounded
        // down) and 0.9x at 1 MiB (time <= 1/0.9, rounded down).
        let max = match *name {
            "64b" => 3.0,
            "4kib" => 1.333,
            _ => 1.111,
        };
        let max = Some(max);
        rows.push((
            format!("read_at {name} vs copy_nonoverlapping"),
            g,
            "read_at",
            "copy_read",
            max,
        ));
        rows.push((
            format!("write_at {name} vs copy_nonoverlapping"),
            g,
            "write_at",
            "copy_write",
            max,
        ));
    }
    let rows: Vec<Row<'_>> = rows
        .iter()
        .map(|(what, g, a, b, max)| Row {
            what,
            ours: (g, a),
            other: (g, b),
            max_ratio: *max,
        })
        .collect();
    support::report("access", &rows);
}
