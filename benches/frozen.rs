//! A checksum over a `Frozen` next to the same checksum over a memmap2
//! slice of the same file (the same pages, mapped twice): a `Frozen` is a
//! plain `&[u8]`, so the two should cost the same. Two checksums over 8 MiB:
//! FNV-1a 64 (one multiply per byte, compute-bound) and a sum of 64-bit
//! words (memory-bound). One run prints both ratios with their target.
// The memmap2 baseline takes `unsafe`; the crate's own stays in src/sys/.
#![allow(unsafe_code)]

#[cfg(target_os = "linux")]
#[path = "support/mod.rs"]
mod support;

#[cfg(target_os = "linux")]
use std::hint::black_box;

#[cfg(target_os = "linux")]
use criterion::Throughput;
#[cfg(target_os = "linux")]
use shm_region::MmapRegion;
#[cfg(target_os = "linux")]
use support::Row;

/// `Frozen` needs Linux memfds.
#[cfg(not(target_os = "linux"))]
fn main() {}

#[cfg(target_os = "linux")]
const LEN: usize = 8 << 20;

#[cfg(target_os = "linux")]
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(target_os = "linux")]
fn word_sum(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")))
        .fold(0u64, u64::wrapping_add)
}

#[cfg(target_os = "linux")]
fn main() {
    let mut c = support::criterion();
    let region = MmapRegion::create_sealed("bench-frozen", LEN).expect("create_sealed");
    let data: Vec<u8> = (0..LEN)
        .map(|i| u8::try_from(i % 251).expect("< 251"))
        .collect();
    region.region().write_at(0, &data).expect("fill");
    let frozen = region.freeze().map_err(|e| e.into_error()).expect("freeze");
    let file = std::fs::File::from(frozen.fd().try_clone_to_owned().expect("dup"));
    // SAFETY: memmap2 requires that no one modifies the file while the map
    // lives; it is sealed against writes and size changes.
    let baseline = unsafe { memmap2::Mmap::map(&file) }.expect("memmap2");
    assert_eq!(&baseline[..], &frozen[..]);

    for (name, f) in [("fnv1a", fnv1a as fn(&[u8]) -> u64), ("word_sum", word_sum)] {
        let mut g = c.benchmark_group(format!("frozen_{name}"));
        g.throughput(Throughput::Bytes(u64::try_from(LEN).expect("fits")));
        // Criterion measures one variant after the other (the interleaved
        // measurement below does not); FROZEN_BASELINE_FIRST=1 swaps the
        // order, to see whether the order matters on a loaded machine.
        let mut variants: [(&str, &[u8]); 2] =
            [("frozen", &frozen[..]), ("memmap2", &baseline[..])];
        if std::env::var_os("FROZEN_BASELINE_FIRST").is_some() {
            variants.reverse();
        }
        for (id, bytes) in variants {
            g.bench_function(id, |b| b.iter(|| f(black_box(bytes))));
        }
        g.finish();
    }
    c.final_summary();

    let rows = [
        Row {
            what: "FNV-1a 64 over 8 MiB: Frozen vs memmap2 slice",
            ours: ("frozen_fnv1a", "frozen"),
            other: ("frozen_fnv1a", "memmap2"),
            // At least 0.97x the throughput: time at most 1/0.97.
            max_ratio: Some(1.031),
        },
        Row {
            what: "word sum over 8 MiB: Frozen vs memmap2 slice",
            ours: ("frozen_word_sum", "frozen"),
            other: ("frozen_word_sum", "memmap2"),
            max_ratio: Some(1.031),
        },
    ];
    support::report("frozen", &rows);

    // Criterion measures one variant after the other; on a shared machine
    // the load can change in between. Alternating the two, round by round,
    // exposes both to the same load.
    println!("\n=== frozen, interleaved: 41 rounds, each variant once per round, medians ===");
    for (name, f) in [
        ("FNV-1a 64", fnv1a as fn(&[u8]) -> u64),
        ("word sum", word_sum),
    ] {
        let (mut ours, mut other) = (Vec::new(), Vec::new());
        for _ in 0..41 {
            let t = std::time::Instant::now();
            black_box(f(black_box(&frozen[..])));
            ours.push(t.elapsed().as_secs_f64());
            let t = std::time::Instant::now();
            black_box(f(black_box(&baseline[..])));
            other.push(t.elapsed().as_secs_f64());
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (a, b) = (median(&mut ours), median(&mut other));
        let verdict = if a / b <= 1.031 { "met" } else { "MISSED" };
        println!(
            "{name:<10} over 8 MiB: Frozen {:>9.3} ms / memmap2 {:>9.3} ms = {:.3}x  (target <= 1.031: {verdict})",
            a * 1e3,
            b * 1e3,
            a / b
        );
    }
}
