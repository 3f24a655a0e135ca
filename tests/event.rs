//! `EventCount` (`Region::event_count`): refusals, notify and wait across
//! threads and processes, read-only views, and a peer scribbling on both
//! words. The loom model of the protocol is `tests/loom_event.rs`; the
//! unit tests in `src/event.rs` count the futex system calls.
// Under loom the words are loom atomics: `tests/loom_event.rs`.
#![cfg(all(unix, not(loom)))]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use shm_region::{ErrorKind, EventCount, MmapRegion};

/// How long any step of a test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn event_count_refuses_misaligned_and_out_of_bounds_offsets() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let len = view.len();
    let cases = [
        (4, ErrorKind::Misaligned),
        (2, ErrorKind::Misaligned),
        (len - 4, ErrorKind::Misaligned),
        (len, ErrorKind::OutOfBounds),
        (len + 8, ErrorKind::OutOfBounds),
        (usize::MAX - 7, ErrorKind::OutOfBounds), // aligned; the end overflows
        (usize::MAX, ErrorKind::Misaligned),
    ];
    for (off, expected) in cases {
        assert_eq!(kind(view.event_count(off)), expected, "event_count({off})");
    }
    let e = view.event_count(12).unwrap_err();
    assert_eq!(e.operation(), "event_count");
    // The last 8 bytes are fine.
    let last = view.event_count(len - 8).unwrap();
    assert_eq!(
        (last.offset(), last.current(), last.sleepers()),
        (len - 8, 0, 0)
    );
}

#[test]
fn notify_bumps_the_sequence_wrapping_and_returns_zero_with_nobody_asleep() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let ec = view.event_count(16).unwrap();
    assert_eq!(ec.notify(), Ok(0));
    assert_eq!(ec.current(), 1);
    assert_eq!(view.load_u32(16, Ordering::Relaxed), Ok(1));
    view.atomic_u32(16)
        .unwrap()
        .store(u32::MAX, Ordering::Relaxed);
    assert_eq!(ec.notify(), Ok(0));
    assert_eq!(ec.current(), 0);
    // The sleeper count is untouched.
    assert_eq!(view.load_u32(20, Ordering::Relaxed), Ok(0));
}

#[test]
fn wait_returns_the_sequence_at_once_when_it_differs() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let ec = host.region().event_count(0).unwrap();
    ec.notify().unwrap();
    ec.notify().unwrap();
    for timeout in [None, Some(Duration::ZERO), Some(LIMIT)] {
        let start = Instant::now();
        assert_eq!(ec.wait(0, Duration::from_millis(1), timeout), Ok(Some(2)));
        assert!(start.elapsed() < Duration::from_secs(1), "{timeout:?}");
    }
    assert_eq!(ec.sleepers(), 0);
}

#[test]
fn a_wait_nothing_ends_returns_none_after_at_least_its_timeout_and_uncounts_itself() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let ec = host.region().event_count(0).unwrap();
    for timeout in [0, 1, 50].map(Duration::from_millis) {
        for spin in [Duration::ZERO, Duration::from_micros(20)] {
            let start = Instant::now();
            assert_eq!(ec.wait(0, spin, Some(timeout)), Ok(None));
            let took = start.elapsed();
            assert!(took >= timeout, "{timeout:?}: {took:?}");
            assert!(
                took < timeout + Duration::from_secs(1),
                "{timeout:?}: {took:?}"
            );
            assert_eq!(ec.sleepers(), 0);
        }
    }
}

#[test]
fn event_counts_are_clone_send_sync_and_show_their_words() {
    fn owned<T: Clone + Send + Sync + 'static>() {}
    owned::<EventCount>();
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let ec = view.event_count(8).unwrap();
    view.atomic_u32(12).unwrap().store(3, Ordering::Relaxed);
    ec.notify().unwrap();
    assert_eq!(
        format!("{ec:?}"),
        "EventCount { offset: 8, sequence: 1, sleepers: 3, read_only: false }"
    );
    // It outlives its view and handle.
    let ec2 = ec.clone();
    drop((view, host));
    assert_eq!(ec2.notify(), Ok(0));
    assert_eq!((ec2.current(), ec.current()), (2, 2));
}

/// Linux: futex sleeps, woken by notify.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
mod futex {
    use super::*;
    use shm_region::FileCleanup;

    const EVENTS: usize = 64;
    const READY: usize = 0;

    /// Whether every thread of process `pid` is asleep (state `S`).
    fn process_asleep(pid: u32) -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return false;
        };
        tasks.filter_map(Result::ok).all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('S')))
                .unwrap_or(false)
        })
    }

    #[test]
    fn a_child_process_sleeping_in_wait_is_woken_by_a_notify_in_its_parent() {
        const NAME: &str =
            "futex::a_child_process_sleeping_in_wait_is_woken_by_a_notify_in_its_parent";
        if let Some(path) = role() {
            let child = MmapRegion::attach(&path).unwrap();
            let view = child.region();
            let ec = view.event_count(EVENTS).unwrap();
            view.atomic_u32(READY).unwrap().store(1, Ordering::Release);
            assert_eq!(
                ec.wait(0, Duration::from_micros(20), Some(LIMIT)),
                Ok(Some(1))
            );
            assert_eq!(ec.sleepers(), 0);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
        let view = host.region();
        let ec = view.event_count(EVENTS).unwrap();
        let mut child = spawn_self(NAME, path.to_str().unwrap(), &[])
            .spawn()
            .unwrap();
        let pid = child.id();
        wait_until(LIMIT, "the child to count itself asleep", || {
            ec.sleepers() == 1
        });
        // Counted, and every thread of the child asleep twice 10 ms apart:
        // the waiter is in the futex (nothing else makes it sleep).
        wait_until(LIMIT, "the child to sleep", || {
            process_asleep(pid) && {
                thread::sleep(Duration::from_millis(10));
                process_asleep(pid)
            }
        });
        assert_eq!(ec.notify(), Ok(1));
        assert_child_succeeds(&mut child);
        assert_eq!(ec.sleepers(), 0);
    }

    #[test]
    fn notify_wakes_every_sleeper_and_returns_how_many() {
        let host = MmapRegion::in_memory(4096).unwrap();
        let ec = host.region().event_count(0).unwrap();
        // `Duration::MAX` is no timeout, as `None`.
        let sleepers: Vec<_> = [Some(LIMIT), None, Some(Duration::MAX)]
            .into_iter()
            .map(|timeout| {
                let ec = ec.clone();
                let (tx, rx) = std::sync::mpsc::channel();
                let h = thread::spawn(move || {
                    tx.send(tid()).unwrap();
                    ec.wait(0, Duration::ZERO, timeout)
                });
                (rx.recv().unwrap(), h)
            })
            .collect();
        wait_until(LIMIT, "three sleepers counted", || ec.sleepers() == 3);
        for (tid, _) in &sleepers {
            wait_until_asleep(*tid);
        }
        assert_eq!(ec.notify(), Ok(3));
        for (_, h) in sleepers {
            assert_eq!(h.join().unwrap(), Ok(Some(1)));
        }
        assert_eq!(ec.sleepers(), 0);
    }

    #[test]
    fn a_read_only_event_count_waits_by_polling_and_notify_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
        let writer = host.region().event_count(8).unwrap();
        let reader = MmapRegion::attach_read_only(&path).unwrap();
        let view = reader.region();
        assert_eq!(kind(view.event_count(4)), ErrorKind::Misaligned);
        assert_eq!(kind(view.event_count(4096)), ErrorKind::OutOfBounds);
        let ec = view.event_count(8).unwrap();
        assert!(ec.is_read_only() && !writer.is_read_only());
        let e = ec.notify().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ReadOnly);
        assert_eq!(e.operation(), "EventCount::notify");
        assert!(
            e.to_string()
                .contains("make the event count from a writable view"),
            "{e}"
        );
        assert_eq!(ec.current(), 0, "a refused notify changed the sequence");
        // Times out by polling.
        let timeout = Duration::from_millis(20);
        let start = Instant::now();
        assert_eq!(ec.wait(0, Duration::ZERO, Some(timeout)), Ok(None));
        assert!(start.elapsed() >= timeout);
        // Sees a notify without being counted (so notify wakes nobody).
        let waiter = thread::spawn(move || ec.wait(0, Duration::from_micros(20), Some(LIMIT)));
        thread::sleep(Duration::from_millis(20));
        assert_eq!(writer.sleepers(), 0, "a read-only waiter counted itself");
        assert_eq!(writer.notify(), Ok(0));
        assert_eq!(waiter.join().unwrap(), Ok(Some(1)));
    }

    /// A peer thread stores values (0, 1, `u32::MAX`, the value the
    /// waiters wait with, and others) into both words and makes futex
    /// wakes on the sequence word with it unchanged, without pause, while
    /// waiters wait with timeouts and a notifier notifies. Every wait
    /// returns `Ok(None)` or `Ok(Some(v))` with `v` not the value it waited
    /// with, within its timeout plus 250 ms of scheduling slack; every
    /// notify returns `Ok`.
    #[test]
    fn waits_return_within_their_timeout_while_a_peer_scribbles_both_words() {
        const TIMEOUT: Duration = Duration::from_millis(30);
        const SLACK: Duration = Duration::from_millis(250);
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();
        let ec = view.event_count(0).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let scribbler = {
            let (view, stop) = (view.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let (seq, sleepers) = (view.atomic_u32(0).unwrap(), view.atomic_u32(4).unwrap());
                let mut x = 0x9e37_79b9_u32;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let v = match x % 5 {
                        0 => 0,
                        1 => u32::MAX,
                        2 => 7, // what the waiters wait with
                        3 => 1,
                        _ => x,
                    };
                    if x & 1 == 0 {
                        seq.store(v, Ordering::Relaxed);
                    } else {
                        sleepers.store(v, Ordering::Relaxed);
                    }
                    if x % 7 == 0 {
                        seq.store(7, Ordering::Relaxed);
                        view.wake_u32(0, u32::MAX).unwrap();
                    }
                    if x % 64 == 0 {
                        thread::yield_now();
                    }
                }
            })
        };
        let notifier = {
            let (ec, stop) = (ec.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                // At least one notify, however soon the waiters finish (in
                // release builds under load they can all be done before
                // this thread first runs).
                let mut n = 0_u64;
                loop {
                    ec.notify().unwrap();
                    n += 1;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    thread::sleep(Duration::from_millis(3));
                }
                n
            })
        };
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let ec = ec.clone();
                thread::spawn(move || {
                    let spin = Duration::from_micros(10 * i);
                    let (mut none, mut some) = (0, 0);
                    for _ in 0..20 {
                        let start = Instant::now();
                        match ec.wait(7, spin, Some(TIMEOUT)).unwrap() {
                            Some(v) => {
                                assert_ne!(v, 7);
                                some += 1;
                            }
                            None => none += 1,
                        }
                        let took = start.elapsed();
                        assert!(took < TIMEOUT + SLACK, "a wait took {took:?}");
                    }
                    (none, some)
                })
            })
            .collect();
        let results: Vec<_> = waiters
            .into_iter()
            .map(|w| within(LIMIT, move || w.join().unwrap()))
            .collect();
        stop.store(true, Ordering::Relaxed);
        scribbler.join().unwrap();
        assert!(notifier.join().unwrap() > 0);
        assert_eq!(results.iter().map(|(n, s)| n + s).sum::<u32>(), 60);
    }

    /// A peer zeroes the sleeper count while a thread sleeps: the next
    /// notify skips its wake (nobody is counted), and the sleeper returns
    /// at its timeout, not later, with the bumped sequence; its own
    /// decrement then wraps the count to `u32::MAX`.
    #[test]
    fn a_peer_zeroing_the_sleeper_count_delays_a_notify_to_the_timeout_not_past_it() {
        const TIMEOUT: Duration = Duration::from_millis(200);
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();
        let ec = view.event_count(0).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = {
            let ec = ec.clone();
            thread::spawn(move || {
                tx.send(tid()).unwrap();
                let start = Instant::now();
                let r = ec.wait(0, Duration::ZERO, Some(TIMEOUT));
                (r, start.elapsed())
            })
        };
        wait_until_asleep(rx.recv().unwrap());
        assert_eq!(ec.sleepers(), 1);
        view.atomic_u32(4).unwrap().store(0, Ordering::Relaxed);
        assert_eq!(ec.notify(), Ok(0));
        let (r, took) = within(Duration::from_secs(10), move || sleeper.join().unwrap());
        assert_eq!(r, Ok(Some(1)));
        assert!(took >= TIMEOUT, "{took:?}");
        assert!(took < TIMEOUT + Duration::from_millis(400), "{took:?}");
        assert_eq!(ec.sleepers(), u32::MAX);
    }

    /// The same scribbling without a notifier and with the sequence held
    /// at the waited-for value by wakes: every wait ends by its timeout.
    #[test]
    fn spurious_wakes_with_the_sequence_unchanged_do_not_extend_a_wait() {
        const TIMEOUT: Duration = Duration::from_millis(100);
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();
        let ec = view.event_count(0).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let waker = {
            let (view, stop) = (view.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let mut wakes = 0_u64;
                // At least one wake, however soon the waits are done.
                loop {
                    view.wake_u32(0, u32::MAX).unwrap();
                    wakes += 1;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    thread::sleep(Duration::from_micros(200));
                }
                wakes
            })
        };
        for _ in 0..3 {
            let start = Instant::now();
            let r = within(LIMIT, {
                let ec = ec.clone();
                move || ec.wait(0, Duration::ZERO, Some(TIMEOUT))
            });
            let took = start.elapsed();
            assert_eq!(r, Ok(None));
            assert!(took >= TIMEOUT, "{took:?}");
            assert!(took < TIMEOUT + Duration::from_millis(400), "{took:?}");
        }
        stop.store(true, Ordering::Relaxed);
        assert!(waker.join().unwrap() > 0);
        assert_eq!(ec.sleepers(), 0);
    }
}
