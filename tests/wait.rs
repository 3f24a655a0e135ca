//! Waiting for a shared word to change and waking the waiters
//! (`Region::wait_u32`, `Region::wait_u32_spin`, `Region::wake_u32`), across processes, threads,
//! read-only views, stale views, truncation and signals; and owned atomics
//! (`Region::shared_u32`, `Region::shared_u64`).
//!
//! Tests over in-memory regions also run under Miri (where waits poll and
//! wakes return 0); those that count woken waiters need Linux futexes and
//! those over files need `mmap` of a file, so they are `cfg(not(miri))`.
// Under loom the words are loom atomics and the waits a model: `tests/loom_region.rs`.
#![cfg(all(unix, not(loom)))]

mod common;

use std::ops::Deref;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use shm_region::{ErrorKind, MmapRegion, SharedU32, SharedU64};

/// How long any step of a test may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(60);

/// The futex tests: Linux, outside Miri.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
mod futex {
    use super::*;

    use shm_region::{FileCleanup, MmapOptions, Region};

    // The wake handshake between a waiting side (`follow`) and a waking
    // side (`lead`), in rounds. In round `r` the waiter announces `r` in
    // READY and waits for the round's own word (never used again) to change
    // from 0; the waker stores 1 there and wakes until a wake returns
    // non-zero or the waiter reports in DONE that it returned anyway (it had
    // not fallen asleep before the store, so no wake could reach it); the
    // round is then repeated with a new word. The waiter asserts in every
    // round that its wait returned `Ok(true)` and that it sees the 1.
    const READY: usize = 0;
    const DONE: usize = 4;
    const DECIDED: usize = 8;
    const STOP: usize = 12;
    const ROUNDS: u32 = 50;
    const HANDSHAKE_LEN: usize = 4096;

    fn round_word(round: u32) -> usize {
        64 + 4 * usize::try_from(round).unwrap()
    }

    fn load(r: &Region, offset: usize) -> u32 {
        r.load_u32(offset, Ordering::Acquire).unwrap()
    }

    fn store(r: &Region, offset: usize, value: u32) {
        r.atomic_u32(offset)
            .unwrap()
            .store(value, Ordering::Release);
    }

    /// The waiting side: waits through `wait_on` (which may be read-only),
    /// reports through `control`.
    pub(super) fn follow(wait_on: &Region, control: &Region) {
        follow_by(wait_on, control, |r, word| r.wait_u32(word, 0, Some(LIMIT)));
    }

    /// As `follow`, waiting with `wait(wait_on, word)`.
    pub(super) fn follow_by(
        wait_on: &Region,
        control: &Region,
        wait: impl Fn(&Region, usize) -> shm_region::Result<bool>,
    ) {
        for round in 1..=ROUNDS {
            let word = round_word(round);
            store(control, READY, round);
            assert_eq!(wait(wait_on, word), Ok(true), "round {round}");
            assert_eq!(
                wait_on.load_u32(word, Ordering::Acquire),
                Ok(1),
                "round {round}"
            );
            store(control, DONE, round);
            wait_until(LIMIT, "the waker's decision", || {
                load(control, DECIDED) >= round
            });
            if load(control, STOP) == 1 {
                return;
            }
        }
        panic!("no wake reached this waiter in {ROUNDS} rounds");
    }

    /// The waking side: returns the round and what the first wake that
    /// reached the waiter returned.
    pub(super) fn lead(region: &Region) -> (u32, usize) {
        for round in 1..=ROUNDS {
            wait_until(LIMIT, "the waiter to start a round", || {
                load(region, READY) >= round
            });
            // Time for the waiter to fall asleep; if it has not, the round
            // is repeated.
            thread::sleep(Duration::from_millis(5));
            let word = round_word(round);
            store(region, word, 1);
            let deadline = Instant::now() + LIMIT;
            let woken = loop {
                let n = region.wake_u32(word, 1).unwrap();
                if n != 0 || load(region, DONE) >= round {
                    break n;
                }
                assert!(Instant::now() < deadline, "round {round} never ended");
                thread::sleep(Duration::from_millis(1));
            };
            wait_until(LIMIT, "the waiter to end its round", || {
                load(region, DONE) >= round
            });
            if woken != 0 {
                store(region, STOP, 1);
            }
            store(region, DECIDED, round);
            if woken != 0 {
                return (round, woken);
            }
        }
        panic!("no wake reached the waiter in {ROUNDS} rounds");
    }

    /// Spawns a thread that sends its id, then waits on `offset` of `view`
    /// for the word to leave `expected`; it returns the wait's result, the
    /// time it took and the word's value after it.
    fn waiter(
        view: &Region,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> (
        i32,
        thread::JoinHandle<(shm_region::Result<bool>, Duration, u32)>,
    ) {
        let view = view.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = thread::spawn(move || {
            tx.send(tid()).unwrap();
            let start = Instant::now();
            let res = view.wait_u32(offset, expected, timeout);
            let took = start.elapsed();
            (res, took, view.load_u32(offset, Ordering::Acquire).unwrap())
        });
        (rx.recv().unwrap(), handle)
    }

    #[test]
    fn a_child_process_waiting_on_a_path_backed_region_is_woken_by_its_parent() {
        const NAME: &str =
            "futex::a_child_process_waiting_on_a_path_backed_region_is_woken_by_its_parent";
        if let Some(path) = role() {
            let child = MmapRegion::attach(&path).unwrap();
            let r = child.region();
            follow(&r, &r);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let host = MmapRegion::create(&path, HANDSHAKE_LEN, FileCleanup::Manual).unwrap();
        let mut child = spawn_self(NAME, path.to_str().unwrap(), &[])
            .spawn()
            .unwrap();
        let (round, woken) = lead(&host.region());
        assert_eq!(woken, 1, "the wake of round {round} woke the child only");
        assert_child_succeeds(&mut child);
    }

    #[test]
    fn a_child_process_spinning_then_sleeping_in_wait_u32_spin_is_woken_by_its_parent() {
        const NAME: &str =
            "futex::a_child_process_spinning_then_sleeping_in_wait_u32_spin_is_woken_by_its_parent";
        if let Some(path) = role() {
            let child = MmapRegion::attach(&path).unwrap();
            let r = child.region();
            // The waker stores 5 ms after the round starts: the spin is
            // over by then and the wake must reach the futex.
            follow_by(&r, &r, |r, word| {
                r.wait_u32_spin(word, 0, Duration::from_micros(100), Some(LIMIT))
            });
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let host = MmapRegion::create(&path, HANDSHAKE_LEN, FileCleanup::Manual).unwrap();
        let mut child = spawn_self(NAME, path.to_str().unwrap(), &[])
            .spawn()
            .unwrap();
        let (round, woken) = lead(&host.region());
        assert_eq!(woken, 1, "the wake of round {round} woke the child only");
        assert_child_succeeds(&mut child);
    }

    #[test]
    fn wait_u32_spin_on_a_word_a_peer_truncated_away_is_truncated_without_spinning() {
        let page = rustix::param::page_size();
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let mut host = MmapRegion::create(&path, 2 * page, FileCleanup::Manual).unwrap();
        let view = host.region();
        peer_set_len(&path, page);
        // Not spinning, it is what wait_u32 is: the kernel meets the
        // missing page.
        let e = view
            .wait_u32_spin(page, 0, Duration::ZERO, Some(Duration::from_millis(10)))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated);
        assert_eq!(e.operation(), "wait_u32_spin");
        assert_eq!(kind(host.check_and_remap()), ErrorKind::Truncated);
        // Past the truncation the handle has seen, inside the view's
        // length: Truncated, whichever path saw it (one truncation rule).
        assert_eq!(
            kind(view.wait_u32_spin(page, 0, Duration::from_micros(50), Some(Duration::ZERO))),
            ErrorKind::Truncated
        );
        assert_eq!(
            view.wait_u32_spin(0, 0, Duration::from_micros(50), Some(Duration::ZERO)),
            Ok(false)
        );
    }

    #[test]
    fn threads_wait_and_wake_on_an_in_memory_region() {
        let host = MmapRegion::in_memory(HANDSHAKE_LEN).unwrap();
        let peer = host.peer().unwrap();
        let follower = thread::spawn(move || {
            let r = peer.region();
            follow(&r, &r);
        });
        let (round, woken) = lead(&host.region());
        assert_eq!(woken, 1, "round {round}");
        follower.join().unwrap();
    }

    #[test]
    fn a_read_only_view_is_woken_by_a_writer_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let host = MmapRegion::create(&path, HANDSHAKE_LEN, FileCleanup::Manual).unwrap();
        let reader = MmapRegion::attach_read_only(&path).unwrap();
        let (wait_on, control) = (reader.region(), host.region());
        assert!(wait_on.is_read_only());
        let follower = thread::spawn(move || follow(&wait_on, &control));
        let (round, woken) = lead(&host.region());
        assert_eq!(woken, 1, "round {round}");
        follower.join().unwrap();
    }

    #[test]
    fn a_waiter_on_a_stale_view_is_woken_through_the_moved_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = MmapOptions::new()
            .address_space(0)
            .create(seg(&dir), HANDSHAKE_LEN, FileCleanup::Manual)
            .unwrap();
        let stale = host.region();
        host.resize(4 * HANDSHAKE_LEN).unwrap();
        let current = host.region();
        assert!(!stale.is_current());
        assert_ne!(stale.as_ptr(), current.as_ptr(), "the base moved");
        let follower = thread::spawn(move || follow(&stale, &stale));
        let (round, woken) = lead(&current);
        assert_eq!(woken, 1, "round {round}");
        follower.join().unwrap();
    }

    #[test]
    fn wake_with_count_zero_wakes_nobody_and_a_wake_without_a_change_returns_true() {
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();
        let (tid, handle) = waiter(&view, 0, 0, Some(LIMIT));
        wait_until_asleep(tid);
        assert_eq!(view.wake_u32(0, 0), Ok(0));
        // Still queued: the next wake reaches it.
        assert_eq!(view.wake_u32(0, 1), Ok(1));
        let (res, _, value) = handle.join().unwrap();
        assert_eq!((res, value), (Ok(true), 0), "woken with the word unchanged");
    }

    #[test]
    fn wake_wakes_at_most_count_and_a_count_above_i32_max_wakes_every_waiter() {
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();
        let waiters: Vec<_> = (0..3).map(|_| waiter(&view, 8, 0, Some(LIMIT))).collect();
        for (tid, _) in &waiters {
            wait_until_asleep(*tid);
        }
        store(&view, 8, 1);
        assert_eq!(view.wake_u32(8, 2), Ok(2));
        // The third one is still asleep; add two more.
        let more: Vec<_> = (0..2).map(|_| waiter(&view, 12, 0, Some(LIMIT))).collect();
        for (tid, _) in &more {
            wait_until_asleep(*tid);
        }
        assert_eq!(view.wake_u32(8, u32::MAX), Ok(1));
        assert_eq!(view.wake_u32(12, u32::MAX), Ok(2));
        for (_, handle) in waiters {
            assert_eq!(handle.join().unwrap().0, Ok(true));
        }
        for (_, handle) in more {
            assert_eq!(handle.join().unwrap().0, Ok(true));
        }
    }

    #[test]
    fn a_duration_max_timeout_is_no_timeout() {
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();
        let (tid, handle) = waiter(&view, 0, 0, Some(Duration::MAX));
        wait_until_asleep(tid);
        store(&view, 0, 1);
        assert_eq!(view.wake_u32(0, 1), Ok(1));
        let (res, _, value) = handle.join().unwrap();
        assert_eq!((res, value), (Ok(true), 1));
    }

    #[test]
    fn a_word_a_peer_truncated_away_is_truncated_before_and_after_the_handle_noticed() {
        let page = rustix::param::page_size();
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let mut host = MmapRegion::create(&path, 2 * page, FileCleanup::Manual).unwrap();
        let view = host.region();
        let shared = view.shared_u32(0).unwrap();
        // A peer cuts the second page; this handle has not looked yet.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(u64::try_from(page).unwrap())
            .unwrap();
        let waited = view.wait_u32(page, 0, Some(Duration::from_millis(10)));
        assert_eq!(waited.unwrap_err().kind(), ErrorKind::Truncated);
        assert_eq!(kind(view.wake_u32(page, 1)), ErrorKind::Truncated);
        // The first page is still there.
        assert_eq!(view.wait_u32(0, 0, Some(Duration::ZERO)), Ok(false));
        assert_eq!(view.wake_u32(0, 1), Ok(0));
        // Once the handle noticed, its views are fenced as for `atomic_u32`
        // (Truncated, as every access past a truncation the handle saw),
        // and a shared word taken before is not.
        assert_eq!(kind(host.check_and_remap()), ErrorKind::Truncated);
        for off in [page, page + 8] {
            assert_eq!(kind(view.atomic_u32(off)), ErrorKind::Truncated);
            assert_eq!(
                kind(view.wait_u32(off, 0, Some(Duration::ZERO))),
                ErrorKind::Truncated
            );
            assert_eq!(kind(view.wake_u32(off, 1)), ErrorKind::Truncated);
            assert_eq!(kind(view.shared_u32(off)), ErrorKind::Truncated);
            assert_eq!(kind(view.shared_u64(off)), ErrorKind::Truncated);
        }
        assert_eq!(kind(view.atomic_u32(2 * page)), ErrorKind::OutOfBounds);
        shared.store(5, Ordering::Relaxed);
        assert_eq!(view.load_u32(0, Ordering::Relaxed), Ok(5));
    }

    #[test]
    fn a_truncation_while_a_thread_waits_does_not_wake_it() {
        let page = rustix::param::page_size();
        let dir = tempfile::tempdir().unwrap();
        let path = seg(&dir);
        let host = MmapRegion::create(&path, 2 * page, FileCleanup::Manual).unwrap();
        let timeout = Duration::from_millis(300);
        // Not `waiter`: its load after the wait would fault on the cut page.
        let view = host.region();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = thread::spawn(move || {
            tx.send(tid()).unwrap();
            let start = Instant::now();
            let res = view.wait_u32(page, 0, Some(timeout));
            (res, start.elapsed())
        });
        wait_until_asleep(rx.recv().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(u64::try_from(page).unwrap())
            .unwrap();
        let (res, took) = handle.join().unwrap();
        assert_eq!(res, Ok(false));
        assert!(took >= timeout, "returned after {took:?}");
    }

    fn signal(handle: &thread::JoinHandle<impl Send>) {
        assert_eq!(send_sigusr1(handle), 0);
    }

    #[test]
    fn signals_handled_during_a_wait_neither_end_it_nor_count_as_its_timeout() {
        count_sigusr1();
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();

        // With a timeout: five signals in the first 100 ms of a 300 ms wait.
        let timeout = Duration::from_millis(300);
        let (tid, handle) = waiter(&view, 0, 0, Some(timeout));
        wait_until_asleep(tid);
        let before = sigusr1_handled();
        for _ in 0..5 {
            signal(&handle);
            thread::sleep(Duration::from_millis(20));
        }
        let (res, took, _) = handle.join().unwrap();
        assert!(sigusr1_handled() > before, "no signal handled");
        assert_eq!(res, Ok(false));
        assert!(took >= timeout, "returned after {took:?}");

        // Without a timeout: the wait goes on after the signal until woken.
        let (tid, handle) = waiter(&view, 4, 0, None);
        wait_until_asleep(tid);
        let before = sigusr1_handled();
        signal(&handle);
        wait_until(LIMIT, "the signal to be handled", || {
            sigusr1_handled() > before
        });
        store(&view, 4, 1);
        let deadline = Instant::now() + LIMIT;
        while view.wake_u32(4, 1).unwrap() == 0 {
            assert!(!handle.is_finished(), "the signal ended the wait");
            assert!(Instant::now() < deadline, "the waiter never slept again");
            thread::sleep(Duration::from_millis(1));
        }
        let (res, _, value) = handle.join().unwrap();
        assert_eq!((res, value), (Ok(true), 1));
    }

    #[test]
    fn signals_late_in_a_timed_wait_do_not_extend_it_past_its_deadline() {
        // A wait that started its timeout over after each EINTR would end
        // at least a whole timeout after the last signal: here signals at
        // 200, 250 and 290 ms of a 300 ms wait, three rounds, so such a
        // wait takes at least 590 ms. The right one ends at its deadline,
        // 300 ms, plus scheduling delay (`common`'s body and bound).
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();
        signals_during_a_timed_wait(
            3,
            &[200, 250, 290],
            move |t| view.wait_u32(0, 0, Some(t)),
            Ok(false),
        );
    }
}

#[test]
fn a_waiter_sees_a_record_stored_before_the_word_on_any_platform() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let waiter = {
        let view = view.clone();
        thread::spawn(move || {
            while view.load_u32(0, Ordering::Acquire).unwrap() == 0 {
                assert_eq!(view.wait_u32(0, 0, Some(LIMIT)), Ok(true));
            }
            view.load_u64(8, Ordering::Relaxed).unwrap()
        })
    };
    view.atomic_u64(8).unwrap().store(42, Ordering::Relaxed);
    view.atomic_u32(0).unwrap().store(1, Ordering::Release);
    assert!(view.wake_u32(0, 1).unwrap() <= 1);
    assert_eq!(waiter.join().unwrap(), 42);
}

#[test]
fn a_wait_that_nothing_ends_returns_false_after_at_least_its_timeout() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    for timeout in [0, 1, 50].map(Duration::from_millis) {
        let start = Instant::now();
        assert_eq!(view.wait_u32(0, 0, Some(timeout)), Ok(false));
        assert!(start.elapsed() >= timeout, "{timeout:?}");
    }
}

#[test]
fn a_word_that_differs_returns_true_without_waiting() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    view.atomic_u32(4).unwrap().store(9, Ordering::Relaxed);
    for timeout in [None, Some(Duration::ZERO), Some(LIMIT)] {
        let start = Instant::now();
        assert_eq!(view.wait_u32(4, 0, timeout), Ok(true), "{timeout:?}");
        assert!(start.elapsed() < LIMIT / 2, "{timeout:?}");
    }
}

#[test]
fn wait_u32_spin_returns_true_at_once_when_the_word_differs() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    view.atomic_u32(4).unwrap().store(9, Ordering::Relaxed);
    for spin in [Duration::ZERO, Duration::from_micros(50), Duration::MAX] {
        for timeout in [None, Some(Duration::ZERO), Some(LIMIT)] {
            let start = Instant::now();
            assert_eq!(view.wait_u32_spin(4, 0, spin, timeout), Ok(true));
            let took = start.elapsed();
            assert!(
                took < Duration::from_millis(100),
                "{spin:?} {timeout:?}: {took:?}"
            );
        }
    }
}

#[test]
fn wait_u32_spin_that_nothing_ends_returns_false_after_its_timeout_however_long_the_spin() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    for timeout in [0, 1, 50].map(Duration::from_millis) {
        for spin in [Duration::ZERO, Duration::from_micros(50), Duration::MAX] {
            let start = Instant::now();
            assert_eq!(view.wait_u32_spin(0, 0, spin, Some(timeout)), Ok(false));
            let took = start.elapsed();
            assert!(took >= timeout, "{timeout:?} {spin:?}: {took:?}");
            // The spin is capped at 100 µs and counts towards the timeout.
            assert!(
                took < timeout + Duration::from_millis(500),
                "{timeout:?} {spin:?}: {took:?}"
            );
        }
    }
}

#[test]
fn a_thread_sees_a_store_with_wait_u32_spin_on_any_platform() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let waiter = {
        let view = view.clone();
        thread::spawn(move || {
            while view.load_u32(0, Ordering::Acquire).unwrap() == 0 {
                assert_eq!(
                    view.wait_u32_spin(0, 0, Duration::from_micros(30), Some(LIMIT)),
                    Ok(true)
                );
            }
            view.load_u64(8, Ordering::Relaxed).unwrap()
        })
    };
    thread::sleep(Duration::from_millis(5));
    view.atomic_u64(8).unwrap().store(42, Ordering::Relaxed);
    view.atomic_u32(0).unwrap().store(1, Ordering::Release);
    assert!(view.wake_u32(0, 1).unwrap() <= 1);
    assert_eq!(waiter.join().unwrap(), 42);
}

#[test]
fn wait_and_wake_check_offsets_like_atomic_u32() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let len = view.len();
    let cases = [
        (2, ErrorKind::Misaligned),
        (len - 2, ErrorKind::Misaligned),
        (len, ErrorKind::OutOfBounds),
        (len + 4, ErrorKind::OutOfBounds),
        (usize::MAX - 3, ErrorKind::OutOfBounds), // aligned; the end overflows
        (usize::MAX, ErrorKind::Misaligned),
    ];
    for (off, expected) in cases {
        assert_eq!(kind(view.atomic_u32(off)), expected, "atomic_u32({off})");
        assert_eq!(
            kind(view.wait_u32(off, 0, Some(Duration::ZERO))),
            expected,
            "wait_u32({off})"
        );
        assert_eq!(kind(view.wake_u32(off, 1)), expected, "wake_u32({off})");
        assert_eq!(
            kind(view.wait_u32_spin(off, 0, Duration::from_micros(50), Some(Duration::ZERO))),
            expected,
            "wait_u32_spin({off})"
        );
    }
    assert_eq!(
        view.wait_u32_spin(2, 0, Duration::ZERO, None)
            .unwrap_err()
            .operation(),
        "wait_u32_spin"
    );
    // The last word is fine.
    assert_eq!(view.wait_u32(len - 4, 0, Some(Duration::ZERO)), Ok(false));
    assert_eq!(view.wake_u32(len - 4, 1), Ok(0));
}

#[cfg(not(miri))]
#[test]
fn a_read_only_view_waits_but_wake_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let host = MmapRegion::create(&path, 4096, shm_region::FileCleanup::Manual).unwrap();
    host.region()
        .atomic_u32(16)
        .unwrap()
        .store(5, Ordering::Release);
    let reader = MmapRegion::attach_read_only(&path).unwrap();
    let view = reader.region();
    // Refused first, whatever the offset, as `atomic_u32` and the shared
    // words are.
    for off in [0, 2, 4096] {
        assert_eq!(kind(view.atomic_u32(off)), ErrorKind::ReadOnly);
        assert_eq!(kind(view.wake_u32(off, 1)), ErrorKind::ReadOnly);
        assert_eq!(kind(view.shared_u32(off)), ErrorKind::ReadOnly);
        assert_eq!(kind(view.shared_u64(off)), ErrorKind::ReadOnly);
    }
    let timeout = Duration::from_millis(20);
    let start = Instant::now();
    assert_eq!(view.wait_u32(0, 0, Some(timeout)), Ok(false));
    assert!(start.elapsed() >= timeout);
    assert_eq!(view.wait_u32(16, 0, Some(LIMIT)), Ok(true));
    assert_eq!(kind(view.wait_u32(2, 0, None)), ErrorKind::Misaligned);
    assert_eq!(kind(view.wait_u32(4096, 0, None)), ErrorKind::OutOfBounds);
    // wait_u32_spin too, spinning on the read-only word.
    let spin = Duration::from_micros(50);
    let start = Instant::now();
    assert_eq!(view.wait_u32_spin(0, 0, spin, Some(timeout)), Ok(false));
    assert!(start.elapsed() >= timeout);
    assert_eq!(view.wait_u32_spin(16, 0, spin, Some(LIMIT)), Ok(true));
    assert_eq!(
        kind(view.wait_u32_spin(2, 0, spin, None)),
        ErrorKind::Misaligned
    );
}

#[cfg(not(miri))]
#[test]
fn shared_words_outlive_refresh_their_view_and_their_handle_and_reach_the_file() {
    let page = rustix::param::page_size();
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut host = shm_region::MmapOptions::new()
        .address_space(0)
        .create(&path, page, shm_region::FileCleanup::Manual)
        .unwrap();
    let inode = ino(&path);
    let peer = MmapRegion::attach(&path).unwrap();
    let mut view = host.region();
    let old_base = view.as_ptr();
    let word = view.shared_u32(8).unwrap();
    let wide = view.shared_u64(16).unwrap();
    host.resize(2 * page).unwrap();
    assert!(view.refresh());
    assert_ne!(view.as_ptr(), old_base, "the view moved to a new mapping");
    drop(view);
    drop(host);
    // Only the shared words hold the first mapping now; it still reaches
    // the file the peer maps, both ways, from any thread.
    word.store(7, Ordering::Release);
    wide.store(1 << 40, Ordering::Release);
    let p = peer.region();
    assert_eq!(p.load_u32(8, Ordering::Acquire), Ok(7));
    assert_eq!(p.load_u64(16, Ordering::Acquire), Ok(1 << 40));
    p.atomic_u32(8).unwrap().store(9, Ordering::Release);
    assert_eq!(word.load(Ordering::Acquire), 9);
    let clone = word.clone();
    thread::spawn(move || clone.fetch_add(1, Ordering::AcqRel))
        .join()
        .unwrap();
    assert_eq!(p.load_u32(8, Ordering::Acquire), Ok(10));
    // The mapping is released with the last shared word holding it.
    drop((p, peer));
    assert!(maps_inode(inode));
    drop(word);
    assert!(maps_inode(inode), "released while a shared word held it");
    drop(wide);
    assert!(
        !maps_inode(inode),
        "not released after the last shared word"
    );
}

#[test]
fn shared_words_are_checked_like_atomics() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let len = view.len();
    for off in [0, 2, 4, len - 4, len, usize::MAX - 3, usize::MAX] {
        assert_eq!(
            view.shared_u32(off).map(|_| ()).map_err(|e| e.kind()),
            view.atomic_u32(off).map(|_| ()).map_err(|e| e.kind()),
            "shared_u32({off})"
        );
    }
    for off in [0, 4, 8, len - 8, len, usize::MAX - 7, usize::MAX] {
        assert_eq!(
            view.shared_u64(off).map(|_| ()).map_err(|e| e.kind()),
            view.atomic_u64(off).map(|_| ()).map_err(|e| e.kind()),
            "shared_u64({off})"
        );
    }
    assert_eq!(kind(view.shared_u32(2)), ErrorKind::Misaligned);
    assert_eq!(kind(view.shared_u64(4)), ErrorKind::Misaligned);
    assert_eq!(kind(view.shared_u32(len)), ErrorKind::OutOfBounds);
    assert_eq!(
        kind(view.shared_u64(usize::MAX - 7)),
        ErrorKind::OutOfBounds
    );
}

#[test]
fn shared_words_show_their_offset_and_value_and_are_the_views_atomics() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let word = view.shared_u32(8).unwrap();
    let wide = view.shared_u64(16).unwrap();
    word.store(7, Ordering::Relaxed);
    wide.store(u64::MAX, Ordering::Relaxed);
    assert_eq!((word.offset(), wide.offset()), (8, 16));
    assert_eq!(format!("{word:?}"), "SharedU32 { offset: 8, value: 7 }");
    assert_eq!(
        format!("{wide:?}"),
        format!("SharedU64 {{ offset: 16, value: {} }}", u64::MAX)
    );
    assert!(std::ptr::eq(word.deref(), view.atomic_u32(8).unwrap()));
    assert!(std::ptr::eq(wide.deref(), view.atomic_u64(16).unwrap()));
}

#[test]
fn shared_words_are_clone_send_sync_and_deref_to_std_atomics() {
    fn owned<T: Clone + Send + Sync + 'static + Deref<Target = A>, A>() {}
    owned::<SharedU32, AtomicU32>();
    owned::<SharedU64, AtomicU64>();
}
