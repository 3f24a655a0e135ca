//! A single-producer single-consumer log between two processes: an
//! append-only log in a region that the producer grows while the consumer
//! reads it, with the consumer asleep in an `EventCount` whenever it has
//! caught up.
//!
//! ```text
//! cargo run --example spsc_log              # 200,000 records
//! cargo run --release --example spsc_log -- 5000000
//! ```
//!
//! The producer creates the region in a fresh temporary directory (on
//! `/dev/shm` when there is one), spawns this binary again as the consumer
//! (`spsc_log consumer <path>`), which attaches by path, and writes records
//! of 0 to 255 payload bytes. Each record is `seq: u64`, `len: u32`,
//! `magic: u32`, `hash: u64` (little-endian, 24 bytes), then the payload;
//! `hash` is FNV-1a 64 over the seq, len and payload bytes. Both sides keep
//! a running checksum (FNV-1a over the record hashes) and compare them at
//! the end; any mismatch, and any failure of the consumer, is a non-zero
//! exit status.
//!
//! **An append-only log, no wrap-around.** Records are written once, one
//! after the other, and never overwritten: when the next record does not
//! fit, the producer doubles the region with `resize` (in place while it
//! fits the address-space reservation) instead of reusing consumed space.
//! So the producer never needs to wait for the consumer, and the consumer
//! never reads a byte the producer still writes.
//!
//! **Header** (the region's first 64 bytes, words reached through
//! `shared_u32`/`shared_u64` and an `EventCount`, which keep their mapping
//! alive across the views' `refresh`):
//!
//! | offset | word | written by |
//! |---|---|---|
//! | 0 | `MAGIC` (u64) | producer, before spawning the consumer |
//! | 8 | `EVENTS`, an `EventCount`: its sequence (u32, bumped by `notify` after every publish), then its sleeper count (u32 at 12) | producer; consumer (sleeper count) |
//! | 16 | `COMMITTED` (u64): end offset of the last complete record | producer |
//! | 24 | `TOTAL` (u64): records written, valid once `FINISHED` is 1 | producer |
//! | 32 | `PRODUCER_SUM` (u64): running checksum, valid once `FINISHED` is 1 | producer |
//! | 40 | `CONSUMER_SUM` (u64), 48 `CONSUMER_COUNT` (u64) | consumer, at the end |
//! | 56 | `CONSUMER_STATE` (u32): 1 attached, 2 results stored | consumer |
//! | 60 | `FINISHED` (u32) | producer |
//!
//! Records start at offset 64.
//!
//! **Publishing.** The producer writes a whole record (header and payload,
//! one `write_at`), then stores the record's end in `COMMITTED` with
//! `Release` and calls `EventCount::notify`. The consumer reads the event
//! count's sequence (`current`, `Acquire`), then `COMMITTED` (`Acquire`),
//! and reads only below `COMMITTED`: every byte there was written before
//! the `Release` store it synchronized with, so it never sees a record
//! half-written. `COMMITTED` is a peer's word, so the consumer checks it
//! (never backwards), follows growth with `ensure_len(committed)` (no
//! system call while it is mapped), and validates each record header
//! before using it.
//!
//! **No lost wake-up, no wake system call per record.** With nothing to
//! read, the consumer calls `wait(seen, spin, timeout)` with the sequence
//! `seen` it read before it found nothing: it returns at once if a notify
//! came since, else spins briefly, then counts itself as a sleeper and
//! sleeps in a futex wait until the sequence changes. `notify` bumps the
//! sequence and makes the wake system call only when a sleeper is
//! counted, so while the consumer keeps up (or spins) publishing costs an
//! atomic add, a fence and a load. The `EventCount` documentation explains
//! why no notify is lost between the consumer's check and its sleep. The
//! wait has a 1 s timeout only so that a consumer whose producer died
//! notices it and exits.
//!
//! Half-way through, the producer goes quiet for 50 ms: the consumer then
//! sleeps in `EventCount::wait`, and its CPU time (from `/proc/self/schedstat`
//! where there is one) shows it did not spin.

#![deny(unsafe_code)]

use std::error::Error;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shm_region::{EventCount, FileCleanup, MmapRegion, Region, SharedU32, SharedU64};

type Res<T = ()> = Result<T, Box<dyn Error>>;

const MAGIC_WORD: usize = 0;
/// The event count: its sequence here, its sleeper count at 12.
const EVENTS: usize = 8;
const COMMITTED: usize = 16;
const TOTAL: usize = 24;
const PRODUCER_SUM: usize = 32;
const CONSUMER_SUM: usize = 40;
const CONSUMER_COUNT: usize = 48;
const CONSUMER_STATE: usize = 56;
const FINISHED: usize = 60;
/// Where the first record starts.
const HEADER_LEN: usize = 64;

const MAGIC: u64 = u64::from_le_bytes(*b"SPSCLOG1");
const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"REC1");
const RECORD_HEADER: usize = 24;
const MAX_PAYLOAD: usize = 255;
const INITIAL_SIZE: usize = 4096;
const DEFAULT_RECORDS: u64 = 200_000;
/// How long the consumer spins before it sleeps (capped and backed off by
/// `EventCount::wait`; no spin at all on a single CPU).
const SPIN: Duration = Duration::from_micros(20);
/// How long the producer goes quiet half-way through.
const PAUSE: Duration = Duration::from_millis(50);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64, continued from `hash` over `bytes`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// A record's hash: over its seq, len and payload.
fn record_hash(seq: u64, len: u32, payload: &[u8]) -> u64 {
    let h = fnv1a(FNV_OFFSET, &seq.to_le_bytes());
    fnv1a(fnv1a(h, &len.to_le_bytes()), payload)
}

/// The running checksum after one more record.
fn fold(running: u64, record_hash: u64) -> u64 {
    fnv1a(running, &record_hash.to_le_bytes())
}

/// A 64-bit mixing function (the splitmix64 finalizer): the payload
/// generator, deterministic per record.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Builds record `seq` (header and payload) into `buf`; returns its hash.
fn build_record(seq: u64, buf: &mut Vec<u8>) -> Res<u64> {
    let modulus = u64::try_from(MAX_PAYLOAD)? + 1;
    let len = usize::try_from(mix(seq) % modulus)?;
    buf.clear();
    buf.resize(RECORD_HEADER, 0);
    let mut state = mix(seq ^ 0x5eed);
    while buf.len() < RECORD_HEADER + len {
        state = mix(state);
        let take = (RECORD_HEADER + len - buf.len()).min(8);
        buf.extend_from_slice(&state.to_le_bytes()[..take]);
    }
    let len32 = u32::try_from(len)?;
    let hash = record_hash(seq, len32, &buf[RECORD_HEADER..]);
    buf[0..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..12].copy_from_slice(&len32.to_le_bytes());
    buf[12..16].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
    buf[16..24].copy_from_slice(&hash.to_le_bytes());
    Ok(hash)
}

/// The header's shared words.
struct Words {
    events: EventCount,
    committed: SharedU64,
    total: SharedU64,
    producer_sum: SharedU64,
    consumer_sum: SharedU64,
    consumer_count: SharedU64,
    consumer_state: SharedU32,
    finished: SharedU32,
}

impl Words {
    fn new(r: &Region) -> Res<Self> {
        Ok(Self {
            events: r.event_count(EVENTS)?,
            committed: r.shared_u64(COMMITTED)?,
            total: r.shared_u64(TOTAL)?,
            producer_sum: r.shared_u64(PRODUCER_SUM)?,
            consumer_sum: r.shared_u64(CONSUMER_SUM)?,
            consumer_count: r.shared_u64(CONSUMER_COUNT)?,
            consumer_state: r.shared_u32(CONSUMER_STATE)?,
            finished: r.shared_u32(FINISHED)?,
        })
    }
}

/// CPU time this process's main thread has used, where Linux reports it.
fn cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        // Precision loss above 2^53 records is irrelevant for a rate.
        #[allow(clippy::cast_precision_loss)]
        let count = count as f64;
        count / secs
    } else {
        f64::INFINITY
    }
}

/// Kills and reaps the consumer if the producer returns early.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn producer(records: u64) -> Res {
    let dir = tempfile::Builder::new()
        .prefix("spsc_log")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())?;
    let path = dir.path().join("log.shm");
    let mut log = MmapRegion::create(&path, INITIAL_SIZE, FileCleanup::Manual)?;
    let mut view = log.region();
    let words = Words::new(&view)?;
    view.atomic_u64(MAGIC_WORD)?.store(MAGIC, Ordering::Relaxed);
    words
        .committed
        .store(u64::try_from(HEADER_LEN)?, Ordering::Release);
    println!(
        "producer: created {} ({} bytes), {records} records to write",
        path.display(),
        log.len()
    );

    let mut child = ChildGuard(
        Command::new(std::env::current_exe()?)
            .arg("consumer")
            .arg(&path)
            .spawn()?,
    );
    // Wait (asleep) for the consumer to attach: it stores 1 and wakes us.
    let deadline = Instant::now() + Duration::from_secs(30);
    while words.consumer_state.load(Ordering::Acquire) == 0 {
        if let Some(status) = child.0.try_wait()? {
            return Err(format!("consumer exited before attaching: {status}").into());
        }
        if Instant::now() > deadline {
            return Err("consumer did not attach within 30 s".into());
        }
        view.wait_u32(CONSUMER_STATE, 0, Some(Duration::from_millis(100)))?;
    }

    let mut buf = Vec::with_capacity(RECORD_HEADER + MAX_PAYLOAD);
    let mut pos = HEADER_LEN;
    let mut running = FNV_OFFSET;
    let (mut grows, mut notifies, mut woken) = (0u32, 0u64, 0usize);
    let mut publish = |end: usize| -> Res {
        words
            .committed
            .store(u64::try_from(end)?, Ordering::Release);
        // A wake system call only while the consumer is counted asleep.
        notifies += 1;
        woken += words.events.notify()?;
        Ok(())
    };
    let start = Instant::now();
    let mut paused = Duration::ZERO;
    for seq in 0..records {
        let hash = build_record(seq, &mut buf)?;
        let end = pos.checked_add(buf.len()).ok_or("log offset overflow")?;
        if end > log.len() {
            let mut size = log.len();
            while size < end {
                size = size.checked_mul(2).ok_or("log size overflow")?;
            }
            log.resize(size)?;
            view.refresh();
            grows += 1;
        }
        view.write_at(pos, &buf)?;
        pos = end;
        running = fold(running, hash);
        publish(pos)?;
        if seq == records / 2 {
            let t = Instant::now();
            std::thread::sleep(PAUSE);
            paused += t.elapsed();
        }
    }
    words.total.store(records, Ordering::Relaxed);
    words.producer_sum.store(running, Ordering::Relaxed);
    words.finished.store(1, Ordering::Release);
    publish(pos)?;
    let writing = start.elapsed().saturating_sub(paused);

    let status = child.0.wait()?;
    let elapsed = start.elapsed();
    // Printed after the consumer exits, so the two outputs do not interleave.
    println!(
        "producer: wrote {records} records ({} bytes) in {:.1} ms (pause excluded): {:.0} records/s",
        pos - HEADER_LEN,
        writing.as_secs_f64() * 1e3,
        per_second(records, writing),
    );
    println!(
        "producer: grew {grows} times by doubling to {} bytes (generation {}); \
         notified {notifies} times, which woke the consumer {woken} times",
        log.len(),
        log.generation(),
    );
    if !status.success() {
        return Err(format!("consumer failed: {status}").into());
    }
    if words.consumer_state.load(Ordering::Acquire) != 2 {
        return Err("consumer exited without storing its results".into());
    }
    let count = words.consumer_count.load(Ordering::Relaxed);
    let sum = words.consumer_sum.load(Ordering::Relaxed);
    println!(
        "producer: end to end {records} records in {:.1} ms ({:.0} records/s, the {} ms pause excluded)",
        elapsed.as_secs_f64() * 1e3,
        per_second(records, elapsed.saturating_sub(paused)),
        PAUSE.as_millis(),
    );
    println!("producer: checksum {running:016x}, consumer's {sum:016x}, {count} records verified");
    if count != records || sum != running {
        return Err("MISMATCH between producer and consumer".into());
    }
    println!("checksums match");
    Ok(())
}

/// Reads, checks and folds the record at `pos`, which must end at or
/// before `committed`; returns the next record's offset.
fn read_record(
    view: &Region,
    pos: usize,
    committed: usize,
    expected_seq: u64,
    payload: &mut Vec<u8>,
) -> Res<(usize, u64)> {
    let mut header = [0u8; RECORD_HEADER];
    if pos.checked_add(RECORD_HEADER).is_none_or(|e| e > committed) {
        return Err(format!("record {expected_seq}: header past the committed end").into());
    }
    view.read_at(pos, &mut header)?;
    // One copy of the header, checked, then used: the producer may not
    // change it, but a peer's bytes are validated before they are trusted.
    let seq = u64::from_le_bytes(header[0..8].try_into()?);
    let len32 = u32::from_le_bytes(header[8..12].try_into()?);
    let magic = u32::from_le_bytes(header[12..16].try_into()?);
    let hash = u64::from_le_bytes(header[16..24].try_into()?);
    if magic != RECORD_MAGIC || seq != expected_seq {
        return Err(format!("record {expected_seq} at {pos}: magic {magic:08x}, seq {seq}").into());
    }
    let len = usize::try_from(len32)?;
    if len > MAX_PAYLOAD {
        return Err(format!("record {seq}: length {len} over {MAX_PAYLOAD}").into());
    }
    // `pos + RECORD_HEADER <= committed` was checked above.
    let end = (pos + RECORD_HEADER)
        .checked_add(len)
        .filter(|&e| e <= committed)
        .ok_or_else(|| format!("record {seq}: ends past the committed end"))?;
    payload.resize(len, 0);
    view.read_at(pos + RECORD_HEADER, payload)?;
    let got = record_hash(seq, len32, payload);
    if got != hash {
        return Err(format!("record {seq}: hash {got:016x}, header says {hash:016x}").into());
    }
    Ok((end, hash))
}

/// The process that started this one (Unix), to notice a producer that
/// died; `None` where std cannot tell (Windows): there the consumer gives
/// up after 60 s with no record and no notify.
fn parent_id() -> Option<u32> {
    #[cfg(unix)]
    return Some(std::os::unix::process::parent_id());
    #[cfg(not(unix))]
    return None;
}

fn consumer(path: &Path) -> Res {
    let wall = Instant::now();
    let cpu_start = cpu_time();
    let mut log = MmapRegion::attach(path)?;
    let mut view = log.region();
    if view.load_u64(MAGIC_WORD, Ordering::Relaxed)? != MAGIC {
        return Err("not a spsc_log region".into());
    }
    let words = Words::new(&view)?;
    words.consumer_state.store(1, Ordering::Release);
    view.wake_u32(CONSUMER_STATE, 1)?;
    let parent = parent_id();
    let mut idle = 0u32;

    let mut pos = HEADER_LEN;
    let mut seq = 0u64;
    let mut running = FNV_OFFSET;
    let mut payload = Vec::with_capacity(MAX_PAYLOAD);
    let (mut remaps, mut waits) = (0u32, 0u64);
    let mut asleep = Duration::ZERO;
    loop {
        let seen = words.events.current();
        let finished = words.finished.load(Ordering::Acquire) == 1;
        let committed = usize::try_from(words.committed.load(Ordering::Acquire))?;
        if committed < pos {
            return Err(format!("committed end went back from {pos} to {committed}").into());
        }
        if committed > pos {
            // Map at least the committed bytes: no system call if they are.
            if log.ensure_len(committed)? {
                view.refresh();
                remaps += 1;
            }
            while pos < committed {
                let (next, hash) = read_record(&view, pos, committed, seq, &mut payload)?;
                running = fold(running, hash);
                pos = next;
                seq += 1;
            }
            continue;
        }
        if finished {
            break;
        }
        // Nothing to read: wait for a notify after `seen`.
        let t = Instant::now();
        let woke = words
            .events
            .wait(seen, SPIN, Some(Duration::from_secs(1)))?;
        asleep += t.elapsed();
        waits += 1;
        if woke.is_some() {
            idle = 0;
        } else if parent_id() != parent {
            return Err("the producer is gone".into());
        } else {
            idle += 1;
            if idle >= 60 {
                return Err("no record and no notify from the producer for 60 s".into());
            }
        }
    }

    let total = words.total.load(Ordering::Relaxed);
    let producer_sum = words.producer_sum.load(Ordering::Relaxed);
    words.consumer_sum.store(running, Ordering::Relaxed);
    words.consumer_count.store(seq, Ordering::Relaxed);
    words.consumer_state.store(2, Ordering::Release);
    let wall = wall.elapsed();
    let cpu = match (cpu_start, cpu_time()) {
        (Some(a), Some(b)) => format!("{:.1} ms", b.saturating_sub(a).as_secs_f64() * 1e3),
        _ => "unknown".to_string(),
    };
    println!(
        "consumer: verified {seq} records in {:.1} ms wall, {cpu} CPU; followed {remaps} growths \
         with ensure_len; waited {waits} times in EventCount::wait, {:.1} ms in all",
        wall.as_secs_f64() * 1e3,
        asleep.as_secs_f64() * 1e3,
    );
    if seq != total || running != producer_sum {
        return Err(format!(
            "consumer: MISMATCH: {seq} records, checksum {running:016x}; \
             producer wrote {total}, checksum {producer_sum:016x}"
        )
        .into());
    }
    Ok(())
}

fn main() -> Res {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some("consumer") => consumer(Path::new(args.get(1).ok_or("consumer needs a path")?)),
        Some(n) => producer(n.parse().map_err(|e| format!("record count {n:?}: {e}"))?),
        None => producer(DEFAULT_RECORDS),
    }
}
