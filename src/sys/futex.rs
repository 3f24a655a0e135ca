//! Futex waits and wakes on an aligned word of a [`Mapping`] (Linux,
//! outside Miri and loom): invariants 1 to 3 of the parent module, and its
//! paragraph "Futex words".
//!
//! The calls are shared futexes (no `FUTEX_PRIVATE_FLAG`). For a
//! `MAP_SHARED` file mapping the kernel keys the word by the file and the
//! offset in it, so a wake through any mapping of the file, in any process,
//! reaches a waiter on any other; for private anonymous memory (in-memory
//! regions) it keys it by this process and the address.

use std::sync::atomic::AtomicU32;

use rustix::io::Errno;
use rustix::thread::futex::{self, Flags, Timespec};

use super::mapping::Mapping;

/// The largest count `FUTEX_WAKE` takes as given: the kernel reads the
/// count as a C `int` and wakes one waiter for 0 or a negative count.
const MAX_WAKE: u32 = i32::MAX.unsigned_abs();

impl Mapping {
    /// The aligned word at `offset`, as a reference that only the futex
    /// calls below use; `None` if misaligned, not inside the mapping, or on
    /// a read-only mapping where `read_only_load_ok(4)` does not hold.
    fn futex_word(&self, offset: usize) -> Option<&AtomicU32> {
        if offset % std::mem::align_of::<AtomicU32>() != 0 {
            return None;
        }
        if !self.can_load(std::mem::size_of::<AtomicU32>()) {
            return None;
        }
        let p = self.checked_ptr(offset, std::mem::size_of::<AtomicU32>())?;
        // SAFETY: `p` is inside the mapping for 4 bytes (checked by
        // `checked_ptr`) and aligned (the base is page-aligned and `offset`
        // is a multiple of 4), and stays mapped while `&self` lives
        // (invariant 1: unmapped only in `Drop`). The reference is used only
        // to pass its address to the kernel: no Rust access is made through
        // it and it does not leave this module, and the kernel only reads
        // the word, so on a read-only mapping (formed only where
        // `read_only_load_ok(4)` holds, as for `load_u32`) nothing stores
        // through it (invariant 3, "Futex words"). There the pages are not
        // valid for writes, which `from_ptr` asks for; std's rule for
        // atomic accesses to read-only memory (relaxed loads of this size
        // are allowed, `read_only_load_ok`) is what covers it, as it covers
        // `load_u32` (invariant 3), and this reference makes no access at
        // all.
        Some(unsafe { AtomicU32::from_ptr(p.cast::<u32>()) })
    }

    /// One `FUTEX_WAIT` on the word at `offset`: sleeps while it holds
    /// `expected`, for at most `timeout` (relative, on `CLOCK_MONOTONIC`)
    /// when one is given. `Ok(())` when woken (or spuriously); the kernel's
    /// `EAGAIN` (the word differed), `ETIMEDOUT`, `EINTR` and `EFAULT` (the
    /// word's page is not there: the file was truncated under it) are
    /// passed on. `None` if the word is not available (see `futex_word`).
    pub(crate) fn futex_wait(
        &self,
        offset: usize,
        expected: u32,
        timeout: Option<&Timespec>,
    ) -> Option<Result<(), Errno>> {
        let word = self.futex_word(offset)?;
        #[cfg(test)]
        seam::WAITS.with(|n| n.set(n.get() + 1));
        Some(futex::wait(word, Flags::empty(), expected, timeout))
    }

    /// One `FUTEX_WAKE` of up to `count` waiters on the word at `offset`;
    /// the number woken. A count of 0 makes no system call and wakes
    /// nobody; counts above `i32::MAX` are `i32::MAX` (every waiter).
    /// `None` if the word is not available (see `futex_word`).
    pub(crate) fn futex_wake(&self, offset: usize, count: u32) -> Option<Result<usize, Errno>> {
        let word = self.futex_word(offset)?;
        if count == 0 {
            return Some(Ok(0));
        }
        #[cfg(test)]
        seam::WAKES.with(|n| n.set(n.get() + 1));
        Some(futex::wake(word, Flags::empty(), count.min(MAX_WAKE)))
    }
}

/// A test seam: the futex system calls this thread made, counted right
/// before each, so that unit tests can prove a call was or was not made.
#[cfg(test)]
pub(crate) mod seam {
    use std::cell::Cell;

    std::thread_local! {
        /// `FUTEX_WAIT` calls made by this thread.
        pub(crate) static WAITS: Cell<u64> = const { Cell::new(0) };
        /// `FUTEX_WAKE` calls made by this thread.
        pub(crate) static WAKES: Cell<u64> = const { Cell::new(0) };
    }

    /// `FUTEX_WAIT` calls made by this thread so far.
    pub(crate) fn waits() -> u64 {
        WAITS.with(Cell::get)
    }

    /// `FUTEX_WAKE` calls made by this thread so far.
    pub(crate) fn wakes() -> u64 {
        WAKES.with(Cell::get)
    }
}
