//! Growth while in use: a region grown step by step while every page (or
//! the new tail) is touched after each step, for four strategies:
//!
//! - `shm_region`: this crate with its defaults (blocks reserved on growth);
//!   `shm_region_sparse` the same with `reserve_blocks(false)`;
//! - `reference`: the widely copied strategy, reimplemented here as a
//!   baseline: `ftruncate` the file, map a new full-size mapping, unmap the
//!   old one;
//! - `memmap2`: `MmapMut` over the file, grown with its Linux `remap`
//!   (`mremap` allowed to move);
//! - `floor`: one mapping of the final size made up front, the same touches.
//!
//! Workloads: 1 MiB steps to 256 MiB touching the whole region after each
//! step, and 64 KiB steps to 64 MiB touching only the new tail.
//!
//! `GROW_CSV=1 cargo bench --bench grow_in_use` also writes the cumulative
//! time at each size for one pass of each variant to
//! `target/tmp/criterion/grow_in_use_cumulative.csv`, which
//! `benches/plot_grow_in_use.py` turns into `benches/grow_in_use.png`.
// The baselines map and touch memory themselves; each unsafe block says why
// it is sound. The crate's own unsafe code stays in src/sys/.
#![allow(unsafe_code)]
#![allow(
    clippy::disallowed_methods,
    reason = "the baselines are the raw mmap strategies being compared"
)]

#[path = "support/mod.rs"]
mod support;

use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use memmap2::{MmapMut, RemapOptions};
use rustix::mm::{MapFlags, ProtFlags};
use shm_region::{FileCleanup, MmapOptions, Region};
use support::Row;

const PAGE: usize = 4096;

#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    step: usize,
    max: usize,
    /// Touch the whole region after each step (else only the new tail).
    whole: bool,
}

const ONE_MIB_STEPS: Workload = Workload {
    name: "grow_in_use_1mib_steps_to_256mib",
    step: 1 << 20,
    max: 256 << 20,
    whole: true,
};

const SMALL_STEPS: Workload = Workload {
    name: "grow_in_use_64kib_steps_to_64mib_tail",
    step: 64 << 10,
    max: 64 << 20,
    whole: false,
};

impl Workload {
    fn touch_range(&self, len: usize) -> (usize, usize) {
        if self.whole {
            (0, len)
        } else {
            (len - self.step, len)
        }
    }
}

/// A plain shared mapping for the baselines.
struct RawMap {
    ptr: *mut u8,
    len: usize,
}

impl RawMap {
    fn new(file: &File, len: usize) -> Self {
        // SAFETY: a null hint without MAP_FIXED cannot replace an existing
        // mapping; the result is owned by this value until Drop.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                file,
                0,
            )
        }
        .expect("mmap");
        Self {
            ptr: ptr.cast(),
            len,
        }
    }

    fn touch(&self, from: usize, to: usize) {
        assert!(from <= to && to <= self.len);
        for off in (from..to).step_by(PAGE) {
            // SAFETY: `off < to <= len`, inside the mapping, and the file is
            // at least `len` long, so the page is backed.
            unsafe { self.ptr.wrapping_add(off).write_volatile(1) };
        }
    }
}

impl Drop for RawMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range `new` mapped; no reference into
        // it outlives `self`.
        unsafe { rustix::mm::munmap(self.ptr.cast::<c_void>(), self.len) }.expect("munmap");
    }
}

fn new_file(path: &Path, len: usize) -> File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .expect("create");
    f.set_len(u64::try_from(len).unwrap()).expect("set_len");
    f
}

/// Touches pages through the view's raw base, exactly as the baselines do
/// (the cost of `write_at` itself is measured in `benches/access.rs`).
fn touch_region(r: &Region, from: usize, to: usize) {
    assert!(from <= to && to <= r.len());
    let base = r.as_ptr();
    for off in (from..to).step_by(PAGE) {
        // SAFETY: `off < to <= r.len()`: inside the view's mapping, which
        // `r` keeps alive, and backed by the file (nobody truncates it).
        unsafe { base.wrapping_add(off).write_volatile(1) };
    }
}

/// Runs one full growth; `mark(len)` is called after each step's touches.
fn ours(dir: &Path, w: Workload, reserve: bool, mut mark: impl FnMut(usize)) {
    let path = dir.join("ours");
    let mut region = MmapOptions::new()
        .reserve_blocks(reserve)
        .create(&path, w.step, FileCleanup::Manual)
        .expect("create");
    touch_region(&region.region(), 0, w.step);
    mark(w.step);
    let mut len = w.step;
    while len < w.max {
        len += w.step;
        region.resize(len).expect("resize");
        let (from, to) = w.touch_range(len);
        touch_region(&region.region(), from, to);
        mark(len);
    }
}

fn reference(dir: &Path, w: Workload, mut mark: impl FnMut(usize)) {
    let path = dir.join("reference");
    let file = new_file(&path, w.step);
    let mut map = RawMap::new(&file, w.step);
    map.touch(0, w.step);
    mark(w.step);
    let mut len = w.step;
    while len < w.max {
        len += w.step;
        file.set_len(u64::try_from(len).unwrap()).expect("set_len");
        let grown = RawMap::new(&file, len);
        drop(std::mem::replace(&mut map, grown));
        let (from, to) = w.touch_range(len);
        map.touch(from, to);
        mark(len);
    }
    drop(map);
    std::fs::remove_file(path).expect("remove");
}

fn memmap2(dir: &Path, w: Workload, mut mark: impl FnMut(usize)) {
    let path = dir.join("memmap2");
    let file = new_file(&path, w.step);
    // SAFETY: the file is private to this benchmark; nobody truncates it.
    let mut map = unsafe { MmapMut::map_mut(&file) }.expect("map");
    for off in (0..w.step).step_by(PAGE) {
        map[off] = 1;
    }
    mark(w.step);
    let mut len = w.step;
    while len < w.max {
        len += w.step;
        file.set_len(u64::try_from(len).unwrap()).expect("set_len");
        // SAFETY: no reference into the mapping is alive across the remap.
        unsafe { map.remap(len, RemapOptions::new().may_move(true)) }.expect("remap");
        let (from, to) = w.touch_range(len);
        for off in (from..to).step_by(PAGE) {
            map[off] = 1;
        }
        mark(len);
    }
    drop(map);
    std::fs::remove_file(path).expect("remove");
}

fn floor(dir: &Path, w: Workload, mut mark: impl FnMut(usize)) {
    let path = dir.join("floor");
    let file = new_file(&path, w.max);
    let map = RawMap::new(&file, w.max);
    map.touch(0, w.step);
    mark(w.step);
    let mut len = w.step;
    while len < w.max {
        len += w.step;
        let (from, to) = w.touch_range(len);
        map.touch(from, to);
        mark(len);
    }
    drop(map);
    std::fs::remove_file(path).expect("remove");
}

const VARIANTS: [&str; 5] = [
    "shm_region",
    "shm_region_sparse",
    "reference",
    "memmap2",
    "floor",
];

fn run(variant: &str, dir: &Path, w: Workload, mark: impl FnMut(usize)) {
    match variant {
        "shm_region" => ours(dir, w, true, mark),
        "shm_region_sparse" => ours(dir, w, false, mark),
        "reference" => reference(dir, w, mark),
        "memmap2" => memmap2(dir, w, mark),
        "floor" => floor(dir, w, mark),
        _ => unreachable!(),
    }
}

fn bench(c: &mut Criterion, w: Workload) {
    let mut g = c.benchmark_group(w.name);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for variant in VARIANTS {
        g.bench_function(BenchmarkId::from_parameter(variant), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = support::scratch();
                    let start = Instant::now();
                    run(variant, dir.path(), w, |len| {
                        black_box(len);
                    });
                    total += start.elapsed();
                }
                total
            });
        });
    }
    g.finish();
}

/// One pass of each variant with the cumulative time after each step.
fn write_cumulative_csv(w: Workload) {
    let mut columns = Vec::new();
    for variant in VARIANTS {
        let dir = support::scratch();
        let start = Instant::now();
        let mut points = Vec::new();
        run(variant, dir.path(), w, |len| {
            points.push((len, start.elapsed()))
        });
        columns.push(points);
    }
    let mut csv = format!("size_mib,{}\n", VARIANTS.join(","));
    for i in 0..columns[0].len() {
        csv += &format!("{}", columns[0][i].0 >> 20);
        for col in &columns {
            csv += &format!(",{:.6}", col[i].1.as_secs_f64());
        }
        csv += "\n";
    }
    let out = support::out_dir();
    std::fs::create_dir_all(&out).expect("criterion dir");
    let path = out.join("grow_in_use_cumulative.csv");
    std::fs::write(&path, csv).expect("write csv");
    println!("wrote {}", path.display());
}

fn main() {
    let mut c = support::criterion();
    if std::env::var_os("GROW_CSV").is_some() {
        write_cumulative_csv(ONE_MIB_STEPS);
    }
    bench(&mut c, ONE_MIB_STEPS);
    bench(&mut c, SMALL_STEPS);
    c.final_summary();

    for w in [ONE_MIB_STEPS, SMALL_STEPS] {
        let g = w.name;
        let targets: [Option<f64>; 3] = if w.whole {
            [Some(1.0 / 20.0), Some(1.5), Some(1.0)]
        } else {
            [None, None, None]
        };
        support::report(
            g,
            &[
                Row {
                    what: "shm_region vs reference (new map + munmap)",
                    ours: (g, "shm_region"),
                    other: (g, "reference"),
                    max_ratio: targets[0],
                },
                Row {
                    what: "shm_region vs floor (pre-sized mapping)",
                    ours: (g, "shm_region"),
                    other: (g, "floor"),
                    max_ratio: targets[1],
                },
                Row {
                    what: "shm_region vs memmap2 remap",
                    ours: (g, "shm_region"),
                    other: (g, "memmap2"),
                    max_ratio: targets[2],
                },
                Row {
                    what: "shm_region_sparse vs floor",
                    ours: (g, "shm_region_sparse"),
                    other: (g, "floor"),
                    max_ratio: None,
                },
                Row {
                    what: "shm_region_sparse vs memmap2 remap",
                    ours: (g, "shm_region_sparse"),
                    other: (g, "memmap2"),
                    max_ratio: None,
                },
            ],
        );
    }
}
