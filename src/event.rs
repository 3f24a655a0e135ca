//! `EventCount`: a sequence word and a sleeper count in a region, so that
//! a notify with nobody asleep makes no system call.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::spin::Spin;
// `std`'s atomics and `Arc`, or loom's under `--cfg loom`.
use crate::sync::{fence, Arc, AtomicU32};
use crate::sys::Mapping;

/// The operation names errors carry.
const NOTIFY: &str = "EventCount::notify";
const WAIT: &str = "EventCount::wait";

/// An event count over 8 aligned bytes of a region: the 4-byte **sequence**
/// at its offset, bumped by each [`notify`](Self::notify), and the 4-byte
/// **sleeper count** after it, which waiters raise while they sleep.
///
/// Made by [`Region::event_count`](crate::Region::event_count). Like
/// [`SharedU32`](crate::SharedU32) it holds the mapping it points into, is
/// `Clone`, `Send` and `Sync`, and reaches the same memory as every other
/// view, handle and process mapping the file; what
/// [`SharedU32`](crate::SharedU32) says about a later truncation holds for
/// its two words too: `notify` and `wait` access them from this process
/// first, so a page a peer truncated away raises `SIGBUS` there (contained
/// by [`sigbus::install`](crate::sigbus::install)).
///
/// A consumer reads [`current`](Self::current), checks for work, and if
/// there is none calls [`wait`](Self::wait) with the sequence it read; a
/// producer publishes work, then calls [`notify`](Self::notify). No notify
/// is lost between the read and the sleep: the waiter counts itself as a
/// sleeper, then (after a `SeqCst` fence) re-reads the sequence before it
/// sleeps, and `notify` bumps the sequence, then (after a `SeqCst` fence)
/// reads the sleeper count, so either the waiter sees the new sequence or
/// the notifier sees the sleeper and wakes it. With nobody asleep, `notify`
/// is one atomic add, a fence and a load: no system call.
///
/// ```
/// # fn main() -> Result<(), shm_region::Error> {
/// use std::sync::atomic::Ordering;
/// use std::time::Duration;
/// use shm_region::MmapRegion;
///
/// let host = MmapRegion::in_memory(4096)?;
/// let view = host.region();
/// let events = view.event_count(0)?;
/// let consumer = {
///     let (view, events) = (view.clone(), events.clone());
///     std::thread::spawn(move || -> Result<u64, shm_region::Error> {
///         loop {
///             let seen = events.current();
///             let item = view.load_u64(8, Ordering::Acquire)?;
///             if item != 0 {
///                 return Ok(item);
///             }
///             events.wait(seen, Duration::from_micros(20), None)?;
///         }
///     })
/// };
/// view.atomic_u64(8)?.store(42, Ordering::Release);
/// events.notify()?;
/// assert_eq!(consumer.join().unwrap()?, 42);
/// # Ok(()) }
/// ```
///
/// **A peer that scribbles.** Both words are shared with every process
/// mapping the file, and nothing a peer stores there is trusted. A peer that
/// bumps the sequence causes spurious returns from [`wait`](Self::wait) (a
/// new value that no notify made); one that raises the sleeper count makes
/// each `notify` make a wake system call for nobody; one that lowers it to
/// 0 while a thread sleeps (or stores `u32::MAX`, which the next waiter's
/// announcement wraps to 0) makes the next `notify` skip the wake, so that
/// thread sleeps until its timeout; one that stores back the value a waiter
/// saw can hide a notify the same way. The counts are only numbers: they
/// wrap, and no value makes anything panic, fail, or sleep past the
/// timeout. A wait without a timeout sleeps, while a peer misbehaves, until
/// some wake reaches it: pass a timeout where peers are not trusted.
///
/// The sequence wraps after 2³² notifies; a waiter that sleeps through
/// exactly a multiple of 2³² of them sees no change.
///
/// **Other systems.** Off Linux, and under Miri, sleeping is the poll of
/// [`Region::wait_u32`](crate::Region::wait_u32) (naps from 10 µs to 1 ms)
/// and `notify` makes no system call at all (it returns 0). Under loom, a
/// sleep without a timeout blocks until a notify wakes it (so a lost
/// wake-up is a deadlock loom reports), and one with a timeout times out
/// at once.
#[derive(Clone)]
pub struct EventCount {
    map: Arc<Mapping>,
    offset: usize,
}

impl EventCount {
    /// The event count at `offset` of `map`: `None` unless both words can
    /// be loaded there (the view checked alignment and bounds).
    pub(crate) fn new(map: Arc<Mapping>, offset: usize) -> Option<Self> {
        let second = offset.checked_add(4)?;
        map.load_u32(offset, Ordering::Relaxed)?;
        map.load_u32(second, Ordering::Relaxed)?;
        Some(Self { map, offset })
    }

    /// The offset of the sequence word in the region (the sleeper count
    /// is the word after it).
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether the view it was made from was read-only: then it can
    /// [`wait`](Self::wait) (by polling) and read, but not notify.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        !self.map.is_writable()
    }

    /// The sequence, loaded with `Acquire`: what a notify published before
    /// its bump is visible once this returns the bumped value.
    #[must_use]
    pub fn current(&self) -> u32 {
        self.load_seq()
    }

    /// The sleeper count as it is now (diagnostics: a peer may have
    /// written anything there).
    #[must_use]
    pub fn sleepers(&self) -> u32 {
        self.map
            .load_u32(self.offset + 4, Ordering::Relaxed)
            .expect("checked when the event count was made")
    }

    fn load_seq(&self) -> u32 {
        // `new` checked the word, and a mapping's length and protection
        // never change.
        self.map
            .load_u32(self.offset, Ordering::Acquire)
            .expect("checked when the event count was made")
    }

    /// Bumps the sequence (`Release`, wrapping) and, if the sleeper count
    /// is not 0, wakes every thread sleeping on it, in any process. Returns
    /// how many were woken: 0 without a system call when nobody is counted
    /// as asleep.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ReadOnly`] if the event count was made from a
    /// read-only view (nothing is changed); on Linux,
    /// [`ErrorKind::Truncated`] if the futex call says `EFAULT` and
    /// [`ErrorKind::Os`] for any other error of it. (A page a peer
    /// truncated away faults at the atomic add before that, as for
    /// [`SharedU32`](crate::SharedU32).)
    pub fn notify(&self) -> Result<usize> {
        let (Some(seq), Some(sleepers)) = (self.seq(), self.sleepers_word()) else {
            return Err(Error::new(ErrorKind::ReadOnly, NOTIFY).because(
                "a read-only view cannot notify: make the event count from a writable view",
            ));
        };
        seq.fetch_add(1, Ordering::Release);
        // Store-load order with the waiter's announce-then-re-read: either
        // this load sees its sleeper or its re-read sees this bump.
        fence(Ordering::SeqCst);
        if sleepers.load(Ordering::Relaxed) == 0 {
            return Ok(0);
        }
        crate::wait::wake_all(&self.map, self.offset).map_err(|e| e.in_operation(NOTIFY))
    }

    /// Waits until the sequence differs from `seen` and returns it
    /// (`Some`), or returns `None` once `timeout` has passed.
    ///
    /// First the sequence is checked (a value other than `seen` returns at
    /// once, without spinning or sleeping). Then it spins for up to `spin`
    /// as [`Region::wait_u32_spin`](crate::Region::wait_u32_spin) does
    /// (capped, backing off, and not at all when the thread may run on one
    /// CPU). Then it counts itself in the sleeper count, re-checks the
    /// sequence after a `SeqCst` fence, and sleeps in a futex wait on the
    /// sequence word for at most the time left; after each sleep it
    /// uncounts itself and re-checks. A wake-up with the sequence unchanged
    /// (a peer's wake, or a spurious one) sleeps again, within the same
    /// deadline. The deadline is taken on a monotonic clock when the call
    /// starts; a timeout `Instant` cannot represent (`Duration::MAX`) is no
    /// timeout. `Some(Duration::ZERO)` checks and returns `None` if the
    /// sequence is still `seen`.
    ///
    /// On a read-only view it cannot count itself, so a notify does not
    /// wake it: after the spin it polls the sequence, with naps from 10 µs
    /// doubling to 1 ms, so it sees a notify within about a nap.
    ///
    /// # Errors
    ///
    /// On Linux, [`ErrorKind::Truncated`] if the futex call says `EFAULT`
    /// and [`ErrorKind::Os`] for any other error of it. (A page a peer
    /// truncated away faults at the first load of the sequence before
    /// that, as for [`SharedU32`](crate::SharedU32).)
    pub fn wait(
        &self,
        seen: u32,
        spin: Duration,
        timeout: Option<Duration>,
    ) -> Result<Option<u32>> {
        let now = self.load_seq();
        if now != seen {
            return Ok(Some(now));
        }
        #[cfg(not(loom))]
        let deadline = crate::wait::deadline(timeout);
        #[cfg(loom)]
        let deadline = None;
        let spin = Spin::start(spin, deadline);
        if let Some(v) = spin.spin(|| self.load_seq(), seen) {
            return Ok(Some(v));
        }
        let result = match self.sleepers_word() {
            Some(sleepers) => self.sleep(sleepers, seen, timeout, deadline),
            None => self.poll(seen, deadline),
        };
        spin.slept();
        result
    }

    /// The counted sleep of [`wait`](Self::wait): bounded by `deadline`,
    /// or under loom by `timeout` (which elapses in the sleep model).
    fn sleep(
        &self,
        sleepers: &AtomicU32,
        seen: u32,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Result<Option<u32>> {
        #[cfg(not(loom))]
        let _ = timeout;
        #[cfg(loom)]
        let _ = deadline;
        loop {
            sleepers.fetch_add(1, Ordering::Relaxed);
            // Store-load order with notify's bump-then-read (see there).
            fence(Ordering::SeqCst);
            let now = self.load_seq();
            if now != seen {
                sleepers.fetch_sub(1, Ordering::Relaxed);
                return Ok(Some(now));
            }
            #[cfg(not(loom))]
            // No deadline: no timeout, or one `Instant` cannot hold.
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            // Under loom timeouts elapse in the sleep model.
            #[cfg(loom)]
            let left = timeout;
            if left == Some(Duration::ZERO) {
                sleepers.fetch_sub(1, Ordering::Relaxed);
                return Ok(None);
            }
            let woken = crate::wait::sleep(&self.map, self.offset, seen, left);
            // Wrapping: a peer may have lowered the count meanwhile.
            sleepers.fetch_sub(1, Ordering::Relaxed);
            let woken = woken.map_err(|e| e.in_operation(WAIT))?;
            let now = self.load_seq();
            if now != seen {
                return Ok(Some(now));
            }
            if !woken {
                return Ok(None);
            }
        }
    }

    /// The uncounted wait of a read-only view: a poll.
    #[cfg(not(loom))]
    fn poll(&self, seen: u32, deadline: Option<Instant>) -> Result<Option<u32>> {
        let mut last = seen;
        let changed = crate::wait::poll_word(
            || {
                last = self.load_seq();
                last
            },
            seen,
            deadline,
        );
        Ok(changed.then_some(last))
    }

    /// Under loom every region is writable: never called.
    #[cfg(loom)]
    fn poll(&self, _seen: u32, _deadline: Option<Instant>) -> Result<Option<u32>> {
        Err(Error::new(ErrorKind::Unsupported, WAIT))
    }

    /// The sequence word as an atomic, on a writable mapping.
    fn seq(&self) -> Option<&AtomicU32> {
        self.map.atomic_u32(self.offset)
    }

    /// The sleeper count as an atomic, on a writable mapping.
    fn sleepers_word(&self) -> Option<&AtomicU32> {
        self.map.atomic_u32(self.offset + 4)
    }
}

impl fmt::Debug for EventCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventCount")
            .field("offset", &self.offset)
            .field("sequence", &self.current())
            .field("sleepers", &self.sleepers())
            .field("read_only", &self.is_read_only())
            .finish()
    }
}

/// Unit tests with a seam: the futex system calls made, counted in
/// `sys/futex.rs` right before each.
#[cfg(all(
    test,
    any(target_os = "linux", target_os = "android"),
    not(miri),
    not(loom)
))]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::sys::futex_seam::{waits, wakes};
    use crate::MmapRegion;

    #[test]
    fn notify_with_nobody_counted_makes_no_system_call() {
        let host = MmapRegion::in_memory(4096).unwrap();
        let ec = host.region().event_count(8).unwrap();
        let before = wakes();
        for i in 1..=1000 {
            assert_eq!(ec.notify(), Ok(0));
            assert_eq!(ec.current(), i);
        }
        assert_eq!(wakes(), before, "a notify with no sleeper made a wake call");
        assert_eq!(ec.sleepers(), 0);
    }

    #[test]
    fn notify_with_a_sleeper_counted_makes_one_wake_call_whatever_the_count() {
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();
        let ec = view.event_count(8).unwrap();
        for count in [1, 2, u32::MAX] {
            view.atomic_u32(12).unwrap().store(count, Ordering::Relaxed);
            let before = wakes();
            // Nobody is really asleep: the call wakes 0.
            assert_eq!(ec.notify(), Ok(0), "count {count}");
            assert_eq!(wakes(), before + 1, "count {count}");
        }
    }

    #[test]
    fn a_wait_that_finds_the_sequence_changed_makes_no_system_call_and_counts_nobody() {
        let host = MmapRegion::in_memory(4096).unwrap();
        let ec = host.region().event_count(0).unwrap();
        ec.notify().unwrap();
        let before = waits();
        assert_eq!(ec.wait(0, Duration::from_micros(50), None), Ok(Some(1)));
        assert_eq!(waits(), before);
        assert_eq!(ec.sleepers(), 0);
    }

    #[test]
    fn a_timed_out_wait_sleeps_in_the_futex_and_uncounts_itself() {
        let host = MmapRegion::in_memory(4096).unwrap();
        let ec = host.region().event_count(0).unwrap();
        let before = waits();
        assert_eq!(
            ec.wait(0, Duration::ZERO, Some(Duration::from_millis(5))),
            Ok(None)
        );
        assert_eq!(waits(), before + 1);
        assert_eq!(ec.sleepers(), 0);
    }
}
