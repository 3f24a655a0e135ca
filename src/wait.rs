//! Waiting for a shared 4-byte word to change, and waking the waiters:
//! the platform part of `Region::wait_u32` and `Region::wake_u32`, after
//! the view has checked the offset.
//!
//! - Linux (outside Miri and loom): shared futexes (`sys/futex.rs`).
//! - Other Unix systems, and Miri: a poll. Under
//!   `-Zmiri-strict-provenance` (the flags CI uses) Miri rejects rustix's
//!   `futex::wake`, which makes a pointer from an integer for an argument
//!   the wake does not use, so Miri runs the portable path.
//! - Loom: a loop of loads and `loom::thread::yield_now`.

use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

use crate::error::Result;
use crate::sys::Mapping;

#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri), not(loom)))]
pub(crate) use futex::{sleep, wait, wake, wake_all};
#[cfg(loom)]
pub(crate) use model::{sleep, wait, wake, wake_all};
#[cfg(all(
    not(loom),
    any(miri, not(any(target_os = "linux", target_os = "android")))
))]
pub(crate) use portable::{sleep, wait, wake, wake_all};

/// The operation name errors of a wait carry.
const WAIT: &str = "wait_u32";

/// The monotonic deadline of a wait: `None` for no timeout, and for a
/// timeout so large that `Instant` cannot represent its deadline.
#[cfg(not(loom))]
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// `Region::wait_u32_spin` after the view's checks: spins on the word as
/// `spin.rs` decides (a zero budget makes no load), then waits as
/// [`wait`] does with the time left. Under loom it is [`wait`].
pub(crate) fn wait_spin(
    map: &Mapping,
    offset: usize,
    expected: u32,
    spin: Duration,
    timeout: Option<Duration>,
) -> Result<bool> {
    #[cfg(loom)]
    {
        let _ = spin;
        wait(map, offset, expected, timeout)
    }
    #[cfg(not(loom))]
    {
        use std::sync::atomic::Ordering;
        let deadline = deadline(timeout);
        let spin = crate::spin::Spin::start(spin, deadline);
        let changed = match map.atomic_u32(offset) {
            Some(word) => spin.spin(|| word.load(Ordering::Relaxed), expected),
            // A read-only mapping: the view checked that such loads are
            // allowed here.
            None => spin.spin(
                || map.load_u32(offset, Ordering::Relaxed).unwrap_or(expected),
                expected,
            ),
        };
        if changed.is_some() {
            return Ok(true);
        }
        // No deadline: no timeout (also for one `Instant` cannot hold).
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let woken = wait(map, offset, expected, left);
        spin.slept();
        woken
    }
}

/// Polls `load` until it differs from `expected` (`true`) or `deadline`
/// passes (`false`), as the portable wait does: for waiters that cannot
/// announce themselves (an event count on a read-only view).
#[cfg(not(loom))]
pub(crate) fn poll_word(
    load: impl FnMut() -> u32,
    expected: u32,
    deadline: Option<Instant>,
) -> bool {
    poll::poll(load, expected, deadline)
}

#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri), not(loom)))]
mod futex {
    use std::time::{Duration, Instant};

    use rustix::io::Errno;
    use rustix::thread::futex::Timespec;

    use super::{deadline, Mapping, Result, WAIT};
    use crate::error::{Error, ErrorKind};

    /// The operation name errors of a wake carry.
    const WAKE: &str = "wake_u32";

    /// The time left until `deadline`, as the futex call's relative
    /// timeout (zero once it has passed).
    fn time_left(deadline: Instant) -> Timespec {
        let left: Duration = deadline.saturating_duration_since(Instant::now());
        // `left` is below what `Instant` can represent past now, which
        // fits a `Timespec`; the fallback is never taken.
        Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        })
    }

    /// Futex waits until the word differs, a wake comes, or the deadline
    /// passes; `EINTR` resumes the wait with the time left.
    pub(crate) fn wait(
        map: &Mapping,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let deadline = deadline(timeout);
        loop {
            let left = deadline.map(time_left);
            match map.futex_wait(offset, expected, left.as_ref()) {
                // Woken (or spuriously), or the word differed.
                Some(Ok(()) | Err(Errno::AGAIN)) => return Ok(true),
                Some(Err(Errno::TIMEDOUT)) => return Ok(false),
                // A signal handler ran: go back to sleep until the deadline.
                Some(Err(Errno::INTR)) => {}
                Some(Err(Errno::FAULT)) => {
                    return Err(Error::with_errno(ErrorKind::Truncated, WAIT, Errno::FAULT))
                }
                Some(Err(e)) => return Err(Error::os(WAIT, e)),
                // The view checked the word; kept for completeness.
                None => return Err(Error::new(ErrorKind::OutOfBounds, WAIT)),
            }
        }
    }

    /// The sleep of an event count: a futex wait, as [`wait`].
    pub(crate) fn sleep(
        map: &Mapping,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        wait(map, offset, expected, timeout)
    }

    /// Wakes every waiter on the word (an event count's notify).
    pub(crate) fn wake_all(map: &Mapping, offset: usize) -> Result<usize> {
        wake(map, offset, u32::MAX)
    }

    /// One futex wake of up to `count` waiters.
    pub(crate) fn wake(map: &Mapping, offset: usize, count: u32) -> Result<usize> {
        match map.futex_wake(offset, count) {
            Some(Ok(n)) => Ok(n),
            Some(Err(Errno::FAULT)) => {
                Err(Error::with_errno(ErrorKind::Truncated, WAKE, Errno::FAULT))
            }
            Some(Err(e)) => Err(Error::os(WAKE, e)),
            None => Err(Error::new(ErrorKind::OutOfBounds, WAKE)),
        }
    }
}

/// The poll of the portable path, compiled everywhere but loom so that
/// its unit tests run on Linux too.
#[cfg(not(loom))]
mod poll {
    use std::time::{Duration, Instant};

    /// Loads made with a spin hint between them before the first nap.
    pub(super) const SPINS: u32 = 100;
    /// The first nap after the spins.
    pub(super) const FIRST_NAP: Duration = Duration::from_micros(10);
    /// The longest nap: naps double from `FIRST_NAP` up to it.
    pub(super) const MAX_NAP: Duration = Duration::from_millis(1);

    /// The nap after one of `nap`.
    pub(super) fn next_nap(nap: Duration) -> Duration {
        nap.saturating_mul(2).min(MAX_NAP)
    }

    /// Loads with `load` until it returns something other than `expected`
    /// (`true`) or `deadline` has passed (`false`): `SPINS` loads with a
    /// spin hint between them, then one load before each nap, the naps
    /// going from `FIRST_NAP` to `MAX_NAP` and never past the deadline.
    pub(super) fn poll(
        mut load: impl FnMut() -> u32,
        expected: u32,
        deadline: Option<Instant>,
    ) -> bool {
        for _ in 0..SPINS {
            if load() != expected {
                return true;
            }
            std::hint::spin_loop();
        }
        let mut nap = FIRST_NAP;
        loop {
            if load() != expected {
                return true;
            }
            let this_nap = match deadline {
                None => nap,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    nap.min(left)
                }
            };
            // `sleep` resumes by itself after a signal handler runs.
            std::thread::sleep(this_nap);
            nap = next_nap(nap);
        }
    }
}

#[cfg(all(
    not(loom),
    any(miri, not(any(target_os = "linux", target_os = "android")))
))]
mod portable {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::poll::poll;
    use super::{deadline, Mapping, Result, WAIT};
    use crate::error::{Error, ErrorKind};

    /// Polls the word with relaxed loads: through the atomic on a writable
    /// mapping (the memory itself, also for a hostile region), with
    /// `load_u32` on a read-only one (which the view allowed only where
    /// such loads are sound).
    pub(crate) fn wait(
        map: &Mapping,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let deadline = deadline(timeout);
        if let Some(word) = map.atomic_u32(offset) {
            return Ok(poll(|| word.load(Ordering::Relaxed), expected, deadline));
        }
        if map.load_u32(offset, Ordering::Relaxed).is_none() {
            // The view checked the word; kept for completeness.
            return Err(Error::new(ErrorKind::OutOfBounds, WAIT));
        }
        Ok(poll(
            || map.load_u32(offset, Ordering::Relaxed).unwrap_or(expected),
            expected,
            deadline,
        ))
    }

    /// Waiters poll, so there is nobody to wake.
    pub(crate) fn wake(_map: &Mapping, _offset: usize, _count: u32) -> Result<usize> {
        Ok(0)
    }

    /// The sleep of an event count: the poll of [`wait`].
    pub(crate) fn sleep(
        map: &Mapping,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        wait(map, offset, expected, timeout)
    }

    /// Sleepers poll, so there is nobody to wake.
    pub(crate) fn wake_all(_map: &Mapping, _offset: usize) -> Result<usize> {
        Ok(0)
    }
}

#[cfg(loom)]
mod model {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::{Mapping, Result, WAIT};
    use crate::error::{Error, ErrorKind};

    /// Without a timeout, relaxed loads of the loom word with a
    /// `yield_now` between them until it differs; with one, one load, and
    /// if the word holds `expected`, one `yield_now` and `Ok(false)` (the
    /// timeout elapses at once; callers loop).
    pub(crate) fn wait(
        map: &Mapping,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let word = map
            .atomic_u32(offset)
            .ok_or_else(|| Error::new(ErrorKind::OutOfBounds, WAIT))?;
        loop {
            if word.load(Ordering::Relaxed) != expected {
                return Ok(true);
            }
            loom::thread::yield_now();
            if timeout.is_some() {
                return Ok(false);
            }
        }
    }

    /// Waiters re-load by themselves, so there is nobody to wake.
    pub(crate) fn wake(_map: &Mapping, _offset: usize, _count: u32) -> Result<usize> {
        Ok(0)
    }

    /// The sleep of an event count under loom: unlike [`wait`], a real
    /// block, so that a lost wake-up shows as a deadlock. Without a
    /// timeout, the mapping's futex model compares the word with
    /// `expected` under its lock and, if equal, blocks until a
    /// [`wake_all`] on the mapping; with one, if equal, one yield and
    /// `Ok(false)` (the timeout elapses at once).
    pub(crate) fn sleep(
        map: &Mapping,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        map.futex_sleep(offset, expected, timeout.is_some())
            .ok_or_else(|| Error::new(ErrorKind::OutOfBounds, WAIT))
    }

    /// Wakes every sleeper of the mapping's futex model (of any word: a
    /// superset of what a futex wakes; sleepers re-check); how many.
    pub(crate) fn wake_all(map: &Mapping, _offset: usize) -> Result<usize> {
        Ok(map.futex_wake_all())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::deadline;
    use super::poll::{next_nap, poll, FIRST_NAP, MAX_NAP, SPINS};

    #[test]
    fn poll_returns_true_at_the_first_load_that_differs() {
        let mut loads = 0;
        let changed = poll(
            || {
                loads += 1;
                if loads == 3 {
                    7
                } else {
                    5
                }
            },
            5,
            None,
        );
        assert!(changed);
        assert_eq!(loads, 3);
    }

    #[test]
    fn poll_with_a_passed_deadline_spins_then_loads_once_more_and_times_out() {
        let mut loads = 0_u32;
        let changed = poll(
            || {
                loads += 1;
                5
            },
            5,
            Some(Instant::now()),
        );
        assert!(!changed);
        assert_eq!(loads, SPINS + 1);
    }

    #[test]
    fn poll_times_out_no_earlier_than_its_deadline() {
        let start = Instant::now();
        let timeout = Duration::from_millis(20);
        assert!(!poll(|| 5, 5, Some(start + timeout)));
        assert!(start.elapsed() >= timeout);
    }

    #[test]
    fn poll_sees_a_store_from_another_thread() {
        let word = Arc::new(AtomicU32::new(0));
        let storer = {
            let word = Arc::clone(&word);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                word.store(1, Ordering::Relaxed);
            })
        };
        assert!(poll(|| word.load(Ordering::Relaxed), 0, None));
        assert_eq!(word.load(Ordering::Relaxed), 1);
        storer.join().unwrap();
    }

    #[test]
    fn naps_double_from_10_us_up_to_1_ms() {
        let mut naps = vec![FIRST_NAP];
        while naps.len() < 10 {
            naps.push(next_nap(*naps.last().unwrap()));
        }
        let us: Vec<u128> = naps.iter().map(Duration::as_micros).collect();
        assert_eq!(us, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert_eq!(MAX_NAP, Duration::from_millis(1));
    }

    #[test]
    fn a_timeout_past_what_instant_can_represent_is_no_timeout() {
        assert_eq!(deadline(None), None);
        assert_eq!(deadline(Some(Duration::MAX)), None);
        let d = deadline(Some(Duration::from_secs(1))).unwrap();
        assert!(d > Instant::now());
    }
}

/// `wait_spin` on Linux, with the seams counting spins (`spin.rs`) and
/// futex calls (`sys/futex.rs`) on this thread.
#[cfg(all(
    test,
    any(target_os = "linux", target_os = "android"),
    not(miri),
    not(loom)
))]
mod spin_tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

    use crate::spin::tests::spins;
    use crate::spin::{forget_cpus, level, set_level, MAX_LEVEL};
    use crate::sys::futex_seam::waits;
    use crate::MmapRegion;

    const SPIN: Duration = Duration::from_micros(50);
    const TIMEOUT: Duration = Duration::from_millis(5);

    /// Runs `f` on a new thread restricted to the first `cpus` CPUs of this
    /// process's mask; `None` if the process has fewer.
    fn on_cpus<T: Send>(cpus: u32, f: impl FnOnce() -> T + Send) -> Option<T> {
        let mask = sched_getaffinity(None).unwrap();
        if mask.count() < cpus {
            return None;
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut set = CpuSet::new();
                let mut left = cpus;
                for cpu in (0..CpuSet::MAX_CPU).filter(|&c| mask.is_set(c)) {
                    if left == 0 {
                        break;
                    }
                    set.set(cpu);
                    left -= 1;
                }
                sched_setaffinity(None, &set).unwrap();
                assert_eq!(sched_getaffinity(None).unwrap().count(), cpus);
                forget_cpus();
                set_level(0);
                Some(f())
            })
            .join()
            .unwrap()
        })
    }

    /// Spins and futex waits of one `wait_u32_spin` that times out.
    fn timed_out_wait() -> (u64, u64) {
        let host = MmapRegion::in_memory(4096).unwrap();
        let (s, w) = (spins(), waits());
        assert_eq!(
            host.region().wait_u32_spin(0, 0, SPIN, Some(TIMEOUT)),
            Ok(false)
        );
        (spins() - s, waits() - w)
    }

    #[test]
    fn a_thread_that_may_run_on_one_cpu_does_not_spin_and_sleeps_in_the_futex() {
        let (spun, slept) = on_cpus(1, timed_out_wait).unwrap();
        assert_eq!((spun, slept), (0, 1));
    }

    #[test]
    fn a_thread_on_two_cpus_spins_then_sleeps_in_the_futex() {
        let Some((spun, slept)) = on_cpus(2, timed_out_wait) else {
            crate::spin::tests::log_skip(
                "a_thread_on_two_cpus_spins_then_sleeps_in_the_futex",
                "this process may run on one CPU only",
            );
            return;
        };
        assert!(spun > 0, "no spin");
        assert_eq!(slept, 1);
    }

    #[test]
    fn failed_spins_halve_the_budget_down_to_a_64th_and_a_caught_change_doubles_it() {
        let Some(levels) = on_cpus(2, || {
            let host = MmapRegion::in_memory(4096).unwrap();
            let view = host.region();
            let mut levels = vec![level()];
            for _ in 0..8 {
                assert_eq!(view.wait_u32_spin(0, 0, SPIN, Some(TIMEOUT)), Ok(false));
                levels.push(level());
            }
            view.atomic_u32(0).unwrap().store(1, Ordering::Relaxed);
            let w = waits();
            assert_eq!(view.wait_u32_spin(0, 0, SPIN, None), Ok(true));
            assert_eq!(waits(), w, "a change seen by the spin made a futex call");
            levels.push(level());
            levels
        }) else {
            crate::spin::tests::log_skip(
                "failed_spins_halve_the_budget_down_to_a_64th_and_a_caught_change_doubles_it",
                "this process may run on one CPU only",
            );
            return;
        };
        assert_eq!(levels, [0, 1, 2, 3, 4, 5, 6, 6, 6, 5]);
        assert_eq!(MAX_LEVEL, 6);
    }

    /// The CPUs a thread may run on are read again once they are
    /// `AFFINITY_REFRESH` (100 ms) old: a thread that spun on two CPUs and
    /// is then restricted to one stops spinning by then.
    #[test]
    fn a_thread_moved_to_one_cpu_stops_spinning_once_its_affinity_is_read_again() {
        let Some((before, after)) = on_cpus(2, || {
            let before = timed_out_wait();
            let now = sched_getaffinity(None).unwrap();
            let first = (0..CpuSet::MAX_CPU).find(|&c| now.is_set(c)).unwrap();
            let mut one = CpuSet::new();
            one.set(first);
            sched_setaffinity(None, &one).unwrap();
            std::thread::sleep(crate::spin::AFFINITY_REFRESH + Duration::from_millis(10));
            (before, timed_out_wait())
        }) else {
            crate::spin::tests::log_skip(
                "a_thread_moved_to_one_cpu_stops_spinning_once_its_affinity_is_read_again",
                "this process may run on one CPU only",
            );
            return;
        };
        assert!(before.0 > 0, "no spin on two CPUs");
        assert_eq!(before.1, 1);
        assert_eq!(after, (0, 1), "spun on one CPU");
    }

    #[test]
    fn a_zero_spin_makes_no_load_and_sleeps_in_the_futex() {
        let host = MmapRegion::in_memory(4096).unwrap();
        let (s, w) = (spins(), waits());
        assert_eq!(
            host.region()
                .wait_u32_spin(0, 0, Duration::ZERO, Some(TIMEOUT)),
            Ok(false)
        );
        assert_eq!((spins() - s, waits() - w), (0, 1));
    }
}
