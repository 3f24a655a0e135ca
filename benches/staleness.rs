//! The cost of asking "has it changed?" when nothing changed:
//! `check_and_remap` next to a bare `fstat` of the same file, and
//! `Region::is_current` / `Region::refresh`.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;

use shm_region::{FileCleanup, MmapRegion};
use support::Row;

const G: &str = "staleness";

fn main() {
    let mut c = support::criterion();
    let dir = support::scratch();
    let path = dir.path().join("segment");
    let host = MmapRegion::create(&path, 1 << 20, FileCleanup::Manual).expect("create");
    let mut guest = MmapRegion::attach(&path).expect("attach");
    let mut view = guest.region();

    let mut g = c.benchmark_group(G);
    g.bench_function("check_and_remap_unchanged", |b| {
        b.iter(|| black_box(guest.check_and_remap().expect("check")));
    });
    g.bench_function("fstat", |b| {
        b.iter(|| black_box(rustix::fs::fstat(black_box(host.fd().unwrap())).expect("fstat")));
    });
    g.bench_function("is_current", |b| {
        b.iter(|| black_box(black_box(&view).is_current()));
    });
    g.bench_function("refresh_unchanged", |b| {
        b.iter(|| black_box(black_box(&mut view).refresh()));
    });
    g.finish();
    c.final_summary();

    support::report(
        G,
        &[Row {
            what: "check_and_remap (unchanged) vs bare fstat",
            ours: (G, "check_and_remap_unchanged"),
            other: (G, "fstat"),
            max_ratio: Some(1.3),
        }],
    );
    support::report_abs("Region::is_current", G, "is_current", Some(2.0));
    support::report_abs("Region::refresh (unchanged)", G, "refresh_unchanged", None);
}
