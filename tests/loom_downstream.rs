//! A downstream protocol checked with loom: a single-producer
//! single-consumer ring over an in-memory [`Region`], with the region grown
//! while the ring is in use.
//!
//! Run with (as CI does):
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --test loom_downstream -- --nocapture
//! ```
//!
//! Built with `--cfg loom`, `Region::atomic_u32` hands out loom atomics and
//! `read_at`/`write_at` go through relaxed loom accesses, one per 4-byte
//! word, so loom explores every stale value an under-synchronized reader
//! may see; `resize`, `peer`, `check_and_remap` and `refresh` run the
//! crate's protocol over loom's primitives. The correct ring (tail stored
//! with `Release`, loaded with `Acquire`) passes; the same ring with either
//! side `Relaxed` is caught. Each model prints its iteration count and wall
//! time.
#![cfg(loom)]
#![cfg(unix)]

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Instant;

use loom::thread;
use shm_region::{ErrorKind, MmapOptions, MmapRegion, Region};

/// Header word: records published by the producer.
const TAIL: usize = 0;
/// Header word: records taken by the consumer.
const HEAD: usize = 4;
/// Where the slots start, and the bytes per slot.
const SLOTS_AT: usize = 8;
const SLOT: usize = 8;
/// Slots in the ring once grown. The region starts with one slot, and the
/// producer grows it when it first needs the second.
const SLOTS: usize = 2;
/// Bytes per record: one whole 4-byte word and half of the next, so copies
/// use both a whole-word store and a partial-word update.
const RECORD: usize = 6;
/// Records sent: the third reuses slot 0, so the producer waits for the
/// consumer once.
const RECORDS: u32 = 3;
/// The region's length before and after the growth, and its capacity
/// (`address_space`): 24 bytes, so 6 loom `AtomicU32`s and 3 `AtomicU64`s.
const INITIAL: usize = SLOTS_AT + SLOT;
const GROWN: usize = SLOTS_AT + SLOTS * SLOT;

/// Record `i`'s bytes, none of them zero (a stale slot reads as zeros).
fn record(i: u32) -> [u8; RECORD] {
    let b = u8::try_from(i + 1).unwrap() * 0x10;
    [b | 1, b | 2, b | 3, b | 4, b | 5, b | 6]
}

fn slot_offset(i: u32) -> usize {
    SLOTS_AT + (usize::try_from(i).unwrap() % SLOTS) * SLOT
}

/// One execution of the ring: the producer (a spawned thread) owns the
/// region and grows it; the consumer (this thread) has a `peer` handle.
/// `publish` is the ordering of the producer's tail store, `observe` that
/// of the consumer's tail load.
fn ring(publish: Ordering, observe: Ordering) {
    let host = MmapOptions::new()
        .address_space(GROWN)
        .in_memory(INITIAL)
        .unwrap();
    let mut peer = host.peer().unwrap();

    let producer = thread::spawn(move || {
        let mut host = host;
        for i in 0..RECORDS {
            let at = slot_offset(i);
            if at + SLOT > host.len() {
                // The ring needs its next slot: grow the region (in place).
                host.resize(GROWN).unwrap();
            }
            let r = host.region();
            // Wait for the slot to be free (the consumer's head store is
            // `Release`, so its reads of the slot are done).
            let head = r.atomic_u32(HEAD).unwrap();
            while usize::try_from(i - head.load(Ordering::Acquire)).unwrap() >= SLOTS {
                thread::yield_now();
            }
            r.write_at(at, &record(i)).unwrap();
            r.atomic_u32(TAIL).unwrap().store(i + 1, publish);
        }
    });

    let mut view: Region = peer.region();
    for i in 0..RECORDS {
        while view.atomic_u32(TAIL).unwrap().load(observe) <= i {
            thread::yield_now();
        }
        let at = slot_offset(i);
        if at + RECORD > view.len() {
            // The producer grew the region before publishing this record:
            // follow the growth, as an attached process would.
            assert!(peer.check_and_remap().unwrap(), "growth not seen");
            assert!(view.refresh());
            assert_eq!(view.len(), GROWN);
        }
        let mut got = [0; RECORD];
        view.read_at(at, &mut got).unwrap();
        assert_eq!(got, record(i), "record {i} read stale");
        view.atomic_u32(HEAD)
            .unwrap()
            .store(i + 1, Ordering::Release);
    }
    producer.join().unwrap();
}

thread_local! {
    /// Set while a model that must fail runs on this thread: its panic is
    /// reported in one line by [`check`] instead of by the panic hook.
    static EXPECTING_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once) a panic hook that stays quiet for expected panics and
/// defers to the previous hook for every other one. Loom runs a model's
/// threads on the test's own thread, so the flag is seen there.
fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPECTING_PANIC.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f` as a loom model (`LOOM_MAX_PREEMPTIONS`, 3 if unset), prints
/// its iteration count and wall time, and returns the iteration count and,
/// if the model failed, its panic message.
fn check(name: &str, expect_failure: bool, f: fn()) -> (usize, Option<String>) {
    quiet_expected_panics();
    let iterations = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let bound = builder.preemption_bound;
    EXPECTING_PANIC.with(|e| e.set(expect_failure));
    let start = Instant::now();
    let outcome = std::panic::catch_unwind(move || {
        builder.check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            f();
        });
    });
    let elapsed = start.elapsed();
    EXPECTING_PANIC.with(|e| e.set(false));
    let n = iterations.load(Ordering::Relaxed);
    let failure = outcome.err().map(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    });
    let verdict = match &failure {
        None => "passed".to_owned(),
        Some(msg) => format!("failed ({})", msg.replace('\n', " ")),
    };
    eprintln!(
        "loom model {name}: {verdict} after {n} iterations in {elapsed:.2?} \
         (preemption bound {bound:?})"
    );
    (n, failure)
}

#[test]
fn ring_with_release_acquire_tail_passes_across_a_growth() {
    let (n, failure) = check("ring, release/acquire", false, || {
        ring(Ordering::Release, Ordering::Acquire);
    });
    assert_eq!(failure, None, "the correct ring failed");
    assert!(n > 1, "loom explored one interleaving only");
}

#[test]
fn ring_with_relaxed_tail_store_is_caught() {
    let (_, failure) = check("ring, tail stored Relaxed", true, || {
        ring(Ordering::Relaxed, Ordering::Acquire);
    });
    let failure = failure.expect("loom missed the relaxed tail store");
    assert!(
        failure.contains("read stale") || failure.contains("growth not seen"),
        "the model failed for another reason: {failure}"
    );
}

#[test]
fn ring_with_relaxed_tail_load_is_caught() {
    let (_, failure) = check("ring, tail loaded Relaxed", true, || {
        ring(Ordering::Release, Ordering::Relaxed);
    });
    let failure = failure.expect("loom missed the relaxed tail load");
    assert!(
        failure.contains("read stale") || failure.contains("growth not seen"),
        "the model failed for another reason: {failure}"
    );
}

#[test]
fn file_backed_constructors_are_unsupported_under_loom() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment");
    let kind = |r: Result<MmapRegion, shm_region::Error>| r.unwrap_err().kind();
    let opts = MmapOptions::new();
    assert_eq!(
        kind(opts.create(&path, 64, shm_region::FileCleanup::Manual)),
        ErrorKind::Unsupported
    );
    assert_eq!(kind(opts.create_sealed("x", 64)), ErrorKind::Unsupported);
    assert_eq!(
        opts.stage(&path, 64).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(kind(opts.attach(&path)), ErrorKind::Unsupported);
    assert_eq!(kind(opts.attach_read_only(&path)), ErrorKind::Unsupported);
    let fd = || std::os::fd::OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    assert_eq!(kind(opts.attach_fd(fd())), ErrorKind::Unsupported);
    assert_eq!(kind(opts.attach_fd_read_only(fd())), ErrorKind::Unsupported);
    #[cfg(target_os = "linux")]
    assert_eq!(
        shm_region::Frozen::attach_fd(fd()).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert!(!path.exists(), "nothing was created");
}

#[test]
#[cfg(target_os = "linux")]
fn freeze_and_share_read_only_of_an_in_memory_region_are_unsupported_under_loom() {
    loom::model(|| {
        let host = MmapOptions::new().address_space(64).in_memory(16).unwrap();
        assert_eq!(
            host.share_read_only().unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        let err = host.freeze().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        let host = err.into_region().unwrap();
        host.region().write_at(0, b"still usable").unwrap();
    });
}

#[test]
fn in_memory_accessors_are_loom_modelled() {
    loom::model(|| {
        let mut host = MmapOptions::new().address_space(64).in_memory(16).unwrap();
        let r = host.region();
        r.write_at(1, b"abcdef").unwrap();
        let mut b = [0; 8];
        r.read_at(0, &mut b).unwrap();
        assert_eq!(&b, b"\0abcdef\0");
        assert_eq!(
            r.load_u32(4, Ordering::Acquire).unwrap(),
            u32::from_ne_bytes(*b"def\0")
        );
        // The 8-byte atomics are separate loom objects (see shm_region::guide::verifying).
        r.atomic_u64(8).unwrap().store(7, Ordering::Release);
        assert_eq!(r.load_u64(8, Ordering::Acquire).unwrap(), 7);
        assert_eq!(r.load_u32(8, Ordering::Acquire).unwrap(), 0);
        assert_eq!(
            r.read_at(12, &mut b).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
        host.resize(64).unwrap();
        assert_eq!(
            host.resize(65).unwrap_err().kind(),
            ErrorKind::Unsupported,
            "past the capacity"
        );
        host.region().write_at(60, b"tail").unwrap();
    });
}
