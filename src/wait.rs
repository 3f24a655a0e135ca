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

#[cfg(not(loom))]
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::sys::Mapping;

#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri), not(loom)))]
pub(crate) use futex::{wait, wake};
#[cfg(loom)]
pub(crate) use model::{wait, wake};
#[cfg(all(
    not(loom),
    any(miri, not(any(target_os = "linux", target_os = "android")))
))]
pub(crate) use portable::{wait, wake};

/// The operation name errors of a wait carry.
const WAIT: &str = "wait_u32";

/// The monotonic deadline of a wait: `None` for no timeout, and for a
/// timeout so large that `Instant` cannot represent its deadline.
#[cfg(not(loom))]
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
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
#[cfg_attr(
    all(any(target_os = "linux", target_os = "android"), not(miri), not(test)),
    allow(dead_code, reason = "Linux waits with futexes; tested on Linux")
)]
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
