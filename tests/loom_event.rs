//! Loom models of `EventCount` over an in-memory region (whose words are
//! loom atomics under `--cfg loom`, see `src/sys/loom_memory.rs`): the
//! crate's real `notify` and `wait`, sleeping in the loom futex model,
//! where a sleep without a timeout blocks until a notify wakes it. A lost
//! wake-up is then a thread blocked for ever, which loom reports as a
//! deadlock.
//!
//! Run with (as CI does):
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --test loom_event -- --nocapture
//! ```
#![cfg(loom)]
#![cfg(unix)]

mod common;
use common::model;

use std::sync::atomic::Ordering;
use std::time::Duration;

use loom::thread;
use shm_region::{EventCount, MmapRegion, Region};

/// The sequence at 0, the sleeper count at 4, a flag at 8.
const EVENTS: usize = 0;
const SLEEPERS: usize = 4;
const FLAG: usize = 8;

/// The consumer: reads the sequence, then the flag, and waits with the
/// sequence it read while the flag is 0. Every `Some` it gets is a value
/// other than the one it waited with. Returns how many waits timed out.
fn consume(view: &Region, events: &EventCount, timeout: Option<Duration>) -> usize {
    let mut timeouts = 0;
    loop {
        let seen = events.current();
        if view.load_u32(FLAG, Ordering::Acquire).unwrap() != 0 {
            return timeouts;
        }
        match events
            .wait(seen, Duration::from_micros(10), timeout)
            .unwrap()
        {
            Some(now) => assert_ne!(now, seen, "a wait returned the value it waited on"),
            None => {
                assert!(timeout.is_some(), "a wait without a timeout timed out");
                timeouts += 1;
            }
        }
    }
}

/// The producer: stores the flag, then notifies.
fn produce(view: &Region, events: &EventCount) {
    view.atomic_u32(FLAG).unwrap().store(1, Ordering::Release);
    events.notify().unwrap();
}

fn setup() -> (MmapRegion, Region, EventCount) {
    let host = MmapRegion::in_memory(16).unwrap();
    let view = host.region();
    let events = view.event_count(EVENTS).unwrap();
    (host, view, events)
}

/// Model 1. A consumer waits without a timeout while a producer stores a
/// flag and notifies. Proves, for the crate's real `notify` and `wait`:
/// in every interleaving the consumer ends (a notify whose sleeper count
/// read missed the consumer's announcement is always seen by the
/// consumer's re-read of the sequence, so no wake-up is lost), every
/// value a wait returns differs from the one it waited with, and the
/// sleeper count is back to 0 at the end.
#[test]
fn a_notify_after_the_flag_always_ends_a_wait_without_timeout() {
    model(
        "a_notify_after_the_flag_always_ends_a_wait_without_timeout",
        || {
            let (_host, view, events) = setup();
            let consumer = {
                let (view, events) = (view.clone(), events.clone());
                thread::spawn(move || consume(&view, &events, None))
            };
            produce(&view, &events);
            assert_eq!(consumer.join().unwrap(), 0);
            assert_eq!(events.sleepers(), 0);
        },
    );
}

/// Model 2. As model 1, with a hostile thread that bumps the sequence and
/// raises the sleeper count by one (writes a peer may make without
/// breaking the protocol's promise; a count raised to `u32::MAX` would be
/// wrapped to 0 by the next waiter's announcement, which is zeroing it:
/// model 3). Proves: the consumer still ends without a timeout, every
/// value a wait returns differs from the one it waited with, and nothing
/// panics.
#[test]
fn a_peer_bumping_both_words_loses_no_wake_up() {
    model("a_peer_bumping_both_words_loses_no_wake_up", || {
        let (_host, view, events) = setup();
        let consumer = {
            let (view, events) = (view.clone(), events.clone());
            thread::spawn(move || consume(&view, &events, None))
        };
        let hostile = {
            let view = view.clone();
            thread::spawn(move || {
                view.atomic_u32(EVENTS)
                    .unwrap()
                    .fetch_add(1, Ordering::Relaxed);
                view.atomic_u32(SLEEPERS)
                    .unwrap()
                    .fetch_add(1, Ordering::Relaxed);
            })
        };
        produce(&view, &events);
        assert_eq!(consumer.join().unwrap(), 0);
        hostile.join().unwrap();
    });
}

/// Model 3. A consumer waits with a timeout while a hostile thread zeroes
/// the sleeper count and stores 0 (the value the consumer waits with)
/// back into the sequence, and the producer stores the flag and notifies.
/// Here a wake-up may be lost (that is what such writes can do); proves
/// that every wait still returns (in the model a timed sleep times out at
/// once), with `None` or a value other than the one it waited with, and
/// that the consumer ends once it sees the flag, in every interleaving.
#[test]
fn a_peer_zeroing_both_words_cannot_hold_a_timed_wait() {
    model("a_peer_zeroing_both_words_cannot_hold_a_timed_wait", || {
        let (_host, view, events) = setup();
        let consumer = {
            let (view, events) = (view.clone(), events.clone());
            thread::spawn(move || consume(&view, &events, Some(Duration::from_millis(1))))
        };
        let hostile = {
            let view = view.clone();
            thread::spawn(move || {
                view.atomic_u32(SLEEPERS)
                    .unwrap()
                    .store(0, Ordering::Relaxed);
                view.atomic_u32(EVENTS).unwrap().store(0, Ordering::Relaxed);
            })
        };
        produce(&view, &events);
        consumer.join().unwrap();
        hostile.join().unwrap();
    });
}
