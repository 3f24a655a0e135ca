//! `Region`, the generation-tagged view of one mapping of a region.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::event::EventCount;
use crate::protocol::View;
use crate::shared::{SharedU32, SharedU64};
use crate::sync::Arc;

/// The largest piece a checked `read_at` or `write_at` copies before it
/// checks the cut of a contained `SIGBUS` ([`crate::sigbus`]): a copy over
/// replaced pages touches (and so allocates, as shared memory) at most one
/// piece of them before it stops `Truncated`.
const PIECE: usize = 64 * 1024;
// `std`'s atomics, or loom's under `--cfg loom` (see "Under loom" below).
use crate::sync::{AtomicU32, AtomicU64};
use crate::sys::{self, Mapping};

// `read(2)` and `write(2)` between a view and a descriptor.
#[cfg(unix)]
mod fd;

/// A view of one generation of a region's mapping.
///
/// A `Region` keeps its mapping alive: it stays valid memory after the
/// region grows (the view is then *stale*: [`is_current`](Self::is_current)
/// is false and [`refresh`](Self::refresh) moves it to the newest mapping)
/// and after its [`MmapRegion`](crate::MmapRegion) is dropped. The mapping is released when the
/// last view of it is dropped, and so is the handle's descriptor
/// ([`MmapRegion::fd`](crate::MmapRegion::fd)): it stays open, with any
/// `flock` taken on it, while a view lives after the handle is dropped.
///
/// The memory is shared with other processes, which may write it at any
/// time, so a `Region` never hands out `&[u8]`: bytes are copied in and out
/// with [`read_at`](Self::read_at) and [`write_at`](Self::write_at), shared
/// words are used through [`atomic_u32`](Self::atomic_u32) and
/// [`atomic_u64`](Self::atomic_u64), and [`as_ptr`](Self::as_ptr) gives the
/// raw base for code that takes responsibility itself. Every checked access
/// is bounded by the view's length and, after a truncation was detected, by
/// the file's new end.
///
/// # Under loom
///
/// Built with `RUSTFLAGS="--cfg loom"`, only in-memory regions exist and
/// their bytes are loom objects: [`atomic_u32`](Self::atomic_u32) and
/// [`atomic_u64`](Self::atomic_u64) return `loom::sync::atomic` types, the
/// copies and loads are loom-tracked (copies relaxed, per 4-byte word),
/// bytes used through the 8-byte accessors are modelled apart from the
/// others (do not mix them), and [`as_ptr`](Self::as_ptr) identifies the
/// mapping without pointing at the bytes. See
/// [`MmapRegion::in_memory`](crate::MmapRegion::in_memory) for the object
/// count.
#[derive(Clone)]
pub struct Region {
    view: View<Mapping>,
}

impl Region {
    /// The size of the buffer [`for_each_chunk`](Self::for_each_chunk)
    /// copies each chunk into: small enough to stay in the L1/L2 cache
    /// between the copy and the caller's pass over it, large enough that
    /// the per-chunk cost vanishes (measured in `benches/zerocopy.rs`; see
    /// `BENCHMARKS.md`).
    pub const CHUNK_SIZE: usize = 16 * 1024;

    pub(crate) fn new(view: View<Mapping>) -> Self {
        Self { view }
    }

    /// The base address of this view's mapping, for code that takes
    /// responsibility for its accesses itself.
    ///
    /// It points to [`len`](Self::len) mapped bytes until this view is
    /// refreshed or dropped: [`refresh`](Self::refresh) may move the view to
    /// a new mapping, and dropping the last view of a mapping unmaps it. (A
    /// clone of the view, or another view of the same generation, keeps the
    /// mapping alive too, but this method promises nothing past this view.)
    /// If a peer truncates the file, touching pages past its new end raises
    /// `SIGBUS`; with [`sigbus::install`](crate::sigbus::install) the
    /// faulting page (and the pages from it to the mapping's end, or up to
    /// earlier faults) are replaced by zero pages no peer sees instead, which the pointer then reads
    /// and writes without a fault (only the checked accessors report it; a
    /// later fault may reset them to zeros, see [`sigbus`](crate::sigbus)). Accesses through the pointer must be atomic or otherwise
    /// race-free: other threads and processes may write the bytes at any
    /// time.
    #[must_use]
    pub fn as_ptr(&self) -> *mut u8 {
        self.view.map().base()
    }

    /// The length of this view's generation.
    #[must_use]
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether the view is empty (never true; provided for API symmetry).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.view.len() == 0
    }

    /// The generation this view shows.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.view.generation()
    }

    /// Whether this view shows the newest mapping its [`MmapRegion`](crate::MmapRegion)
    /// published. One atomic load (`Acquire`); no system call.
    ///
    /// When it returns `false`, everything the publishing thread did before
    /// the growth (for example bytes it wrote through its own view) is
    /// visible to this thread.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.view.is_current()
    }

    /// Moves this view to the newest mapping; returns whether it changed.
    /// It does not look at the file: call
    /// [`MmapRegion::check_and_remap`](crate::MmapRegion::check_and_remap) to follow a peer's growth first.
    pub fn refresh(&mut self) -> bool {
        self.view.refresh()
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    ///
    /// The copy may race writes by other processes and by other threads of
    /// this process (through this view, a clone, or another view of the
    /// same file); that is not undefined behaviour. Each byte of `buf` then
    /// holds a value some write stored at that byte, and the bytes may come
    /// from different writes. On x86 and x86_64 the copy is inline assembly
    /// the compiler cannot see into; on other targets it is one relaxed
    /// 1-byte atomic load per byte, so there it must not race a store
    /// through [`atomic_u32`](Self::atomic_u32) or
    /// [`atomic_u64`](Self::atomic_u64) from another thread of this process
    /// (see the mixed-size rule there).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] if the range (computed without overflow)
    /// is not within the view's length. [`ErrorKind::Truncated`] if it is
    /// but reaches past a truncation the handle found earlier, whichever
    /// path found it ([`check_and_remap`], a descriptor call such as
    /// [`write_to_fd`](Self::write_to_fd), or a contained `SIGBUS`): every
    /// later access past it is `Truncated`, with nothing copied. Also
    /// [`ErrorKind::Truncated`] if the range reaches pages the file lost
    /// under the mapping and a `SIGBUS` there was contained
    /// ([`sigbus::install`](crate::sigbus::install)), during this copy or
    /// before it; `buf` then holds unspecified bytes. A copy of more than
    /// 64 KiB goes in pieces of at most 64 KiB with the cut checked after
    /// each, and stops at the first piece that reached it.
    ///
    /// [`check_and_remap`]: crate::MmapRegion::check_and_remap
    #[inline]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        if buf.len() > PIECE {
            return self.read_pieces(offset, buf);
        }
        // One range check: the mapping bounds the copy by the accessible
        // length and, whatever that is, by its own length.
        if self
            .view
            .map()
            .read_within(offset, buf, self.view.accessible_len())
        {
            self.after_access("read_at", offset, buf.len())
        } else {
            Err(self.copy_error(false, offset, buf.len()))
        }
    }

    /// Copies `data` into the region at `offset`.
    ///
    /// As for [`read_at`](Self::read_at), the copy may race any other access
    /// from this or another process (on targets other than x86 and x86_64,
    /// except an atomic access through [`atomic_u32`](Self::atomic_u32) or
    /// [`atomic_u64`](Self::atomic_u64) from another thread of this
    /// process); a racing reader sees, in each byte, a value some write
    /// stored there.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ReadOnly`] for a read-only mapping, and
    /// [`ErrorKind::OutOfBounds`] and [`ErrorKind::Truncated`] as for
    /// [`read_at`](Self::read_at) (a `Truncated` write may have written
    /// replacement pages no peer sees, never the file past its end).
    #[inline]
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        if data.len() > PIECE {
            return self.write_pieces(offset, data);
        }
        // As in `read_at`; the mapping also refuses if it is read-only, and
        // `copy_error` tells the two apart.
        if self
            .view
            .map()
            .write_within(offset, data, self.view.accessible_len())
        {
            self.after_access("write_at", offset, data.len())
        } else {
            Err(self.copy_error(true, offset, data.len()))
        }
    }

    /// `read_at` of more than [`PIECE`] bytes, through
    /// [`in_pieces`](Self::in_pieces).
    #[inline(never)]
    fn read_pieces(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        // Each piece is moved as a part of the whole copy (the stores
        // suited to its length: non-temporal for a large one).
        let whole = buf.len();
        self.in_pieces(false, offset, whole, |at, piece| {
            self.view
                .map()
                .read_part_within(at, &mut buf[piece], self.view.accessible_len(), whole)
        })
    }

    /// `write_at` of more than [`PIECE`] bytes, through
    /// [`in_pieces`](Self::in_pieces).
    #[inline(never)]
    fn write_pieces(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.in_pieces(true, offset, data.len(), |at, piece| {
            self.view.map().write_part_within(
                at,
                &data[piece],
                self.view.accessible_len(),
                data.len(),
            )
        })
    }

    /// A copy of `len` bytes at `offset` made in pieces: the whole range is
    /// checked first (nothing is copied if it is refused), then `copy` is
    /// called for each piece of at most [`PIECE`] bytes (the offset in the
    /// region, and the range of the caller's buffer) with the cut checked
    /// after each, so a copy over pages a contained `SIGBUS` replaced stops
    /// after the first piece that reached them: the shared replacement
    /// pages it touches (each one allocated, SECURITY.md "Memory") are at
    /// most one piece.
    fn in_pieces(
        &self,
        write: bool,
        offset: usize,
        len: usize,
        mut copy: impl FnMut(usize, std::ops::Range<usize>) -> bool,
    ) -> Result<()> {
        let op = if write { "write_at" } else { "read_at" };
        if (write && !self.view.map().is_writable()) || !self.view.check(offset, len) {
            return Err(self.copy_error(write, offset, len));
        }
        self.after_access(op, offset, len)?;
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PIECE);
            // `offset + done` fits: the whole range was checked above.
            if !copy(offset + done, done..done + n) {
                return Err(self.copy_error(write, offset, len));
            }
            self.after_access(op, offset, len)?;
            done += n;
        }
        Ok(())
    }

    /// The error of a refused `read_at` or `write_at`: `ReadOnly` for a
    /// write to a read-only mapping, otherwise `Truncated` or `OutOfBounds`
    /// as [`refused`](Self::refused) tells. Out of line and cold, so that
    /// the inlined accessors stay small.
    #[cold]
    #[inline(never)]
    fn copy_error(&self, write: bool, offset: usize, len: usize) -> Error {
        let op = if write { "write_at" } else { "read_at" };
        if write && !self.view.map().is_writable() {
            return Error::new(ErrorKind::ReadOnly, op);
        }
        self.refused(op, offset, len)
    }

    /// Calls `f` with consecutive snapshots of the bytes
    /// `[offset, offset + len)`, in order, each at most [`CHUNK_SIZE`](Self::CHUNK_SIZE)
    /// bytes long, together covering exactly that range (no call for
    /// `len == 0`): for processing a region in place, such as a checksum,
    /// without a buffer of the whole range.
    ///
    /// Each chunk is a copy made as [`read_at`](Self::read_at) makes it,
    /// into a buffer of this call (on the stack; nothing is allocated) that
    /// stays in the CPU cache while `f` reads it. It is a snapshot: a peer
    /// may change the bytes while they are copied (each byte is then a
    /// value some write stored) and between one chunk and the next, so
    /// chunks are not one consistent picture of the range. `f` sees only
    /// the region's bytes: the range is checked before the first chunk
    /// (bounds, and the cut of a contained `SIGBUS`), and after each copy
    /// the cut is checked again before `f` is called, so a chunk whose
    /// copy reached pages the file lost is never passed to `f`.
    ///
    /// The copy is a user-space one, as `read_at`'s: unlike the descriptor
    /// calls below, a range a peer truncated away raises `SIGBUS`, which
    /// kills the process unless [`sigbus::install`](crate::sigbus::install)
    /// contains it (or the file is a memfd sealed against shrinking).
    ///
    /// ```
    /// # fn main() -> Result<(), shm_region::Error> {
    /// use shm_region::MmapRegion;
    /// let host = MmapRegion::in_memory(64 * 1024)?;
    /// let view = host.region();
    /// view.write_at(0, &[1u8; 40_000])?;
    /// let mut sum = 0u64;
    /// view.for_each_chunk(0, 40_000, |chunk| {
    ///     sum += chunk.iter().map(|&b| u64::from(b)).sum::<u64>();
    /// })?;
    /// assert_eq!(sum, 40_000);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] as for [`read_at`](Self::read_at), before
    /// `f` is called. [`ErrorKind::Truncated`] if the range reaches pages a
    /// contained `SIGBUS` cut ([`sigbus`](crate::sigbus)): before `f` is
    /// called if the cut was known, otherwise once the copy of the chunk
    /// that reached it is done, without passing that chunk to `f` (the
    /// earlier chunks were passed). If a truncation is detected through
    /// the handle meanwhile, the first chunk past the file's end as then
    /// seen is refused as `read_at` would refuse it
    /// ([`ErrorKind::Truncated`]), also without being passed to `f`. A
    /// `Truncated` error found at a chunk names that chunk (its offset and
    /// length) and, when the chunk is not the whole range, the range asked
    /// for.
    pub fn for_each_chunk(
        &self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(&[u8]),
    ) -> Result<()> {
        const OP: &str = "for_each_chunk";
        if !self.view.check(offset, len) {
            return Err(self.refused(OP, offset, len));
        }
        self.after_access(OP, offset, len)?;
        let mut buf = [0u8; Self::CHUNK_SIZE];
        let mut done = 0;
        while done < len {
            let at = offset + done;
            let n = (len - done).min(Self::CHUNK_SIZE);
            let chunk = &mut buf[..n];
            if !self
                .view
                .map()
                .read_within(at, chunk, self.view.accessible_len())
            {
                return Err(self.refused(OP, at, n).within(offset, len));
            }
            self.after_access(OP, at, n)
                .map_err(|e| e.within(offset, len))?;
            f(chunk);
            done += n;
        }
        Ok(())
    }

    /// The 4-byte word at `offset` as an atomic shared with every process
    /// mapping the file.
    ///
    /// # Mixed-size accesses are the caller's responsibility
    ///
    /// Std's atomic memory model (the `core::sync::atomic` module
    /// documentation, "Memory model for atomic accesses") allows racing
    /// atomic accesses of different sizes to overlapping bytes only if both
    /// are reads. So two threads of this process must not race an access
    /// through `atomic_u32(off)` with a store through
    /// [`atomic_u64`](Self::atomic_u64) at overlapping bytes (or the other
    /// way round) without synchronizing, and on targets other than x86 and
    /// x86_64, where [`read_at`](Self::read_at) and
    /// [`write_at`](Self::write_at) copy with 1-byte atomics, a copy must not
    /// race a store through either accessor at those bytes, nor a copy into
    /// them race a load. The crate does not detect this: refusing it would
    /// need a per-byte registry consulted on every access through every
    /// view, it could not cover other processes anyway, and the hardware
    /// keeps such accesses coherent: on x86, Arm, RISC-V and POWER each byte
    /// that a racing access of any size reads is a value some store wrote to
    /// it. Use one size per location, or synchronize the accesses.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Misaligned`] if `offset` is not a multiple of 4,
    /// [`ErrorKind::OutOfBounds`] if the word is not within the view's
    /// length, [`ErrorKind::ReadOnly`] for a read-only mapping,
    /// [`ErrorKind::Truncated`] if it is but lies past a truncation the
    /// handle found (as for [`read_at`](Self::read_at)), or at or past the
    /// offset where a contained `SIGBUS` cut the mapping (see
    /// [`sigbus`](crate::sigbus)).
    /// A word a peer truncated away whose page has not faulted yet is still
    /// returned; with the guard its first access faults and is contained
    /// (unless its page already lies in the replaced area), and the
    /// reference then reads and writes a replacement page no peer sees
    /// (which a later fault may reset to zeros).
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        self.check_atomic(offset, 4, "atomic_u32")?;
        self.view.map().atomic_u32(offset).ok_or_else(|| {
            Error::out_of_bounds("atomic_u32", offset, 4, self.view.accessible_len())
        })
    }

    /// The 8-byte word at `offset` as an atomic shared with every process
    /// mapping the file.
    ///
    /// # Mixed-size accesses are the caller's responsibility
    ///
    /// As for [`atomic_u32`](Self::atomic_u32): without synchronization, two
    /// threads of this process must not race a store through
    /// `atomic_u64(off)` with an access of another size to overlapping bytes
    /// (a load or store through `atomic_u32`, or, on targets other than x86
    /// and x86_64, a [`read_at`](Self::read_at) or
    /// [`write_at`](Self::write_at) copy), nor a load through it with a store
    /// of another size there (through `atomic_u32`, or such a `write_at`).
    ///
    /// # Errors
    ///
    /// As [`atomic_u32`](Self::atomic_u32), with a multiple of 8.
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        self.check_atomic(offset, 8, "atomic_u64")?;
        self.view.map().atomic_u64(offset).ok_or_else(|| {
            Error::out_of_bounds("atomic_u64", offset, 8, self.view.accessible_len())
        })
    }

    /// An atomic load of the 4-byte word at `offset` with `order`, which
    /// also works on read-only mappings (there, a relaxed load followed by a
    /// fence, the way std documents for read-only memory).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Misaligned`], [`ErrorKind::OutOfBounds`] as for
    /// [`atomic_u32`](Self::atomic_u32); [`ErrorKind::InvalidOrdering`] for
    /// `Release` or `AcqRel`; [`ErrorKind::Unsupported`] on a read-only
    /// mapping on a target where std does not guarantee such loads;
    /// [`ErrorKind::Truncated`] as for [`read_at`](Self::read_at).
    pub fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32> {
        const OP: &str = "load_u32";
        self.check_load(offset, 4, order, OP)?;
        let v = self
            .view
            .map()
            .load_u32(offset, order)
            .ok_or_else(|| self.refused(OP, offset, 4))?;
        self.after_access(OP, offset, 4)?;
        Ok(v)
    }

    /// As [`load_u32`](Self::load_u32), for the 8-byte word at `offset`.
    ///
    /// # Errors
    ///
    /// As [`load_u32`](Self::load_u32), with a multiple of 8.
    pub fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64> {
        const OP: &str = "load_u64";
        self.check_load(offset, 8, order, OP)?;
        let v = self
            .view
            .map()
            .load_u64(offset, order)
            .ok_or_else(|| self.refused(OP, offset, 8))?;
        self.after_access(OP, offset, 8)?;
        Ok(v)
    }

    /// The 4-byte word at `offset` as an owned [`SharedU32`]: the atomic of
    /// [`atomic_u32`](Self::atomic_u32), holding this view's mapping so
    /// that it outlives the borrow, a [`refresh`](Self::refresh) of this
    /// view, the view and its [`MmapRegion`](crate::MmapRegion).
    ///
    /// # Errors
    ///
    /// As [`atomic_u32`](Self::atomic_u32): [`ErrorKind::ReadOnly`] for a
    /// read-only mapping, [`ErrorKind::Misaligned`] if `offset` is not a
    /// multiple of 4, [`ErrorKind::OutOfBounds`] if the word is not within
    /// the view's length, [`ErrorKind::Truncated`] if it is but lies past a
    /// truncation the handle found, or at or past the cut of a contained
    /// `SIGBUS`.
    pub fn shared_u32(&self, offset: usize) -> Result<SharedU32> {
        const OP: &str = "shared_u32";
        self.check_atomic(offset, 4, OP)?;
        SharedU32::new(Arc::clone(self.view.map_arc()), offset)
            .ok_or_else(|| Error::new(ErrorKind::OutOfBounds, OP))
    }

    /// The 8-byte word at `offset` as an owned [`SharedU64`], as
    /// [`shared_u32`](Self::shared_u32) for [`atomic_u64`](Self::atomic_u64).
    ///
    /// # Errors
    ///
    /// As [`atomic_u64`](Self::atomic_u64).
    pub fn shared_u64(&self, offset: usize) -> Result<SharedU64> {
        const OP: &str = "shared_u64";
        self.check_atomic(offset, 8, OP)?;
        SharedU64::new(Arc::clone(self.view.map_arc()), offset)
            .ok_or_else(|| Error::new(ErrorKind::OutOfBounds, OP))
    }

    /// Blocks while the 4-byte word at `offset` holds `expected`, for at
    /// most `timeout` when one is given.
    ///
    /// Returns `Ok(false)` only if the timeout elapsed, and `Ok(true)`
    /// otherwise: the word differed from `expected`, a
    /// [`wake_u32`](Self::wake_u32) reached this waiter, or the wait ended
    /// without either (a wake while the word still holds `expected`, or a
    /// spurious wake-up). So call it in a loop that re-checks the word. It
    /// promises no memory ordering: to see what a peer wrote before its
    /// store to the word, load the word with `Acquire` after it returns, as
    /// below.
    ///
    /// ```
    /// # fn main() -> Result<(), shm_region::Error> {
    /// use std::sync::atomic::Ordering;
    /// use std::time::Duration;
    /// use shm_region::MmapRegion;
    ///
    /// let host = MmapRegion::in_memory(4096)?;
    /// let view = host.region();
    /// // Nothing changes the word: the wait ends at its timeout.
    /// assert!(!view.wait_u32(0, 0, Some(Duration::from_millis(10)))?);
    ///
    /// let waiter = {
    ///     let view = view.clone();
    ///     std::thread::spawn(move || -> Result<u64, shm_region::Error> {
    ///         while view.load_u32(0, Ordering::Acquire)? == 0 {
    ///             view.wait_u32(0, 0, None)?;
    ///         }
    ///         view.load_u64(8, Ordering::Relaxed)
    ///     })
    /// };
    /// view.atomic_u64(8)?.store(42, Ordering::Relaxed);
    /// view.atomic_u32(0)?.store(1, Ordering::Release);
    /// view.wake_u32(0, 1)?;
    /// assert_eq!(waiter.join().unwrap()?, 42);
    /// # Ok(()) }
    /// ```
    ///
    /// **How it waits.** On Linux it is a futex wait shared between
    /// processes (without `FUTEX_PRIVATE_FLAG`): the kernel compares the
    /// word with `expected` and puts the thread to sleep in one step, so a
    /// store followed by [`wake_u32`](Self::wake_u32) is not missed. A wake
    /// through any view of the file, in this process or another, reaches
    /// the waiter, also through another mapping of the file (another
    /// handle, or a newer generation after growth moved the base). An
    /// [in-memory](crate::MmapRegion::in_memory) region's memory belongs to
    /// this process, and so do its waiters and wakers. On other systems
    /// (Windows included, where `WaitOnAddress` wakes threads of one
    /// process only), and under Miri, it polls instead: 100 loads with a
    /// spin hint between them, then a load before each nap, the naps
    /// growing from 10 µs, doubling, to 1 ms (and never past the
    /// deadline); there [`wake_u32`](Self::wake_u32) returns `Ok(0)` and
    /// waiters see the change by themselves, in any process. The cost: a
    /// change is seen within one nap (at most 1 ms, plus the system
    /// timer's granularity: on Windows `std::thread::sleep` rounds up to
    /// it, 1 ms with high-resolution timers, up to 15.6 ms without), and a
    /// waiting thread wakes up to about a thousand times a second.
    ///
    /// **Timeout.** The deadline is taken on a monotonic clock when the call
    /// starts. With `Some(Duration::ZERO)` it returns `Ok(true)` if the word
    /// differs and otherwise, unless a wake reaches it in the instant it is
    /// queued (then `Ok(true)`), `Ok(false)`. A timeout whose deadline the clock
    /// cannot represent (`Duration::MAX`) is no timeout.
    /// A signal handled while the thread sleeps does not end the wait: on
    /// Linux the wait resumes (`EINTR`) with the time left until the
    /// deadline, so a signal is never reported as a timeout or as a wake.
    ///
    /// **Mapping and truncation.** The word is checked against the view's
    /// accessible length when the call starts, and the view keeps its
    /// mapping for as long as it waits, so the address stays mapped even if
    /// the region grows or is remapped meanwhile. A peer truncating the
    /// file while the thread sleeps does not wake it. On Linux a word whose
    /// page a peer truncated away (before this handle noticed) is
    /// [`ErrorKind::Truncated`], not a `SIGBUS`; the poll of other systems
    /// loads the word, which faults there like any access (see
    /// `SECURITY.md`).
    ///
    /// **Under loom** the wait is a loop of relaxed loads with
    /// `loom::thread::yield_now` between them, until the word differs. With
    /// a timeout it is one load, and if the word holds `expected`, one
    /// yield and `Ok(false)`: the timeout elapses at once, so loom explores
    /// the timeouts of a caller's loop and exhausts it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Misaligned`] and [`ErrorKind::OutOfBounds`] as for
    /// [`atomic_u32`](Self::atomic_u32) (a read-only view may wait), and
    /// [`ErrorKind::Unsupported`] on a read-only mapping where
    /// [`load_u32`](Self::load_u32) is; on Linux, [`ErrorKind::Truncated`]
    /// if the word's page is gone (the futex call says `EFAULT`) or the word
    /// lies at or past the cut of a contained `SIGBUS` (checked before and
    /// after the wait; a word cut in between sleeps until the timeout, see
    /// [`sigbus`](crate::sigbus)) and [`ErrorKind::Os`] for any other error
    /// of the futex call.
    pub fn wait_u32(
        &self,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        const OP: &str = "wait_u32";
        self.check_load(offset, 4, Ordering::Relaxed, OP)?;
        // A cut word may be a private zero page: no peer can change or wake
        // it.
        self.after_access(OP, offset, 4)?;
        let woken = crate::wait::wait(self.view.map(), offset, expected, timeout)?;
        self.after_access(OP, offset, 4)?;
        Ok(woken)
    }

    /// As [`wait_u32`](Self::wait_u32), but first checks the word in a
    /// `spin_loop` loop for up to `spin`, which saves the sleep and the
    /// wake-up when the peer answers within a few microseconds.
    ///
    /// Returns `Ok(true)` as soon as the spin sees the word differ from
    /// `expected`; otherwise it then waits exactly as
    /// [`wait_u32`](Self::wait_u32) does, for the time left (the spin counts
    /// towards `timeout`; the deadline is taken when the call starts), with
    /// the same results, errors and timeout rules.
    ///
    /// **When it spins.** Not at all if the calling thread may run on only
    /// one CPU (its `sched_getaffinity` mask on Linux, cached per thread for
    /// 100 ms; `available_parallelism` elsewhere; a failed query counts as one
    /// CPU): whatever changes the word may need that CPU, so a spin could
    /// only delay it. Then it is [`wait_u32`](Self::wait_u32), without a
    /// load of the word. This holds also for a thread pinned to a CPU of
    /// its own whose peer runs elsewhere: to spin, allow the thread two
    /// CPUs or more. Otherwise it spins for about `spin` capped at 100 µs
    /// (the clock is read every few spin hints, and preemption adds to the
    /// wall time), and less after spins that failed: each thread halves its
    /// budget after a wait whose spin ran out without seeing the change,
    /// down to 1/64 of the
    /// capped request, and doubles it back (up to the capped request) after
    /// a spin that saw the change; at 1/64, every 32nd wait spins the whole
    /// capped request as a probe. So where spinning keeps failing (a slow
    /// peer, or one sharing this thread's CPU) it costs about 1/64 of the
    /// request per wait plus a full spin per 32 waits, and where the peer
    /// answers within the spin it keeps spinning.
    ///
    /// ```
    /// # fn main() -> Result<(), shm_region::Error> {
    /// use std::sync::atomic::Ordering;
    /// use std::time::Duration;
    /// use shm_region::MmapRegion;
    ///
    /// let host = MmapRegion::in_memory(4096)?;
    /// let view = host.region();
    /// let answer = {
    ///     let view = view.clone();
    ///     std::thread::spawn(move || -> Result<(), shm_region::Error> {
    ///         view.atomic_u32(0)?.store(1, Ordering::Release);
    ///         view.wake_u32(0, 1)?;
    ///         Ok(())
    ///     })
    /// };
    /// let spin = Duration::from_micros(20);
    /// while view.load_u32(0, Ordering::Acquire)? == 0 {
    ///     view.wait_u32_spin(0, 0, spin, Some(Duration::from_secs(10)))?;
    /// }
    /// answer.join().unwrap()?;
    /// # Ok(()) }
    /// ```
    ///
    /// **Truncation.** The spin loads the word from this process, as
    /// [`load_u32`](Self::load_u32) does, where [`wait_u32`](Self::wait_u32)
    /// leaves the comparison to the kernel: on a word whose page a peer
    /// truncated away (before this handle noticed) a spinning call raises
    /// `SIGBUS` as any access does (see `SECURITY.md`; with
    /// [`sigbus::install`](crate::sigbus::install) that is contained and
    /// the call is [`ErrorKind::Truncated`]), while one that does not spin
    /// is `Truncated` as [`wait_u32`](Self::wait_u32) is.
    ///
    /// **Under loom** nothing spins: it is the loom model of
    /// [`wait_u32`](Self::wait_u32).
    ///
    /// # Errors
    ///
    /// As [`wait_u32`](Self::wait_u32), naming `wait_u32_spin`.
    pub fn wait_u32_spin(
        &self,
        offset: usize,
        expected: u32,
        spin: Duration,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        const OP: &str = "wait_u32_spin";
        self.check_load(offset, 4, Ordering::Relaxed, OP)?;
        self.after_access(OP, offset, 4)?;
        let woken = crate::wait::wait_spin(self.view.map(), offset, expected, spin, timeout)
            .map_err(|e| e.in_operation(OP))?;
        self.after_access(OP, offset, 4)?;
        Ok(woken)
    }

    /// An [`EventCount`] over the 8 bytes at `offset`: the sequence word at
    /// `offset` and the sleeper count at `offset + 4`. Like
    /// [`shared_u32`](Self::shared_u32) it holds this view's mapping.
    ///
    /// A read-only view may make one: it can read and wait (by polling),
    /// and its [`notify`](EventCount::notify) is refused. Do not access the
    /// same 8 bytes through [`atomic_u64`](Self::atomic_u64) (the mixed-size
    /// rule of [`atomic_u32`](Self::atomic_u32)).
    ///
    /// ```
    /// # fn main() -> Result<(), shm_region::Error> {
    /// use shm_region::{ErrorKind, MmapRegion};
    ///
    /// let host = MmapRegion::in_memory(4096)?;
    /// let view = host.region();
    /// let events = view.event_count(64)?; // words 64 and 68
    /// assert_eq!(events.notify()?, 0);    // nobody asleep: no system call
    /// assert_eq!(events.current(), 1);
    /// assert_eq!(view.event_count(4).unwrap_err().kind(), ErrorKind::Misaligned);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Misaligned`] if `offset` is not a multiple of 8,
    /// [`ErrorKind::OutOfBounds`] if the 8 bytes are not within the
    /// accessible length, [`ErrorKind::Unsupported`] on a read-only mapping
    /// where [`load_u32`](Self::load_u32) is, [`ErrorKind::Truncated`] if
    /// they lie at or past the cut of a contained `SIGBUS`.
    pub fn event_count(&self, offset: usize) -> Result<EventCount> {
        const OP: &str = "event_count";
        if offset % 8 != 0 {
            return Err(Error::misaligned(OP, offset, 8));
        }
        if !self.view.check(offset, 8) {
            return Err(self.refused(OP, offset, 8));
        }
        if !self.view.map().can_load(4) {
            return Err(Error::new(ErrorKind::Unsupported, OP).because(
                "atomic loads of read-only memory of this size are not guaranteed on this target",
            ));
        }
        self.after_access(OP, offset, 8)?;
        EventCount::new(Arc::clone(self.view.map_arc()), offset)
            .ok_or_else(|| Error::new(ErrorKind::OutOfBounds, OP))
    }

    /// Wakes up to `count` threads waiting in [`wait_u32`](Self::wait_u32)
    /// on the word at `offset`, in any process mapping the file; returns
    /// how many it woke.
    ///
    /// Store the new value first, then wake: a waiter that compares after
    /// the store returns without sleeping. A wake with the word unchanged
    /// makes the waiters it reaches return `Ok(true)`. `count == 0` wakes
    /// nobody and returns `Ok(0)`; a count above `i32::MAX` wakes every
    /// waiter. Off Linux, and under Miri and loom, it returns `Ok(0)`:
    /// waiters there poll (see [`wait_u32`](Self::wait_u32)).
    ///
    /// ```
    /// # fn main() -> Result<(), shm_region::Error> {
    /// use shm_region::MmapRegion;
    /// let host = MmapRegion::in_memory(4096)?;
    /// assert_eq!(host.region().wake_u32(0, 1)?, 0); // nobody waits
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`atomic_u32`](Self::atomic_u32): [`ErrorKind::ReadOnly`] for a
    /// read-only mapping, [`ErrorKind::Misaligned`],
    /// [`ErrorKind::OutOfBounds`]; on Linux, [`ErrorKind::Truncated`] if the
    /// word's page is gone (noticed only by the system call, which a `count`
    /// of 0 does not make: that returns `Ok(0)`) and [`ErrorKind::Os`] for
    /// any other error of the futex call.
    pub fn wake_u32(&self, offset: usize, count: u32) -> Result<usize> {
        const OP: &str = "wake_u32";
        self.check_atomic(offset, 4, OP)?;
        let woken = crate::wait::wake(self.view.map(), offset, count)?;
        self.after_access(OP, offset, 4)?;
        Ok(woken)
    }

    /// Whether this view's mapping is read-only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        !self.view.map().is_writable()
    }

    fn check_load(
        &self,
        offset: usize,
        size: usize,
        order: Ordering,
        op: &'static str,
    ) -> Result<()> {
        if matches!(order, Ordering::Release | Ordering::AcqRel) {
            return Err(Error::invalid_ordering(op, order));
        }
        if offset % size != 0 {
            return Err(Error::misaligned(op, offset, size));
        }
        if !self.view.check(offset, size) {
            return Err(self.refused(op, offset, size));
        }
        if !self.view.map().can_load(size) {
            return Err(Error::new(ErrorKind::Unsupported, op).because(
                "atomic loads of read-only memory of this size are not guaranteed on this target",
            ));
        }
        Ok(())
    }

    fn check_atomic(&self, offset: usize, size: usize, op: &'static str) -> Result<()> {
        // A reference to an atomic could store, so read-only views get none.
        if !self.view.map().is_writable() {
            return Err(Error::new(ErrorKind::ReadOnly, op));
        }
        if offset % size != 0 {
            return Err(Error::misaligned(op, offset, size));
        }
        if !self.view.check(offset, size) {
            return Err(self.refused(op, offset, size));
        }
        // A word on a cut page is private memory: no reference to it.
        self.after_access(op, offset, size)
    }

    /// `Ok(())` unless this view's mapping lost pages to a contained
    /// `SIGBUS` at or below the end of `len` bytes at `offset` (already
    /// bounds-checked): the access, made before this call, then faulted or
    /// reached replaced pages, and is [`ErrorKind::Truncated`]. The
    /// truncation limit of every view of the handle is lowered to the cut,
    /// so that the handle treats it as a detected truncation (sticky).
    ///
    /// One fence (a compiler barrier on x86) and one load when nothing was
    /// cut.
    #[inline]
    fn after_access(&self, op: &'static str, offset: usize, len: usize) -> Result<()> {
        let cut = self.view.map().cut();
        if sys::range_fits(offset, len, cut) {
            Ok(())
        } else {
            Err(self.cut_error(op, offset, len, cut))
        }
    }

    #[cold]
    fn cut_error(&self, op: &'static str, offset: usize, len: usize, cut: usize) -> Error {
        self.view.lower_limit(cut);
        Error::cut(op, offset, len, cut)
    }

    /// The error for an access the bounds check refused:
    /// [`ErrorKind::Truncated`] if it lies within the view's length and
    /// reaches pages a contained `SIGBUS` replaced, or past the truncation
    /// limit (a truncation the handle found, by whichever path: a contained
    /// `SIGBUS`, a descriptor call, `check_and_remap`); otherwise
    /// [`ErrorKind::OutOfBounds`].
    #[cold]
    fn refused(&self, op: &'static str, offset: usize, len: usize) -> Error {
        if sys::range_fits(offset, len, self.view.len()) {
            let cut = self.view.map().cut();
            if !sys::range_fits(offset, len, cut) {
                return self.cut_error(op, offset, len, cut);
            }
            let limit = self.view.truncation_limit();
            if !sys::range_fits(offset, len, limit) {
                return Error::past_truncation(op, offset, len, limit);
            }
        }
        Error::out_of_bounds(op, offset, len, self.view.accessible_len())
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("ptr", &self.as_ptr())
            .field("len", &self.len())
            .field("generation", &self.generation())
            .field("current", &self.is_current())
            .finish()
    }
}

/// A test seam between a descriptor call's `EFAULT` and the `fstat` that
/// explains it: a unit test regrows the file there, deterministically.
#[cfg(test)]
mod seam {
    use std::cell::RefCell;

    std::thread_local! {
        static BEFORE_FSTAT: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
        static BEFORE_FD_LIMIT: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
    }

    /// Runs `f` (once, on this thread) at the next `before_fd_limit`:
    /// between a descriptor call's bounds check and its read of the limit
    /// it hands to the call.
    #[cfg_attr(any(miri, loom, windows), allow(dead_code))]
    pub(super) fn set_before_fd_limit(f: impl FnOnce() + 'static) {
        BEFORE_FD_LIMIT.with(|s| *s.borrow_mut() = Some(Box::new(f)));
    }

    #[cfg_attr(windows, allow(dead_code))]
    pub(super) fn before_fd_limit() {
        if let Some(f) = BEFORE_FD_LIMIT.with(|s| s.borrow_mut().take()) {
            f();
        }
    }

    /// Runs `f` (once, on this thread) at the next `before_fstat`.
    // Its one test needs files, which Miri and loom builds lack; the
    // descriptor I/O it tests is Unix only.
    #[cfg_attr(any(miri, loom, windows), allow(dead_code))]
    pub(super) fn set_before_fstat(f: impl FnOnce() + 'static) {
        BEFORE_FSTAT.with(|s| *s.borrow_mut() = Some(Box::new(f)));
    }

    #[cfg_attr(windows, allow(dead_code))]
    pub(super) fn before_fstat() {
        if let Some(f) = BEFORE_FSTAT.with(|s| s.borrow_mut().take()) {
            f();
        }
    }
}

#[cfg(all(test, unix, not(miri), not(loom)))]
mod tests {
    use crate::{ErrorKind, FileCleanup, MmapRegion};

    const PAGE: usize = 4096;

    /// A peer cuts the file below the range, the call meets the missing
    /// page (`EFAULT`), and the peer grows the file back before the
    /// `fstat` that would explain it: the retry finds the page back, so
    /// the call is `Truncated` and the handle fenced, not `Os`.
    #[test]
    fn efault_from_a_cut_the_file_grew_back_from_before_the_fstat_is_truncated() {
        // From a page's start and from inside it: either way the handle is
        // fenced at the start of that page.
        efault_after_a_regrow_fences_the_page_of(8 * PAGE);
        efault_after_a_regrow_fences_the_page_of(8 * PAGE + 100);
    }

    /// A truncation another thread of the handle finds between a
    /// descriptor call's bounds check and the call (here: the limit
    /// lowered from a seam there) keeps the call within it: the limit the
    /// call is given is the accessible length read after the check, not
    /// the view's length, so nothing past the truncation is written out or
    /// read in, and the call is `Truncated`.
    #[test]
    fn a_truncation_found_between_the_check_and_a_descriptor_call_bounds_the_call() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let h = MmapRegion::create(&path, 4 * PAGE, FileCleanup::Manual).unwrap();
        h.region().write_at(2 * PAGE, &[0xCD; 16]).unwrap();
        for into_region in [false, true] {
            let view = h.region();
            let (mut rx, tx) = std::os::unix::net::UnixStream::pair().unwrap();
            rx.set_nonblocking(true).unwrap();
            std::io::Write::write_all(&mut &tx, &[0xEE; 16]).unwrap();
            let other = view.clone();
            super::seam::set_before_fd_limit(move || other.view.lower_limit(2 * PAGE));
            let e = if into_region {
                view.read_from_fd(2 * PAGE, 16, &rx).unwrap_err()
            } else {
                view.write_to_fd(2 * PAGE, 16, &tx).unwrap_err()
            };
            assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
            assert_eq!(view.view.accessible_len(), 2 * PAGE);
            // No byte moved: the socket still holds exactly what was
            // queued before (nothing written out, nothing read in).
            let mut queued = [0u8; 64];
            assert_eq!(rx.read(&mut queued).unwrap(), 16);
            assert_eq!(queued[..16], [0xEE; 16]);
        }
    }

    fn efault_after_a_regrow_fences_the_page_of(start: usize) {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let path = dir.path().join("segment");
        let len = 16 * PAGE;
        let _host = MmapRegion::create(&path, len, FileCleanup::Manual).unwrap();
        let mut h = MmapRegion::attach(&path).unwrap();
        h.region().write_at(8 * PAGE, &[0xAB; PAGE]).unwrap();
        let peer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        peer.set_len(u64::try_from(4 * PAGE + 100).unwrap())
            .unwrap();
        let regrow = peer.try_clone().unwrap();
        super::seam::set_before_fstat(move || {
            regrow.set_len(u64::try_from(len).unwrap()).unwrap();
        });
        let mut sink = tempfile::tempfile_in("/dev/shm").unwrap();
        let e = h.region().write_to_fd(start, PAGE, &sink).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
        assert_eq!(
            e.to_string(),
            format!(
                "write_to_fd: the kernel's copy met a page the file did not have, and the file \
                 has grown back since (its bytes there are lost) ({})",
                std::io::Error::from_raw_os_error(libc::EFAULT)
            )
        );
        // The retry wrote the page as it is now: a hole, zeros.
        let mut out = Vec::new();
        std::io::Seek::rewind(&mut sink).unwrap();
        std::io::Read::read_to_end(&mut sink, &mut out).unwrap();
        assert_eq!(out, vec![0; PAGE]);
        // Fenced at the page the call started in, and sticky.
        let mut one = [0u8; 1];
        h.region().read_at(8 * PAGE - 1, &mut one).unwrap();
        assert_eq!(
            h.region().read_at(8 * PAGE, &mut one).unwrap_err().kind(),
            ErrorKind::Truncated
        );
        assert_eq!(
            h.check_and_remap().unwrap_err().kind(),
            ErrorKind::Truncated
        );
    }
}
