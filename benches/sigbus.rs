//! What the `SIGBUS` guard costs the checked accessors: `read_at` of 4 KiB
//! and 1 MiB before and after `shm_region::sigbus::install`, and
//! `Region::is_current` after it. One run prints the ratios with their
//! targets (installed within 5% of uninstalled; `is_current` <= 2 ns).
//!
//! The per-access cut check (one fence, a compiler barrier on x86, and one
//! load) runs whether or not the handler is installed, so the "before"
//! numbers already include it; the cost of the check itself against the
//! code before it existed is in BENCHMARKS.md (the `access` bench's
//! `read_at` vs `copy_nonoverlapping` ratios, before and after).

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;

use criterion::Throughput;
use shm_region::{sigbus, FileCleanup, MmapRegion};
use support::Row;

const SIZES: [(&str, usize); 2] = [("4kib", 4 << 10), ("1mib", 1 << 20)];
const G: &str = "sigbus_is_current";

fn group(name: &str) -> String {
    format!("sigbus_read_{name}")
}

fn main() {
    let mut c = support::criterion();
    let dir = support::scratch();
    let region = MmapRegion::create(dir.path().join("segment"), 2 << 20, FileCleanup::Manual)
        .expect("create");
    let view = region.region();
    view.write_at(0, &vec![1u8; 2 << 20]).expect("prefault");

    for (installed, id) in [(false, "uninstalled"), (true, "installed")] {
        if installed {
            sigbus::install().expect("install");
        }
        for (name, size) in SIZES {
            let mut g = c.benchmark_group(group(name));
            g.throughput(Throughput::Bytes(u64::try_from(size).unwrap()));
            let mut buf = vec![7u8; size];
            g.bench_function(id, |b| {
                b.iter(|| {
                    view.read_at(black_box(4096), black_box(&mut buf))
                        .expect("read")
                });
            });
            g.finish();
        }
    }
    let mut g = c.benchmark_group(G);
    g.bench_function("is_current", |b| {
        b.iter(|| black_box(black_box(&view).is_current()));
    });
    g.finish();
    c.final_summary();

    let groups: Vec<String> = SIZES.iter().map(|(n, _)| group(n)).collect();
    let whats: Vec<String> = SIZES
        .iter()
        .map(|(n, _)| format!("read_at {n}, installed vs not"))
        .collect();
    let rows: Vec<Row<'_>> = whats
        .iter()
        .zip(&groups)
        .map(|(what, g)| Row {
            what,
            ours: (g, "installed"),
            other: (g, "uninstalled"),
            max_ratio: Some(1.05),
        })
        .collect();
    support::report("sigbus", &rows);
    support::report_abs("Region::is_current (installed)", G, "is_current", Some(2.0));
}
