//! What the handler does with a fault that is ours (invariant 6): lowers
//! the cut, chooses the range to replace ([`span`], [`within`]) and maps
//! replacement pages over it, falling back from shared anonymous zero pages
//! over the wide range to the faulting page alone, everything from the cut,
//! the sink page, the whole mapping and last a private read-only page.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use rustix::io::Errno;
use rustix::mm::{Advice, MapFlags, ProtFlags};

use super::registry::{chunks, Local, Slot, LIVE};
use super::NOT_CUT;

/// The flags of the handler's replacement mappings: shared anonymous
/// memory (not counted as data, so `RLIMIT_DATA` never refuses it;
/// without a file name or descriptor, so no peer reaches it through
/// the region's file, though a child made by `fork` shares it and a
/// privileged process can open it through `/proc/<pid>/map_files/`),
/// at the faulting address, no swap space reserved.
const ZEROS: MapFlags = MapFlags::SHARED
    .union(MapFlags::FIXED)
    .union(MapFlags::NORESERVE);
/// The flags of the last-resort replacement (read-only): private, so
/// the kernel charges it neither as data (`RLIMIT_DATA` counts only
/// writable private memory) nor against the commit limit.
const LAST_RESORT: MapFlags = MapFlags::PRIVATE
    .union(MapFlags::FIXED)
    .union(MapFlags::NORESERVE);
/// The flags of the sink replacement: the one-page sink file
/// ([`SINK`]) shared at the faulting page. Not `MAP_NORESERVE`, and
/// not anonymous: a filter or a kernel that refuses the shared
/// anonymous replacements ([`ZEROS`]) is not asked for the same thing
/// again.
const SINK_FLAGS: MapFlags = MapFlags::SHARED.union(MapFlags::FIXED);
/// The sink: a memfd of one page (sealed against shrinking, growing
/// and further seals; writes allowed), made and its page touched (so
/// allocated, charged then) by `install`, never closed; `-1` until
/// then. When every shared anonymous replacement of a faulting page is
/// refused, the handler maps this page there, shared and with the
/// mapping's protection: its bytes are garbage shared by every such
/// page of the process (and its children made by `fork`), which
/// checked accessors never return (the cut is checked after the
/// copy).
static SINK: AtomicI32 = AtomicI32::new(-1);
/// The page size, stored before the handler is installed.
pub(super) static PAGE: AtomicUsize = AtomicUsize::new(0);
/// Test seam: the handler skips this many of its candidate
/// replacements, as if the kernel had refused them, so that the
/// fallbacks run. Compiled into unit tests only.
#[cfg(test)]
pub(super) static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// Makes the sink ([`SINK`]) if there is none yet: a one-page memfd,
/// its page written once (so the kernel allocates it now, not in the
/// handler), sealed against shrinking, growing and further seals.
/// Normal context.
///
/// # Errors
///
/// What `memfd_create`, `ftruncate`, `pwrite` or the sealing report.
pub(super) fn make_sink() -> Result<(), Errno> {
    use rustix::fs::{MemfdFlags, SealFlags};
    use std::os::fd::{FromRawFd, IntoRawFd};
    if SINK.load(Ordering::SeqCst) >= 0 {
        return Ok(());
    }
    let page = super::super::page_size();
    let fd = rustix::fs::memfd_create(
        "shm-region-sigbus-sink",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    rustix::fs::ftruncate(&fd, u64::try_from(page).map_err(|_| Errno::INVAL)?)?;
    if rustix::io::pwrite(&fd, &[0], 0)? != 1 {
        return Err(Errno::IO);
    }
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    let raw = fd.into_raw_fd();
    if SINK
        .compare_exchange(-1, raw, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // Another thread made one meanwhile: this one was never
        // published.
        // SAFETY: `raw` came from `into_raw_fd` just above and was
        // never published.
        drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) });
    }
    Ok(())
}

/// What the handler did with a fault.
#[cfg_attr(test, derive(Debug, PartialEq, Eq))]
pub(super) enum Outcome {
    /// The page was replaced (and advised): return and retry.
    Contained,
    /// No slot of this process holds the address, or the kernel
    /// refused the replacement (nothing changed): not ours to handle.
    NotOurs,
    /// The page was replaced but the kernel refused its advice
    /// (`MADV_DONTDUMP`/`MADV_DONTFORK`): the process must not go on
    /// writing into it.
    Unadvised,
}

/// Replacements below the cut a mapping may collect before the whole
/// replaced area is made one mapping again (see [`span`]).
pub(super) const MAX_PIECES: usize = 16;

/// The range `[lo, hi)` of offsets the handler tries first for a
/// fault on the page at offset `cut` of a mapping of `len` bytes
/// (both multiples of the page size), given the cut its own `fetch_min` returned
/// (`old_cut`), the cut read after it (`now_cut`, at most `cut`) and
/// the replacements made below the cut so far (`pieces`).
///
/// The first fault, and a fault at or past the cut (a replacement
/// another thread has yet to finish, or pages above a fault whose wide
/// replacement was refused), replace everything from the cut to the
/// mapping's end: one mapping, so faults going up never need another.
/// A fault below the cut replaces up to the old cut (one more mapping,
/// a *piece*), or, once there are [`MAX_PIECES`] pieces, everything
/// from it to the end, which makes the area one mapping again: so
/// however the faults are spread, a mapping's replacements are at most
/// `MAX_PIECES + 1` kernel mappings (plus one per single-page or sink
/// fallback), so one mapping's faults do not use up
/// `vm.max_map_count`. Many mappings together can still reach it: then
/// the kernel refuses every replacement that splits a kernel mapping,
/// and `contain_in` replaces the whole mapping instead (its cut
/// lowered to 0), which needs no new kernel mapping (the kernel allows
/// that at the limit, not once a plain `mmap` took the count past
/// it). Always `now_cut <= lo <= cut < hi <= len` for `cut < len`:
/// every replaced page is in the mapping and at or past a value its
/// cut has held.
pub(super) fn span(
    cut: usize,
    len: usize,
    old_cut: usize,
    now_cut: usize,
    pieces: usize,
) -> (usize, usize) {
    if old_cut == NOT_CUT || cut >= old_cut {
        (now_cut.min(cut), len)
    } else if pieces >= MAX_PIECES {
        (cut, len)
    } else {
        (cut, old_cut)
    }
}

/// Whether `[lo, hi)` is a range the handler may replace for a fault
/// on the page at `cut` of a mapping of `len` bytes: inside the
/// mapping, non-empty, holding the faulting page.
pub(super) fn within(lo: usize, hi: usize, cut: usize, len: usize) -> bool {
    lo <= cut && cut < hi && hi <= len
}

/// Replaces the page holding `addr` if it lies in a `LIVE` slot this
/// process may act on: one it claimed, or one it inherited through
/// `fork` whose mapping came along (not `dont_fork`).
pub(super) fn contain(local: &Local, addr: *mut u8) -> Outcome {
    let _ = local;
    let addr = addr as usize;
    for chunk in chunks() {
        let high = chunk.high.load(Ordering::SeqCst);
        for (slot, ours) in chunk.slots.iter().zip(chunk.ours).take(high) {
            if let Some(outcome) = contain_in(slot, ours, addr) {
                return outcome;
            }
        }
    }
    Outcome::NotOurs
}

/// [`contain`] for one slot: `None` if the address is not the slot's.
fn contain_in(slot: &Slot, ours: &AtomicBool, addr: usize) -> Option<Outcome> {
    if slot.state.load(Ordering::SeqCst) != LIVE {
        return None;
    }
    let start = slot.start.load(Ordering::SeqCst);
    let len = slot.len.load(Ordering::SeqCst);
    let offset = addr.wrapping_sub(start as usize);
    if addr < start as usize || offset >= len {
        return None;
    }
    if slot.dont_fork.load(Ordering::SeqCst) && !ours.load(Ordering::SeqCst) {
        // Inherited, and its range did not come along: it may be
        // memory this process mapped since. Another slot may hold the
        // address.
        return None;
    }
    let page = PAGE.load(Ordering::SeqCst);
    let cut = offset & !page.wrapping_sub(1);
    let prot = if slot.writable.load(Ordering::SeqCst) {
        ProtFlags::READ | ProtFlags::WRITE
    } else {
        ProtFlags::READ
    };
    // Stored before any page is replaced (see `Registration::cut`).
    let old_cut = slot.cut.fetch_min(cut, Ordering::SeqCst);
    let family = slot.family.load(Ordering::SeqCst);
    // SAFETY: a `LIVE` slot's `family` points into an `Arc` that the
    // registration holding the slot keeps alive (`cut` or `own`,
    // invariant 6).
    if let Some(family) = unsafe { family.as_ref() } {
        family.fetch_min(cut, Ordering::SeqCst);
    }
    let now_cut = slot.cut.load(Ordering::SeqCst);
    let pieces = slot.pieces.load(Ordering::SeqCst);
    let wide = span(cut, len, old_cut, now_cut, pieces);
    let alone = (cut, cut.wrapping_add(page));
    // The wide range; if the kernel refuses it, the faulting page; then
    // everything from the cut to the end (which makes the pieces one
    // mapping again: a refusal for want of mapping slots, at
    // `vm.max_map_count`); then the sink page ([`SINK`], shared, of the
    // mapping's protection: writes go on into garbage); then, every
    // replacement that splits a kernel mapping refused, the whole
    // mapping `[0, len)` (no split: it takes the place of all the
    // mapping's kernel mappings), the cut lowered to 0 first; last, the
    // faulting page read-only and private (neither data, nor charged
    // under strict overcommit, nor shared memory): a read then goes on,
    // on zeros, and only a write to that page ends the process
    // (`SIGSEGV`).
    let candidates = [
        (wide, prot, Source::Zeros),
        (alone, prot, Source::Zeros),
        ((now_cut.min(cut), len), prot, Source::Zeros),
        (alone, prot, Source::Sink),
        ((0, len), prot, Source::Whole),
        (alone, ProtFlags::READ, Source::ReadOnly),
    ];
    let mut replaced = None;
    for (i, ((lo, hi), prot, source)) in candidates.into_iter().enumerate() {
        debug_assert!(
            within(lo, hi, cut, len),
            "replacement [{lo}, {hi}) outside [0, {len}) or not over {cut}"
        );
        if !within(lo, hi, cut, len) {
            continue;
        }
        #[cfg(test)]
        if i < REFUSED.load(Ordering::SeqCst) {
            continue;
        }
        if matches!(source, Source::Whole) {
            // Every page is about to be replaced: the cut goes to 0
            // before the `mmap` (invariant 6), and stays there even if
            // the kernel refuses it.
            slot.cut.fetch_min(0, Ordering::SeqCst);
            // SAFETY: as above, the `LIVE` slot's `family` points into
            // an `Arc` its registration keeps alive (invariant 6).
            if let Some(family) = unsafe { family.as_ref() } {
                family.fetch_min(0, Ordering::SeqCst);
            }
        }
        let at = start.wrapping_add(lo).cast::<c_void>();
        let size = hi.wrapping_sub(lo);
        // SAFETY: invariant 6. The slot is `LIVE`, this process may act
        // on it (it claimed it, or inherited the mapping with it), and
        // this handler is counted in `in_handler`, so the mapping
        // `[start, start + len)` is mapped and owned by the crate, and
        // stays so until this handler returns. `within` holds (checked
        // just above): `[start + lo, start + hi)` lies in the mapping,
        // page-aligned (`lo` and `hi` are `cut`, `cut + page`, `len` or
        // earlier cuts, or 0, all multiples of the page size), at or
        // past a value the cut has held (for `Whole`, 0, stored just
        // above); a `Sink` range is `alone`, one page.
        if unsafe { replace(at, size, prot, source) }.is_ok() {
            if i == 0 && lo == cut && hi == old_cut {
                slot.pieces.fetch_add(1, Ordering::SeqCst);
            } else if hi == len && (lo == now_cut.min(cut) || lo == 0) {
                slot.pieces.store(0, Ordering::SeqCst);
            }
            replaced = Some((at, size));
            break;
        }
    }
    let Some((at, size)) = replaced else {
        return Some(Outcome::NotOurs);
    };
    // Read after the replacement, so that advice recorded before the
    // mapping's own `madvise` is seen here or that `madvise` covers
    // this page (`Mapping::exclude`).
    let advice = [
        (slot.dont_dump.load(Ordering::SeqCst), Advice::LinuxDontDump),
        (slot.dont_fork.load(Ordering::SeqCst), Advice::LinuxDontFork),
    ];
    for (wanted, advice) in advice {
        // SAFETY: `[at, at + size)` is the range just mapped, part of
        // the owned range; the advice changes only whether core dumps
        // and children made by `fork` get it.
        if wanted && unsafe { rustix::mm::madvise(at, size, advice) }.is_err() {
            return Some(Outcome::Unadvised);
        }
    }
    Some(Outcome::Contained)
}

/// What a replacement maps.
#[derive(Clone, Copy)]
enum Source {
    /// Shared anonymous zero pages ([`ZEROS`]).
    Zeros,
    /// Shared anonymous zero pages ([`ZEROS`]) over the whole mapping,
    /// its cut lowered to 0 first.
    Whole,
    /// The sink page ([`SINK`], [`SINK_FLAGS`]); the range is one page.
    Sink,
    /// A private anonymous zero page ([`LAST_RESORT`]), read-only.
    ReadOnly,
}

/// Maps `source` over `[at, at + size)` with `prot`. One system call,
/// no allocation, no lock: a raw one where rustix uses its
/// `linux_raw` backend; on architectures where rustix calls libc
/// instead (powerpc, mips, s390x among them) a failing `mmap` sets the
/// interrupted code's `errno` (invariant 7).
///
/// # Safety
///
/// `[at, at + size)` is page-aligned, lies inside a mapping the crate
/// owns that stays mapped until this returns, and is at or past a
/// value that mapping's cut has held (invariant 6); for `Sink`,
/// `size` is one page.
unsafe fn replace(
    at: *mut c_void,
    size: usize,
    prot: ProtFlags,
    source: Source,
) -> Result<(), Errno> {
    match source {
        Source::Zeros | Source::Whole | Source::ReadOnly => {
            let flags = if matches!(source, Source::Zeros | Source::Whole) {
                ZEROS
            } else {
                LAST_RESORT
            };
            // SAFETY: invariant 6, as the caller guarantees (see
            // `contain_in`): `MAP_FIXED` replaces exactly that range,
            // inside the owned mapping, with anonymous zero pages
            // (shared, or private; `MAP_NORESERVE`: no swap space is
            // reserved); the range stays mapped (invariant 2's
            // exception).
            unsafe { rustix::mm::mmap_anonymous(at, size, prot, flags) }.map(drop)
        }
        Source::Sink => {
            let raw = SINK.load(Ordering::SeqCst);
            if raw < 0 {
                return Err(Errno::BADF);
            }
            // SAFETY: a non-negative `SINK` is the sink memfd, opened
            // by `make_sink` and never closed (invariant 7).
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
            // SAFETY: invariant 6, as the caller guarantees: `MAP_FIXED`
            // replaces exactly that one-page range, inside the owned
            // mapping, with the sink's one page (offset 0, inside the
            // sealed one-page file: never past its end); the range
            // stays mapped (invariant 2's exception).
            unsafe { rustix::mm::mmap(at, size, prot, SINK_FLAGS, fd, 0) }.map(drop)
        }
    }
}
