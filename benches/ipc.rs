//! IPC over a region: the append-only log of `examples/spsc_log.rs` over
//! shm-region next to the same log over memmap2, and the cross-process
//! wake-up latency of `wait_u32`/`wake_u32` next to a pipe.
//!
//! **Log throughput.** One iteration writes `RECORDS` records (a 16-byte
//! header: seq `u64`, len `u32`, a check word `u32`; then a 16, 32, 64 or
//! 128-byte payload) one after the other from the start of a pre-faulted
//! 2.4 MiB file mapping on `/dev/shm`, storing the committed end after each
//! record, then reads them all back as a consumer does: load the committed
//! end, copy the header out, check seq, len and check word, copy the
//! payload out and fold two of its bytes into a sum. In one thread, so both
//! variants do exactly the same work and the numbers show the per-record
//! cost of the access path (the cross-process hand-over is the second
//! part). shm-region: one `write_at` per record (header and payload
//! together), the committed end through a `SharedU64` (`Release` store,
//! `Acquire` load), two `read_at` per record. memmap2: `copy_from_slice`
//! into and out of the `&mut [u8]` of a `MmapMut`, the committed end as
//! little-endian bytes in the same slice.
//!
//! **Wake-up latency.** A round trip between this process and a child
//! process of this bench binary (started with `current_exe()` and a role in
//! the environment variable `SHM_REGION_IPC_CHILD`, since criterion owns the
//! arguments): futex: store a counter in a region word and `wake_u32`; the
//! child, asleep in `wait_u32`, stores it back into another word and wakes
//! the parent, asleep in `wait_u32`. Pipe: one byte down a pipe to the
//! child's stdin, one byte back through its stdout, each side blocked in
//! `read`.
//!
//! Besides criterion's medians, the run times each variant itself with the
//! variants interleaved (rounds alternate between them), so that the load
//! of a shared machine hits both alike: per-iteration medians for the log,
//! and median, p90, p99 and p99.9 of individual round trips for the
//! wake-ups. Criterion's measurement and warm-up times are set to 3 s and
//! 1 s here (command-line flags override them).
#![deny(unsafe_code)]

#[path = "support/mod.rs"]
mod support;

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use memmap2::MmapMut;
use shm_region::{FileCleanup, MmapRegion, Region, SharedU32, SharedU64};
use support::Row;

/// Records per iteration of the log benchmark.
const RECORDS: usize = 16_384;
const HEADER: usize = 16;
const PAYLOADS: [usize; 4] = [16, 32, 64, 128];
const MAX_PAYLOAD: usize = 128;
/// Where the committed end is stored; records start at `DATA`.
const COMMIT: usize = 0;
const DATA: usize = 64;
const LOG_SIZE: usize = DATA + RECORDS * (HEADER + MAX_PAYLOAD);

/// The child's role (`futex` or `pipe`) and the region's path.
const CHILD_ENV: &str = "SHM_REGION_IPC_CHILD";
const PATH_ENV: &str = "SHM_REGION_IPC_PATH";
/// Region words of the futex ping-pong.
const TO_CHILD: usize = 0;
const TO_PARENT: usize = 4;
const STOP: usize = 8;

fn records() -> u64 {
    u64::try_from(RECORDS).unwrap()
}

fn log_group(payload: usize) -> String {
    format!("ipc_log_{payload}b")
}

fn check_word(seq: u64, len: u32) -> u32 {
    // The low half of seq, mixed with the length; truncation intended.
    let low = u32::from_le_bytes(seq.to_le_bytes()[..4].try_into().unwrap());
    low.rotate_left(7) ^ len ^ 0x5a5a_5a5a
}

fn record(payload: usize) -> Vec<u8> {
    let mut rec = vec![0u8; HEADER + payload];
    for (i, b) in rec[HEADER..].iter_mut().enumerate() {
        *b = u8::try_from(i % 251).unwrap() + 1;
    }
    rec
}

fn set_header(rec: &mut [u8], seq: u64, len: u32) {
    rec[0..8].copy_from_slice(&seq.to_le_bytes());
    rec[8..12].copy_from_slice(&len.to_le_bytes());
    rec[12..16].copy_from_slice(&check_word(seq, len).to_le_bytes());
}

/// Checks a header read back; returns the payload length.
fn parse_header(h: &[u8; HEADER], seq: u64, pos: usize, end: usize) -> usize {
    let got = u64::from_le_bytes(h[0..8].try_into().unwrap());
    let len32 = u32::from_le_bytes(h[8..12].try_into().unwrap());
    let check = u32::from_le_bytes(h[12..16].try_into().unwrap());
    let len = usize::try_from(len32).unwrap();
    assert!(
        got == seq && check == check_word(seq, len32) && len <= MAX_PAYLOAD,
        "bad record {seq}"
    );
    assert!(
        pos + HEADER + len <= end,
        "record {seq} past the committed end"
    );
    len
}

/// One iteration over shm-region: write `RECORDS` records, read them back.
fn log_shm(view: &Region, committed: &SharedU64, rec: &mut [u8], out: &mut [u8]) -> u64 {
    let payload = rec.len() - HEADER;
    let len32 = u32::try_from(payload).unwrap();
    let mut pos = DATA;
    for seq in 0..records() {
        set_header(rec, seq, len32);
        view.write_at(pos, rec).unwrap();
        pos += rec.len();
        committed.store(u64::try_from(pos).unwrap(), Ordering::Release);
    }
    let mut sum = 0u64;
    let mut pos = DATA;
    let mut h = [0u8; HEADER];
    for seq in 0..records() {
        let end = usize::try_from(committed.load(Ordering::Acquire)).unwrap();
        view.read_at(pos, &mut h).unwrap();
        let len = parse_header(&h, seq, pos, end);
        let p = &mut out[..len];
        view.read_at(pos + HEADER, p).unwrap();
        sum = sum.wrapping_add(u64::from(p[0]) + u64::from(p[len - 1]));
        pos += HEADER + len;
    }
    sum
}

/// The same iteration over memmap2's `&mut [u8]`.
fn log_memmap2(map: &mut [u8], rec: &mut [u8], out: &mut [u8]) -> u64 {
    let payload = rec.len() - HEADER;
    let len32 = u32::try_from(payload).unwrap();
    let mut pos = DATA;
    for seq in 0..records() {
        set_header(rec, seq, len32);
        map[pos..pos + rec.len()].copy_from_slice(rec);
        pos += rec.len();
        map[COMMIT..COMMIT + 8].copy_from_slice(&u64::try_from(pos).unwrap().to_le_bytes());
    }
    let mut sum = 0u64;
    let mut pos = DATA;
    let mut h = [0u8; HEADER];
    for seq in 0..records() {
        let end = u64::from_le_bytes(map[COMMIT..COMMIT + 8].try_into().unwrap());
        let end = usize::try_from(end).unwrap();
        h.copy_from_slice(&map[pos..pos + HEADER]);
        let len = parse_header(&h, seq, pos, end);
        let p = &mut out[..len];
        p.copy_from_slice(&map[pos + HEADER..pos + HEADER + len]);
        sum = sum.wrapping_add(u64::from(p[0]) + u64::from(p[len - 1]));
        pos += HEADER + len;
    }
    sum
}

/// The baseline's mapping. memmap2's own unsafety, not shm-region's.
#[allow(unsafe_code)]
fn map_baseline(file: &File) -> MmapMut {
    // SAFETY: memmap2 requires that the file is not truncated or modified
    // through another mapping or descriptor while mapped. It is a fresh
    // file in this benchmark's private temporary directory, mapped once,
    // and nothing else opens it.
    unsafe { MmapMut::map_mut(file) }.expect("map_mut")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The nearest-rank percentile of sorted values, `per_mille` / 10 percent.
fn percentile(sorted: &[f64], per_mille: usize) -> f64 {
    let rank = (per_mille * sorted.len()).div_ceil(1000).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn bench_log(c: &mut Criterion, dir: &Path) -> Vec<(usize, f64, f64)> {
    let host =
        MmapRegion::create(dir.join("log.shm"), LOG_SIZE, FileCleanup::Manual).expect("create");
    let view = host.region();
    view.write_at(0, &vec![0u8; LOG_SIZE]).expect("prefault");
    let committed = view.shared_u64(COMMIT).expect("shared_u64");

    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join("log.memmap2"))
        .expect("create");
    file.set_len(u64::try_from(LOG_SIZE).unwrap())
        .expect("set_len");
    let mut map = map_baseline(&file);
    map.fill(0); // prefault

    let mut out = vec![0u8; MAX_PAYLOAD];
    for payload in PAYLOADS {
        let mut rec = record(payload);
        let mut g = c.benchmark_group(log_group(payload));
        g.throughput(Throughput::Elements(records()));
        g.bench_function("shm_region", |b| {
            b.iter(|| log_shm(black_box(&view), &committed, &mut rec, &mut out));
        });
        g.bench_function("memmap2", |b| {
            b.iter(|| log_memmap2(black_box(&mut map), &mut rec, &mut out));
        });
        g.finish();
    }

    // Interleaved: rounds alternate between the variants (and which goes
    // first), so both see the same machine load.
    let mut results = Vec::new();
    for payload in PAYLOADS {
        let mut rec = record(payload);
        let (mut shm, mut mm) = (Vec::new(), Vec::new());
        for round in 0..60 {
            for variant in [round % 2, 1 - round % 2] {
                let t = Instant::now();
                if variant == 0 {
                    black_box(log_shm(black_box(&view), &committed, &mut rec, &mut out));
                    shm.push(t.elapsed().as_secs_f64());
                } else {
                    black_box(log_memmap2(black_box(&mut map), &mut rec, &mut out));
                    mm.push(t.elapsed().as_secs_f64());
                }
            }
        }
        results.push((payload, median(&mut shm), median(&mut mm)));
    }
    results
}

/// The futex child: answers each counter stored in `TO_CHILD` by storing
/// it in `TO_PARENT` and waking the parent, until `STOP`.
fn futex_child(path: &Path) {
    let region = MmapRegion::attach(path).expect("attach");
    let view = region.region();
    let to_child = view.shared_u32(TO_CHILD).expect("word");
    let to_parent = view.shared_u32(TO_PARENT).expect("word");
    let stop = view.shared_u32(STOP).expect("word");
    let parent = std::os::unix::process::parent_id();
    // The parent's counter starts at 0; it may have stored 1 already.
    let mut last = 0;
    loop {
        let v = to_child.load(Ordering::Acquire);
        if stop.load(Ordering::Acquire) != 0 {
            return;
        }
        if v == last {
            let woke = view
                .wait_u32(TO_CHILD, last, Some(Duration::from_secs(2)))
                .expect("wait");
            if !woke && std::os::unix::process::parent_id() != parent {
                return;
            }
            continue;
        }
        last = v;
        to_parent.store(v, Ordering::Release);
        view.wake_u32(TO_PARENT, 1).expect("wake");
    }
}

/// The pipe child: echoes each byte from stdin to stdout until EOF.
fn pipe_child() {
    let mut input = File::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .expect("stdin"),
    );
    let mut output = File::from(
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .expect("stdout"),
    );
    let mut b = [0u8; 1];
    while input.read(&mut b).expect("read") == 1 {
        output.write_all(&b).expect("write");
    }
}

struct Futex {
    view: Region,
    to_child: SharedU32,
    to_parent: SharedU32,
    counter: u32,
}

impl Futex {
    fn round_trip(&mut self) {
        let prev = self.counter;
        self.counter = prev.wrapping_add(1);
        self.to_child.store(self.counter, Ordering::Release);
        self.view.wake_u32(TO_CHILD, 1).expect("wake");
        loop {
            let v = self.to_parent.load(Ordering::Acquire);
            if v == self.counter {
                return;
            }
            let woke = self
                .view
                .wait_u32(TO_PARENT, v, Some(Duration::from_secs(5)))
                .expect("wait");
            assert!(woke, "the futex child did not answer within 5 s");
        }
    }
}

struct Pipe {
    to_child: ChildStdin,
    from_child: ChildStdout,
}

impl Pipe {
    fn round_trip(&mut self) {
        self.to_child.write_all(&[1]).expect("write");
        let mut b = [0u8; 1];
        self.from_child.read_exact(&mut b).expect("read");
    }
}

fn spawn_child(role: &str, path: &Path, piped: bool) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.env(CHILD_ENV, role).env(PATH_ENV, path);
    if piped {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    } else {
        cmd.stdin(Stdio::null());
    }
    cmd.spawn().expect("spawn child")
}

struct Latency {
    futex: [f64; 5],
    pipe: [f64; 5],
    samples: usize,
}

fn bench_wake(c: &mut Criterion, dir: &Path) -> Latency {
    let path = dir.join("wake.shm");
    let region = MmapRegion::create(&path, 4096, FileCleanup::Manual).expect("create");
    let view = region.region();
    let mut futex = Futex {
        to_child: view.shared_u32(TO_CHILD).expect("word"),
        to_parent: view.shared_u32(TO_PARENT).expect("word"),
        view: view.clone(),
        counter: 0,
    };
    let mut futex_child = spawn_child("futex", &path, false);
    let mut pipe_child = spawn_child("pipe", &path, true);
    let mut pipe = Pipe {
        to_child: pipe_child.stdin.take().expect("stdin"),
        from_child: pipe_child.stdout.take().expect("stdout"),
    };

    let mut g = c.benchmark_group("ipc_wake_round_trip");
    g.bench_function("futex", |b| b.iter(|| futex.round_trip()));
    g.bench_function("pipe", |b| b.iter(|| pipe.round_trip()));
    g.finish();

    // Individual round trips, in alternating blocks.
    const BLOCK: usize = 500;
    const BLOCKS: usize = 40;
    let (mut f, mut p) = (Vec::new(), Vec::new());
    for block in 0..BLOCKS {
        for variant in [block % 2, 1 - block % 2] {
            for _ in 0..BLOCK {
                let t = Instant::now();
                if variant == 0 {
                    futex.round_trip();
                    f.push(t.elapsed().as_secs_f64());
                } else {
                    pipe.round_trip();
                    p.push(t.elapsed().as_secs_f64());
                }
            }
        }
    }

    view.atomic_u32(STOP)
        .expect("word")
        .store(1, Ordering::Release);
    futex.to_child.fetch_add(1, Ordering::Release);
    view.wake_u32(TO_CHILD, 1).expect("wake");
    drop(pipe); // EOF for the pipe child
    assert!(
        futex_child.wait().expect("wait").success(),
        "futex child failed"
    );
    assert!(
        pipe_child.wait().expect("wait").success(),
        "pipe child failed"
    );

    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        [500, 900, 990, 999, 1000].map(|q| percentile(v, q))
    };
    Latency {
        futex: stats(&mut f),
        pipe: stats(&mut p),
        samples: BLOCK * BLOCKS / 2,
    }
}

fn main() {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        let path = std::env::var_os(PATH_ENV).expect("path");
        match role.as_str() {
            "futex" => futex_child(Path::new(&path)),
            "pipe" => pipe_child(),
            other => panic!("unknown child role {other}"),
        }
        return;
    }

    let mut c = Criterion::default()
        .output_directory(&support::out_dir())
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let dir = support::scratch();
    let log = bench_log(&mut c, dir.path());
    let wake = bench_wake(&mut c, dir.path());
    c.final_summary();

    let groups: Vec<String> = PAYLOADS.iter().map(|&p| log_group(p)).collect();
    let whats: Vec<String> = PAYLOADS
        .iter()
        .map(|p| format!("log, {p}-byte payload, shm-region vs memmap2"))
        .collect();
    let rows: Vec<Row<'_>> = groups
        .iter()
        .zip(&whats)
        .map(|(g, what)| Row {
            what,
            ours: (g, "shm_region"),
            other: (g, "memmap2"),
            // Throughput >= 0.9x memmap2's: time <= 1/0.9, rounded down.
            max_ratio: Some(1.111),
        })
        .collect();
    support::report("ipc log (criterion medians)", &rows);

    println!("\n=== ipc log, interleaved rounds (60 each, alternating): medians ===");
    println!(
        "payload  records/iter  shm-region       memmap2          time ratio  throughput ratio"
    );
    for (payload, shm, mm) in &log {
        let rate = |t: f64| f64::from(u32::try_from(RECORDS).unwrap()) / t / 1e6;
        println!(
            "{payload:>5} B  {RECORDS:>12}  {:>8.1} us {:>5.1} M/s  {:>8.1} us {:>5.1} M/s  {:>9.3}x  {:>9.3}x{}",
            shm * 1e6,
            rate(*shm),
            mm * 1e6,
            rate(*mm),
            shm / mm,
            mm / shm,
            if mm / shm >= 0.9 { "" } else { "  (below 0.9x)" },
        );
    }

    println!(
        "\n=== wake-up round trip between two processes, interleaved blocks ({} each) ===",
        wake.samples
    );
    println!("variant  median      p90         p99         p99.9       max");
    for (name, s) in [("futex", wake.futex), ("pipe", wake.pipe)] {
        println!(
            "{name:<7}  {:>8.2} us {:>8.2} us {:>8.2} us {:>8.2} us {:>8.2} us",
            s[0] * 1e6,
            s[1] * 1e6,
            s[2] * 1e6,
            s[3] * 1e6,
            s[4] * 1e6
        );
    }
    println!("criterion medians (round trip):");
    for id in ["futex", "pipe"] {
        support::report_abs(
            &format!("  {id} round trip"),
            "ipc_wake_round_trip",
            id,
            None,
        );
    }
}
