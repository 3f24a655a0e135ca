//! In-memory backing under loom (`RUSTFLAGS="--cfg loom"`): the `Mapping`
//! of every region when the crate is built for loom models, so that a
//! downstream protocol over a [`Region`](crate::Region) is model-checked
//! together with the crate's own remapping protocol.
//!
//! Loom atomics are handles into loom's execution state, not memory, so
//! they cannot be laid over bytes. Instead the region's bytes are a table of
//! loom atomics, allocated once at construction for the whole capacity:
//!
//! - one `AtomicU32` per aligned 4-byte word. [`Mapping::atomic_u32`] and
//!   [`Mapping::load_u32`] use the word itself. Copies go word by word with
//!   relaxed accesses, so loom explores every store a racing (or
//!   insufficiently synchronized) reader may see: [`Mapping::read`] is one
//!   relaxed load per word touched, and [`Mapping::write`] one relaxed store
//!   per whole word and, for a word only partly written, a relaxed
//!   `fetch_and` clearing the bits that become 0 followed by a relaxed
//!   `fetch_or` setting those that become 1 (read-modify-writes always act
//!   on the newest value, so no CAS loop is needed and the bytes of the word
//!   that the copy does not cover keep whatever a racing writer stored).
//!   Between the two, a racing reader may see the copied bytes with some
//!   bits old and some new; a synchronized reader never does.
//! - one `AtomicU64` per aligned 8-byte slot, for [`Mapping::atomic_u64`]
//!   and [`Mapping::load_u64`]. These are separate loom objects: bytes used
//!   through them are not the bytes copies and 4-byte atomics see (an
//!   8-byte atomic cannot be two loom words). Models must not mix the two
//!   views of the same bytes, which is the mixed-size rule that
//!   `Region::atomic_u64` already states for real memory.
//!
//! So a region of capacity `c` bytes, rounded up to a multiple of 8, costs
//! `c / 4 + c / 8` loom objects (96 for 256 bytes), plus a loom `Mutex` and
//! `Condvar`: the futex model `EventCount` sleeps in
//! ([`Mapping::futex_sleep`], [`Mapping::futex_wake_all`]). Words nobody
//! touches, and the futex model when nothing sleeps, add only their
//! creation to each iteration, never branches.
//!
//! There is no raw memory here and no `unsafe`: the invariants of the
//! parent module do not come into play. [`Mapping::base`] is the address of
//! the table, which identifies the mapping (it stays the same across growth
//! in place) but must not be dereferenced. File mappings are not modelled:
//! the file-backed constructors return `ErrorKind::Unsupported` under loom
//! before they reach [`Mapping::new`].

use std::fmt;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

use crate::sys::Errno;
use loom::sync::atomic::{AtomicU32, AtomicU64};
use loom::sync::{Condvar, Mutex};

use super::{range_fits, Hint};

/// Bytes per modelled word (`AtomicU32`).
const WORD: usize = 4;
/// Bytes per modelled wide slot (`AtomicU64`); capacities are rounded up to
/// it so that every word lies in one slot.
const WIDE: usize = 8;

/// The loom model of an in-memory region's memory; see the module
/// documentation.
pub(crate) struct Mapping {
    /// One relaxed-accessed loom word per 4 bytes of capacity.
    words: Box<[AtomicU32]>,
    /// One loom `AtomicU64` per 8 bytes of capacity, for the 8-byte accessors.
    wide: Box<[AtomicU64]>,
    /// Capacity in bytes: `words.len() * 4 == wide.len() * 8`.
    len: usize,
    /// The futex model of `EventCount` sleeps: (wake generation, sleepers
    /// queued since the last wake), and the condition variable they block
    /// on.
    futex: (Mutex<(u64, usize)>, Condvar),
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("loom_words", &self.words.len())
            .field("loom_wide", &self.wide.len())
            .finish()
    }
}

impl Mapping {
    /// Never called under loom: the file-backed constructors refuse first
    /// (`ErrorKind::Unsupported`). Present so that the file paths compile.
    pub(crate) fn new(
        _fd: BorrowedFd<'_>,
        _len: usize,
        _reserve: usize,
        _writable: bool,
    ) -> Result<Self, Errno> {
        Err(Errno::NOTSUP)
    }

    /// No registry under loom: nothing to share.
    #[allow(clippy::unused_self, reason = "the same interface as the OS mapping")]
    pub(crate) fn join(&mut self, _earlier: &Self) {}

    /// Drops `token` at once: loom mappings hold no address space.
    pub(crate) fn hold(&mut self, token: Box<dyn fmt::Debug + Send + Sync>) {
        drop(token);
    }

    /// A writable model of `capacity` zero bytes (rounded up to a multiple
    /// of 8): `capacity / 4` loom `AtomicU32`s and `capacity / 8` loom
    /// `AtomicU64`s, created now (so inside the running loom model).
    ///
    /// # Errors
    ///
    /// `EINVAL` for a zero capacity or one that overflows when rounded.
    pub(crate) fn in_memory(capacity: usize) -> Result<Self, Errno> {
        let len = capacity
            .checked_add(WIDE - 1)
            .map(|n| n & !(WIDE - 1))
            .filter(|&n| n > 0)
            .ok_or(Errno::INVAL)?;
        Ok(Self {
            words: (0..len / WORD).map(|_| AtomicU32::new(0)).collect(),
            wide: (0..len / WIDE).map(|_| AtomicU64::new(0)).collect(),
            len,
            futex: (Mutex::new((0, 0)), Condvar::new()),
        })
    }

    /// Whether the first `len` bytes lie inside this model.
    #[inline]
    pub(crate) fn covers(&self, len: usize) -> bool {
        len <= self.len
    }

    /// The address of the table of loom words: it identifies the mapping
    /// but is not the bytes, and must not be dereferenced.
    #[inline]
    pub(crate) fn base(&self) -> *mut u8 {
        self.words.as_ptr().cast::<u8>().cast_mut()
    }

    /// Never cut: the model has no file to lose (`usize::MAX`).
    #[inline]
    pub(crate) fn cut(&self) -> usize {
        usize::MAX
    }

    /// Always `true`: in-memory regions are writable.
    #[inline]
    pub(crate) fn is_writable(&self) -> bool {
        true
    }

    /// Loads of any supported width: the model is always writable.
    pub(crate) fn can_load(&self, _size: usize) -> bool {
        true
    }

    /// Bytes modelled (the rounded capacity).
    pub(crate) fn mapped_len(&self) -> usize {
        self.len
    }

    /// As [`read`](Self::read), if the range also lies inside `0..limit`.
    pub(crate) fn read_within(&self, offset: usize, buf: &mut [u8], limit: usize) -> bool {
        range_fits(offset, buf.len(), limit) && self.read(offset, buf)
    }

    /// As [`write`](Self::write), if the range also lies inside `0..limit`.
    pub(crate) fn write_within(&self, offset: usize, data: &[u8], limit: usize) -> bool {
        range_fits(offset, data.len(), limit) && self.write(offset, data)
    }

    /// As [`read_within`](Self::read_within); `whole` (the length of the
    /// copy this is a part of) only chooses the hardware copy of real
    /// mappings.
    pub(crate) fn read_part_within(
        &self,
        offset: usize,
        buf: &mut [u8],
        limit: usize,
        _whole: usize,
    ) -> bool {
        self.read_within(offset, buf, limit)
    }

    /// As [`write_within`](Self::write_within); `whole` as in
    /// [`read_part_within`](Self::read_part_within).
    pub(crate) fn write_part_within(
        &self,
        offset: usize,
        data: &[u8],
        limit: usize,
        _whole: usize,
    ) -> bool {
        self.write_within(offset, data, limit)
    }

    /// Copies `buf.len()` bytes at `offset` out, one relaxed load per word
    /// touched. `false`, copying nothing, if the range is not inside.
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> bool {
        if !range_fits(offset, buf.len(), self.len) {
            return false;
        }
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done;
            let (word, skip) = (at / WORD, at % WORD);
            let n = (WORD - skip).min(buf.len() - done);
            let bytes = self.words[word].load(Ordering::Relaxed).to_ne_bytes();
            buf[done..done + n].copy_from_slice(&bytes[skip..skip + n]);
            done += n;
        }
        true
    }

    /// Copies `data` in at `offset`: a relaxed store per whole word, and for
    /// a partial word a relaxed `fetch_and` then `fetch_or` (each skipped
    /// when it would change nothing). `false`, copying nothing, if the range
    /// is not inside.
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> bool {
        if !range_fits(offset, data.len(), self.len) {
            return false;
        }
        let mut done = 0;
        while done < data.len() {
            let at = offset + done;
            let (word, skip) = (at / WORD, at % WORD);
            let n = (WORD - skip).min(data.len() - done);
            let cell = &self.words[word];
            if n == WORD {
                let mut bytes = [0; WORD];
                bytes.copy_from_slice(&data[done..done + WORD]);
                cell.store(u32::from_ne_bytes(bytes), Ordering::Relaxed);
            } else {
                let (mut mask, mut bits) = ([0; WORD], [0; WORD]);
                mask[skip..skip + n].fill(0xff);
                bits[skip..skip + n].copy_from_slice(&data[done..done + n]);
                let (mask, bits) = (u32::from_ne_bytes(mask), u32::from_ne_bytes(bits));
                let clear = mask & !bits;
                if clear != 0 {
                    cell.fetch_and(!clear, Ordering::Relaxed);
                }
                if bits != 0 {
                    cell.fetch_or(bits, Ordering::Relaxed);
                }
            }
            done += n;
        }
        true
    }

    /// The loom word at `offset`, if aligned and inside.
    pub(crate) fn atomic_u32(&self, offset: usize) -> Option<&AtomicU32> {
        if offset % WORD != 0 || !range_fits(offset, WORD, self.len) {
            return None;
        }
        self.words.get(offset / WORD)
    }

    /// The loom 8-byte slot at `offset` (separate from the words over the
    /// same bytes), if aligned and inside.
    pub(crate) fn atomic_u64(&self, offset: usize) -> Option<&AtomicU64> {
        if offset % WIDE != 0 || !range_fits(offset, WIDE, self.len) {
            return None;
        }
        self.wide.get(offset / WIDE)
    }

    /// The futex model's wait on the word at `offset`: under the model's
    /// lock, a relaxed load compared with `expected` (`Some(true)` if it
    /// differs, as the kernel's `EAGAIN`); if equal and `timed`, a yield
    /// after the lock is released and `Some(false)` (the timeout elapses
    /// at once); if equal and not `timed`, queued and blocked until a
    /// [`futex_wake_all`](Self::futex_wake_all), then `Some(true)`. `None`
    /// if the word is not inside. One queue for the whole mapping.
    pub(crate) fn futex_sleep(&self, offset: usize, expected: u32, timed: bool) -> Option<bool> {
        let word = self.atomic_u32(offset)?;
        let (lock, woken) = &self.futex;
        let mut state = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if word.load(Ordering::Relaxed) != expected {
            return Some(true);
        }
        if timed {
            drop(state);
            loom::thread::yield_now();
            return Some(false);
        }
        let generation = state.0;
        state.1 += 1;
        while state.0 == generation {
            state = woken
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        Some(true)
    }

    /// Wakes every sleeper queued in the futex model; how many.
    pub(crate) fn futex_wake_all(&self) -> usize {
        let (lock, woken) = &self.futex;
        let mut state = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let queued = std::mem::take(&mut state.1);
        if queued > 0 {
            state.0 += 1;
            woken.notify_all();
        }
        queued
    }

    /// A load of the loom word at `offset` with `order`; `None` if
    /// misaligned, outside, or `order` is not a load ordering.
    pub(crate) fn load_u32(&self, offset: usize, order: Ordering) -> Option<u32> {
        if matches!(order, Ordering::Release | Ordering::AcqRel) {
            return None;
        }
        self.atomic_u32(offset).map(|a| a.load(order))
    }

    /// As [`load_u32`](Self::load_u32), for the 8-byte slot at `offset`.
    pub(crate) fn load_u64(&self, offset: usize, order: Ordering) -> Option<u64> {
        if matches!(order, Ordering::Release | Ordering::AcqRel) {
            return None;
        }
        self.atomic_u64(offset).map(|a| a.load(order))
    }

    /// Nothing to advise; `EINVAL` if the range is not inside.
    pub(crate) fn advise(&self, offset: usize, len: usize, _hint: Hint) -> Result<(), Errno> {
        self.in_range(offset, len)
    }

    /// Nothing to keep out of core dumps or children: loom's objects are
    /// not memory a dump or `fork` could copy.
    pub(crate) fn exclude(&self, _from_dumps: bool, _from_children: bool) -> Result<(), Errno> {
        Ok(())
    }

    /// Nothing to write back; `EINVAL` if the range is not inside.
    pub(crate) fn sync(&self, offset: usize, len: usize, _wait: bool) -> Result<(), Errno> {
        self.in_range(offset, len)
    }

    /// Nothing to lock (loom's objects are not pages); `EINVAL` if the
    /// range is not inside.
    pub(crate) fn lock(&self, offset: usize, len: usize) -> Result<(), Errno> {
        self.in_range(offset, len)
    }

    /// Never called with a file under loom (see [`new`](Self::new)).
    #[must_use]
    pub(crate) fn with_file(self, _file: std::sync::Arc<std::os::fd::OwnedFd>) -> Self {
        self
    }

    /// No file: the model is memory.
    pub(crate) fn file(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Descriptor output from the model: the range is copied out word by
    /// word (as [`read`](Self::read)) into a private buffer, which one
    /// `write(2)` then writes. `None` if the range is not inside both
    /// `0..limit` and the model.
    pub(crate) fn write_fd(
        &self,
        offset: usize,
        len: usize,
        limit: usize,
        fd: BorrowedFd<'_>,
    ) -> Option<Result<usize, Errno>> {
        // Checked before the buffer is made: a length past the model is
        // refused, never allocated.
        if !range_fits(offset, len, limit.min(self.len)) {
            return None;
        }
        let mut bytes = vec![0; len];
        if !self.read_within(offset, &mut bytes, limit) {
            return None;
        }
        Some(rustix::io::write(fd, &bytes))
    }

    /// Descriptor input into the model: one `read(2)` into a private
    /// buffer, whose first bytes (as many as were read) are then copied in
    /// (as [`write`](Self::write)). `None` if the range is not inside both
    /// `0..limit` and the model.
    pub(crate) fn read_fd(
        &self,
        offset: usize,
        len: usize,
        limit: usize,
        fd: BorrowedFd<'_>,
    ) -> Option<Result<usize, Errno>> {
        if !range_fits(offset, len, limit.min(self.len)) {
            return None;
        }
        let mut bytes = vec![0; len];
        Some(rustix::io::read(fd, &mut bytes[..]).map(|n| {
            let copied = self.write(offset, &bytes[..n]);
            debug_assert!(copied, "the range was checked above");
            n
        }))
    }

    fn in_range(&self, offset: usize, len: usize) -> Result<(), Errno> {
        if range_fits(offset, len, self.len) {
            Ok(())
        } else {
            Err(Errno::INVAL)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_words_agree_and_partial_writes_keep_neighbours() {
        loom::model(|| {
            let m = Mapping::in_memory(13).unwrap();
            assert_eq!(m.mapped_len(), 16);
            assert!(m.write(1, &[1, 2, 3, 4, 5, 6]));
            let mut b = [9; 8];
            assert!(m.read(0, &mut b));
            assert_eq!(b, [0, 1, 2, 3, 4, 5, 6, 0]);
            assert!(m.write(2, &[0]));
            assert!(m.read(0, &mut b));
            assert_eq!(b, [0, 1, 0, 3, 4, 5, 6, 0]);
            m.atomic_u32(4)
                .unwrap()
                .store(u32::from_ne_bytes([7, 8, 9, 10]), Ordering::Relaxed);
            assert!(m.read(3, &mut b[..3]));
            assert_eq!(b[..3], [3, 7, 8]);
            assert_eq!(
                m.load_u32(0, Ordering::Acquire),
                Some(u32::from_ne_bytes([0, 1, 0, 3]))
            );
            // The 8-byte slots are separate objects.
            assert_eq!(m.load_u64(0, Ordering::Relaxed), Some(0));
            m.atomic_u64(8).unwrap().store(u64::MAX, Ordering::Relaxed);
            assert_eq!(m.load_u32(8, Ordering::Relaxed), Some(0));
            assert_eq!(m.load_u64(8, Ordering::Relaxed), Some(u64::MAX));
        });
    }

    /// A deterministic xorshift64 stream, so a failure replays exactly.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// A value in `0..n`.
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
        }

        /// Uniformly random bytes (half of all bits set, on average).
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next().to_ne_bytes()[3]).collect()
        }
    }

    /// Compares every byte of `m` (through `read`, and through each word's
    /// `load_u32`) with `shadow`; `what` names the operation for a failure.
    fn assert_agrees(m: &Mapping, shadow: &[u8], what: &dyn Fn() -> String) {
        let mut all = vec![0xA5; shadow.len()];
        assert!(m.read(0, &mut all));
        assert_eq!(all, shadow, "after {}", what());
        for (i, w) in shadow.chunks_exact(WORD).enumerate() {
            let word = u32::from_ne_bytes(w.try_into().unwrap());
            assert_eq!(
                m.load_u32(i * WORD, Ordering::Relaxed),
                Some(word),
                "word {i} after {}",
                what()
            );
        }
    }

    #[test]
    fn writes_of_every_width_and_offset_agree_with_a_plain_byte_array() {
        // The backing against a plain byte array: every width 1..=9 at every
        // offset of a 32-byte model over bytes already non-zero (each write
        // of the sweep is followed by its bitwise complement, so every bit a
        // write covers changes both ways), then thousands of random writes
        // and reads (widths 1..=13, any offset). After each write all bytes
        // are compared, so a partial-word write that leaves an old bit set,
        // clears one it should not, or touches a neighbouring byte fails.
        // One thread: a single loom execution with many branches.
        const LEN: usize = 32;
        const RANDOM_OPS: usize = 3000;
        let mut builder = loom::model::Builder::new();
        builder.max_branches = 10_000_000;
        builder.check(|| {
            let m = Mapping::in_memory(LEN).unwrap();
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            let mut shadow = rng.bytes(LEN);
            assert!(m.write(0, &shadow));
            assert_agrees(&m, &shadow, &|| "the first fill".into());
            for width in 1..=9 {
                for offset in 0..=LEN - width {
                    let data = rng.bytes(width);
                    let flipped: Vec<u8> = data.iter().map(|b| !b).collect();
                    for d in [&data, &flipped] {
                        assert!(m.write(offset, d));
                        shadow[offset..offset + width].copy_from_slice(d);
                        assert_agrees(&m, &shadow, &|| format!("write {d:?} at {offset}"));
                    }
                }
            }
            for op in 0..RANDOM_OPS {
                let width = 1 + rng.below(13);
                let offset = rng.below(LEN - width + 1);
                if rng.below(4) == 0 {
                    let mut buf = vec![0x5A; width];
                    assert!(m.read(offset, &mut buf));
                    assert_eq!(buf, shadow[offset..offset + width], "op {op}: read");
                    continue;
                }
                let data = rng.bytes(width);
                assert!(m.write(offset, &data));
                shadow[offset..offset + width].copy_from_slice(&data);
                assert_agrees(&m, &shadow, &|| {
                    format!("op {op}: write {data:?} at {offset}")
                });
            }
        });
    }

    #[test]
    fn bounds_alignment_and_orderings_are_checked() {
        loom::model(|| {
            let m = Mapping::in_memory(16).unwrap();
            let mut b = [0; 2];
            assert!(!m.read(15, &mut b));
            assert!(!m.write(usize::MAX, &b));
            assert!(m.read(16, &mut []));
            assert!(m.atomic_u32(2).is_none());
            assert!(m.atomic_u32(16).is_none());
            assert!(m.atomic_u64(4).is_none());
            assert!(m.atomic_u64(16).is_none());
            assert!(m.load_u32(0, Ordering::Release).is_none());
            assert!(m.load_u64(0, Ordering::AcqRel).is_none());
            assert!(m.covers(16) && !m.covers(17));
            assert_eq!(m.lock(8, 9), Err(Errno::INVAL));
            assert_eq!(Mapping::in_memory(0).unwrap_err(), Errno::INVAL);
            assert_eq!(Mapping::in_memory(usize::MAX).unwrap_err(), Errno::INVAL);
            // Descriptor I/O past the model is refused before any buffer
            // is made (a length of isize::MAX would abort the allocation).
            let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
            use std::os::fd::AsFd;
            let huge = usize::try_from(isize::MAX).unwrap();
            assert!(m.write_fd(0, huge, usize::MAX, w.as_fd()).is_none());
            assert!(m.read_fd(0, huge, usize::MAX, r.as_fd()).is_none());
            assert!(m.write_fd(8, 9, usize::MAX, w.as_fd()).is_none());
        });
    }
}
