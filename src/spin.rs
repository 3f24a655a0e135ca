//! Spinning before a sleep: the policy shared by `Region::wait_u32_spin`
//! and `EventCount::wait`.
//!
//! A wait that spins checks its word in a `spin_loop` loop for a budget,
//! then sleeps. The budget is decided when the wait starts:
//!
//! - **No spinning on one CPU.** If the calling thread may run on only one
//!   CPU (`sched_getaffinity` on Linux; `available_parallelism` elsewhere),
//!   whatever changes the word needs this CPU, so spinning only delays it:
//!   the budget is zero. The count is cached per thread and asked again
//!   once it is older than [`AFFINITY_REFRESH`] (the system call costs
//!   about 0.2 µs here, a wake-up round trip about 1 µs). If the call
//!   fails, the thread does not spin.
//! - **Capped.** The caller's budget is capped at [`MAX_SPIN`].
//! - **Backing off.** Each thread keeps a level `0..=MAX_LEVEL`; the budget
//!   is the capped request divided by `2^level`. A spin that saw the word
//!   change lowers the level by one (doubling the next budget); a wait whose
//!   spin ran out without seeing a change raises it by one (halving the
//!   next budget), whether or not the futex then really slept. So
//!   a peer that answers within the spin keeps the full budget, and where
//!   spins keep failing (the peer is slow, or shares this thread's CPU, so
//!   that it cannot answer while this thread spins) the spin shrinks to
//!   1/64 of the request. At that level every [`PROBE_EVERY`]th wait
//!   spins the whole capped request instead, as a probe: a catch grows the
//!   budget back. The probe matters where the scheduler put both
//!   processes on one CPU although two are allowed: there short spins
//!   never succeed, both sides keep sleeping, and each futex wake pulls the
//!   woken side next to the waker again; a long spin keeps a side runnable
//!   long enough for the scheduler to move the other to an idle CPU, after
//!   which spins succeed. The history is per thread, not per word. (A rule that also grew the budget after a sleep that
//!   ended soon after the spin was measured and dropped: with both
//!   processes on one CPU the peer always answers right after the spin
//!   gives the CPU up, so it kept the budget high and the round trip at
//!   about 45 µs instead of 6.)
//! - Under loom nothing spins (real time would make the model's executions
//!   differ): the waits are their loom models.

#[cfg(not(loom))]
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The longest spin, whatever the caller asks for: a futex wake-up costs a
/// few microseconds, so spinning much longer than that gains nothing.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const MAX_SPIN: Duration = Duration::from_micros(100);
/// The deepest back-off: the budget is at least the capped request / 64.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const MAX_LEVEL: u32 = 6;
/// At the deepest level, one wait in this many spins the full request.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const PROBE_EVERY: u32 = 32;
/// How long a thread's cached CPU count is trusted.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const AFFINITY_REFRESH: Duration = Duration::from_millis(100);
/// Spin hints between two reads of the clock.
const HINTS_PER_CLOCK: u32 = 4;

/// The spin budget for a request of `requested` by a thread that may run
/// on `cpus` CPUs at back-off `level`: zero on one CPU, otherwise the
/// request capped at [`MAX_SPIN`] and divided by `2^level`.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn budget(requested: Duration, cpus: u32, level: u32) -> Duration {
    if cpus <= 1 {
        return Duration::ZERO;
    }
    requested.min(MAX_SPIN) / (1_u32 << level.min(MAX_LEVEL))
}

/// How a spinning wait ended, for the back-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The word changed during the spin.
    Caught,
    /// The spin ran out and the thread slept.
    Slept,
}

/// The level after a wait that spun and ended with `outcome`.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn next_level(level: u32, outcome: Outcome) -> u32 {
    match outcome {
        Outcome::Caught => level.saturating_sub(1),
        Outcome::Slept => (level + 1).min(MAX_LEVEL),
    }
}

/// Calls `load` with spin hints between the calls until it returns
/// something other than `expected` (`Some` of it) or `budget` has passed
/// since `start` (`None`). Reads the clock every few hints; a zero budget
/// makes no call at all.
pub(crate) fn spin_for(
    mut load: impl FnMut() -> u32,
    expected: u32,
    start: Instant,
    budget: Duration,
) -> Option<u32> {
    if budget.is_zero() {
        return None;
    }
    loop {
        for _ in 0..HINTS_PER_CLOCK {
            let v = load();
            if v != expected {
                return Some(v);
            }
            std::hint::spin_loop();
        }
        #[cfg(test)]
        tests::SPINS.with(|s| s.set(s.get() + 1));
        if start.elapsed() >= budget {
            return None;
        }
    }
}

/// The CPU count of the calling thread, as the spin decision sees it.
#[cfg(not(loom))]
fn cpus_now() -> u32 {
    #[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
    {
        rustix::thread::sched_getaffinity(None).map_or(1, |set| set.count())
    }
    #[cfg(windows)]
    {
        u32::try_from(crate::sys::cpu_count()).unwrap_or(u32::MAX)
    }
    #[cfg(not(any(
        all(any(target_os = "linux", target_os = "android"), not(miri)),
        windows
    )))]
    {
        std::thread::available_parallelism()
            .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
    }
}

#[cfg(not(loom))]
std::thread_local! {
    /// This thread's CPU count and when it was asked.
    static CPUS: Cell<Option<(u32, Instant)>> = const { Cell::new(None) };
    /// This thread's back-off level.
    static LEVEL: Cell<u32> = const { Cell::new(0) };
    /// Waits this thread started at the deepest level, for the probes.
    static AT_MAX: Cell<u32> = const { Cell::new(0) };
}

/// The CPU count of the calling thread, cached for [`AFFINITY_REFRESH`].
#[cfg(not(loom))]
fn cpus(now: Instant) -> u32 {
    CPUS.with(|c| match c.get() {
        Some((n, at)) if now.saturating_duration_since(at) < AFFINITY_REFRESH => n,
        _ => {
            let n = cpus_now();
            c.set(Some((n, now)));
            n
        }
    })
}

/// The level this wait spins at: `level`, except that every
/// [`PROBE_EVERY`]th wait at [`MAX_LEVEL`] spins at level 0.
#[cfg(not(loom))]
fn probe_level(level: u32) -> u32 {
    if level < MAX_LEVEL {
        return level;
    }
    AT_MAX.with(|n| {
        let k = n.get().wrapping_add(1);
        n.set(k);
        if k % PROBE_EVERY == 0 {
            0
        } else {
            level
        }
    })
}

/// Forgets this thread's cached CPU count (tests change the affinity, on
/// Linux).
#[cfg(all(test, not(loom), any(target_os = "linux", target_os = "android")))]
pub(crate) fn forget_cpus() {
    CPUS.with(|c| c.set(None));
}

/// One spinning wait's state: when it started and its budget.
#[derive(Debug)]
pub(crate) struct Spin {
    start: Instant,
    /// What this wait spins for.
    budget: Duration,
}

impl Spin {
    /// Decides the budget of a wait that starts now and asks to spin for
    /// `requested`, never past `deadline`.
    pub(crate) fn start(requested: Duration, deadline: Option<Instant>) -> Self {
        let start = Instant::now();
        #[cfg(loom)]
        let _ = (requested, deadline);
        #[cfg(loom)]
        return Self {
            start,
            budget: Duration::ZERO,
        };
        #[cfg(not(loom))]
        {
            let full = requested.min(MAX_SPIN);
            let mut budget = if full.is_zero() {
                Duration::ZERO
            } else {
                budget(full, cpus(start), probe_level(LEVEL.with(Cell::get)))
            };
            if let Some(d) = deadline {
                budget = budget.min(d.saturating_duration_since(start));
            }
            Self { start, budget }
        }
    }

    /// Spins on `load` (see [`spin_for`]); `Some` of a value other than
    /// `expected` if one was seen, which also records the success.
    pub(crate) fn spin(&self, load: impl FnMut() -> u32, expected: u32) -> Option<u32> {
        let seen = spin_for(load, expected, self.start, self.budget)?;
        self.record(Outcome::Caught);
        Some(seen)
    }

    /// Records that the spin ran out and the sleep after it has ended.
    pub(crate) fn slept(&self) {
        if !self.budget.is_zero() {
            self.record(Outcome::Slept);
        }
    }

    #[cfg_attr(loom, allow(clippy::unused_self))]
    fn record(&self, outcome: Outcome) {
        #[cfg(loom)]
        let _ = outcome;
        #[cfg(not(loom))]
        LEVEL.with(|l| l.set(next_level(l.get(), outcome)));
    }
}

/// This thread's back-off level (tests).
#[cfg(all(test, not(loom)))]
pub(crate) fn level() -> u32 {
    LEVEL.with(Cell::get)
}

/// Sets this thread's back-off level and restarts its probe count (tests).
#[cfg(all(test, not(loom)))]
pub(crate) fn set_level(level: u32) {
    LEVEL.with(|l| l.set(level));
    AT_MAX.with(|n| n.set(0));
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::{budget, next_level, spin_for, Outcome, MAX_LEVEL, MAX_SPIN};

    std::thread_local! {
        /// Clock reads of `spin_for` on this thread: each follows a few
        /// loads, so zero means the spin made no load at all.
        pub(crate) static SPINS: Cell<u64> = const { Cell::new(0) };
    }

    /// The clock reads of `spin_for` on this thread so far.
    #[cfg_attr(any(miri, loom, windows), allow(dead_code))]
    pub(crate) fn spins() -> u64 {
        SPINS.with(Cell::get)
    }

    /// Records that unit test `test` did not run its check, and why, as
    /// tests/common's `skip` does: on stderr and in the file named by
    /// `SHM_REGION_SKIP_LOG`, if set, which CI checks against
    /// verify/skips.allow.
    #[cfg_attr(any(miri, loom, windows), allow(dead_code))]
    pub(crate) fn log_skip(test: &str, reason: &str) {
        use std::io::Write;
        let name = format!("shm_region::{test}");
        eprintln!("SHM_REGION_SKIP: {name}: {reason}");
        if let Some(log) = std::env::var_os("SHM_REGION_SKIP_LOG") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("opening SHM_REGION_SKIP_LOG");
            f.write_all(format!("{name}\t{reason}\n").as_bytes())
                .expect("writing SHM_REGION_SKIP_LOG");
        }
    }

    #[test]
    fn one_cpu_gets_no_budget_and_more_get_the_capped_request_halved_per_level() {
        let us = Duration::from_micros;
        assert_eq!(budget(us(50), 1, 0), Duration::ZERO);
        assert_eq!(budget(us(50), 0, 0), Duration::ZERO);
        assert_eq!(budget(us(50), 2, 0), us(50));
        assert_eq!(budget(us(50), 2, 1), us(25));
        assert_eq!(budget(us(64), 2, MAX_LEVEL), us(1));
        assert_eq!(budget(us(64), 2, MAX_LEVEL + 5), us(1));
        assert_eq!(budget(Duration::from_secs(1), 8, 0), MAX_SPIN);
        assert_eq!(MAX_SPIN, us(100));
    }

    /// At the lowest budget (level `MAX_LEVEL`) every 32nd wait spins once
    /// with the full budget, to find out whether spinning pays again; the
    /// others keep the lowest.
    #[test]
    #[cfg(not(loom))]
    fn at_the_lowest_budget_every_32nd_wait_probes_with_the_full_one() {
        std::thread::spawn(|| {
            let us = Duration::from_micros;
            // Two CPUs, read "in an hour": not read again during the test.
            let later = Instant::now() + Duration::from_secs(3600);
            super::CPUS.with(|c| c.set(Some((2, later))));
            super::set_level(MAX_LEVEL);
            let budgets: Vec<Duration> = (0..2 * super::PROBE_EVERY)
                .map(|_| super::Spin::start(us(64), None).budget)
                .collect();
            let full: Vec<usize> = (1..=budgets.len())
                .filter(|&n| budgets[n - 1] == us(64))
                .collect();
            assert_eq!(full, [32, 64]);
            assert!(budgets.iter().all(|&b| b == us(64) || b == us(1)));
            assert_eq!(super::level(), MAX_LEVEL);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_failing_spin_halves_the_next_budget_and_a_caught_change_doubles_it() {
        assert_eq!(next_level(0, Outcome::Slept), 1);
        assert_eq!(next_level(3, Outcome::Slept), 4);
        assert_eq!(next_level(MAX_LEVEL, Outcome::Slept), MAX_LEVEL);
        assert_eq!(next_level(3, Outcome::Caught), 2);
        assert_eq!(next_level(0, Outcome::Caught), 0);
        // Ten failures in a row end at the deepest level, one catch
        // doubles the budget from there.
        let mut level = 0;
        for _ in 0..10 {
            level = next_level(level, Outcome::Slept);
        }
        assert_eq!(level, MAX_LEVEL);
        assert_eq!(next_level(level, Outcome::Caught), MAX_LEVEL - 1);
        assert_eq!(MAX_LEVEL, 6);
    }

    #[test]
    fn spin_for_returns_the_first_value_that_differs() {
        let mut loads = 0;
        let seen = spin_for(
            || {
                loads += 1;
                if loads == 7 {
                    9
                } else {
                    3
                }
            },
            3,
            Instant::now(),
            Duration::from_secs(60),
        );
        assert_eq!((seen, loads), (Some(9), 7));
    }

    #[test]
    fn spin_for_with_a_zero_budget_makes_no_load_and_a_budget_ends_it() {
        let mut loads = 0;
        assert_eq!(
            spin_for(
                || {
                    loads += 1;
                    3
                },
                3,
                Instant::now(),
                Duration::ZERO
            ),
            None
        );
        assert_eq!(loads, 0);
        let start = Instant::now();
        let budget = Duration::from_millis(2);
        assert_eq!(spin_for(|| 3, 3, start, budget), None);
        let took = start.elapsed();
        assert!(took >= budget, "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
