//! Tests of `wait_u32_spin` and `EventCount` at extreme durations
//! and under a scribbling peer (a thread here; the words are the same).
//! Not under Miri: the waits sleep in the futex for real time, and the
//! scribbler spins for it.
#![cfg(all(not(loom), not(miri)))]
#![cfg(unix)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shm_region::MmapRegion;

/// A timeout `Instant` can represent, but only just (about 292 years
/// minus the uptime): its deadline fits, and so does the time left.
fn huge_but_representable() -> Duration {
    Duration::from_secs(u64::try_from(i64::MAX).unwrap() / 2)
}

#[test]
fn waits_with_huge_or_unrepresentable_timeouts_and_spins_sleep_until_woken() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let ec = view.event_count(8).unwrap();
    for timeout in [Some(Duration::MAX), Some(huge_but_representable()), None] {
        for spin in [Duration::MAX, Duration::ZERO] {
            // wait_u32_spin
            view.atomic_u32(0).unwrap().store(0, Ordering::Relaxed);
            let waker = {
                let view = view.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    view.atomic_u32(0).unwrap().store(1, Ordering::Release);
                    view.wake_u32(0, 1).unwrap();
                })
            };
            let start = Instant::now();
            let r = view.wait_u32_spin(0, 0, spin, timeout);
            assert_eq!(r, Ok(true), "wait_u32_spin {spin:?} {timeout:?}");
            assert!(start.elapsed() < Duration::from_secs(5));
            waker.join().unwrap();
            // EventCount::wait
            let seen = ec.current();
            let notifier = {
                let ec = ec.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    ec.notify().unwrap();
                })
            };
            let r = ec.wait(seen, spin, timeout);
            assert_eq!(
                r,
                Ok(Some(seen.wrapping_add(1))),
                "wait {spin:?} {timeout:?}"
            );
            notifier.join().unwrap();
            assert_eq!(ec.sleepers(), 0);
        }
    }
}

#[test]
fn zero_timeouts_return_at_once_whatever_the_spin_and_leave_no_sleeper_counted() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let ec = view.event_count(0).unwrap();
    for spin in [Duration::ZERO, Duration::MAX] {
        let start = Instant::now();
        assert_eq!(ec.wait(0, spin, Some(Duration::ZERO)), Ok(None));
        assert_eq!(
            view.wait_u32_spin(16, 0, spin, Some(Duration::ZERO)),
            Ok(false)
        );
        assert!(start.elapsed() < Duration::from_millis(50));
        assert_eq!(ec.sleepers(), 0);
    }
}

#[test]
fn a_peer_scribbling_both_words_never_makes_a_wait_panic_overrun_or_return_its_expected_value() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let ec = view.event_count(0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let scribbler = {
        let view = view.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let values = [0, 1, u32::MAX, u32::MAX - 1, 0x8000_0000, 7];
            let mut n = 0_usize;
            while !stop.load(Ordering::Relaxed) {
                let v = values[n % values.len()];
                let w = values[(n / 6) % values.len()];
                view.atomic_u32(0).unwrap().store(v, Ordering::Relaxed);
                view.atomic_u32(4).unwrap().store(w, Ordering::Relaxed);
                view.atomic_u32(16).unwrap().store(v, Ordering::Relaxed);
                if n % 64 == 0 {
                    let _ = view.wake_u32(0, u32::MAX);
                    let _ = view.wake_u32(16, u32::MAX);
                }
                n = n.wrapping_add(1);
            }
        })
    };
    let timeout = Duration::from_millis(5);
    let mut worst = Duration::ZERO;
    for round in 0..400_usize {
        let seen = [0, 1, u32::MAX, 7][round % 4];
        let spin = [Duration::ZERO, Duration::from_micros(50), Duration::MAX][round % 3];
        let start = Instant::now();
        if let Some(v) = ec.wait(seen, spin, Some(timeout)).unwrap() {
            assert_ne!(v, seen);
        }
        let _ = view.wait_u32_spin(16, seen, spin, Some(timeout)).unwrap();
        worst = worst.max(start.elapsed());
        let _ = ec.notify().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    scribbler.join().unwrap();
    eprintln!("worst pair of waits: {worst:?}");
    // Two waits of 5 ms each, with generous scheduling slack on a shared
    // two-CPU machine.
    assert!(worst < Duration::from_millis(200), "{worst:?}");
}
