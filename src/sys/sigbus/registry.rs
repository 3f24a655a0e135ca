//! The registry: a chain of blocks of [`CHUNK`] slots, one slot a
//! registered mapping, linked and never freed, walked by the handler
//! without a lock and without allocating (invariant 6); and a mapping's
//! [`Registration`] in it.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

use rustix::io::Errno;
use rustix::mm::{Advice, MapFlags, ProtFlags};

use super::handler::ARMED;
use super::replace::PAGE;
use super::{CHUNK, NOT_CUT};

const FREE: usize = 0;
const CLAIMED: usize = 1;
pub(super) const LIVE: usize = 2;
const RETIRED: usize = 3;

/// One registered mapping.
pub(super) struct Slot {
    pub(super) state: AtomicUsize,
    /// The mapping's base; its provenance is the mapping's, so the
    /// replacement's address is derived from it.
    pub(super) start: AtomicPtr<u8>,
    pub(super) len: AtomicUsize,
    pub(super) writable: AtomicBool,
    /// The mapping is out of core dumps (`MADV_DONTDUMP`): so are its
    /// replacement pages.
    pub(super) dont_dump: AtomicBool,
    /// The mapping is out of children made by `fork`
    /// (`MADV_DONTFORK`): so are its replacement pages, and a child
    /// never acts on the slot it inherits (the range is not its own).
    /// Set before the advice is given, never cleared while the slot is
    /// claimed.
    pub(super) dont_fork: AtomicBool,
    /// The offset from which the handler replaced pages of this
    /// mapping, or `NOT_CUT`; reset by each registration.
    pub(super) cut: AtomicUsize,
    /// Replacements made below the cut since the area was last made
    /// one mapping again (see [`span`](super::replace::span)).
    pub(super) pieces: AtomicUsize,
    /// The cut cell of the mapping's handle (its `Registration::cut`,
    /// shared by every mapping the handle made): lowered with `cut`.
    /// Points into memory that the registration holding the slot keeps
    /// alive (an `Arc`) for as long as the slot is `LIVE`.
    pub(super) family: AtomicPtr<AtomicUsize>,
}

impl Slot {
    fn new() -> Self {
        Self {
            state: AtomicUsize::new(FREE),
            start: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
            writable: AtomicBool::new(false),
            dont_dump: AtomicBool::new(false),
            dont_fork: AtomicBool::new(false),
            cut: AtomicUsize::new(NOT_CUT),
            pieces: AtomicUsize::new(0),
            family: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

/// A block of [`CHUNK`] slots. Chunks are made by `register` (normal
/// context) when every slot of the existing ones is taken, linked
/// once into the chain that starts at `HEAD` and never freed, so the
/// handler walks the chain without a lock and without allocating.
pub(super) struct Chunk {
    pub(super) slots: Box<[Slot]>,
    /// `ours[i]`: slot `i` was claimed by this process (not inherited
    /// through `fork`). Lives in an anonymous mapping advised
    /// `MADV_WIPEONFORK` (never unmapped), which a child made by `fork`
    /// sees as zeros: no slot of its own.
    pub(super) ours: &'static [AtomicBool],
    /// Slots at or past this index have never been claimed.
    pub(super) high: AtomicUsize,
    /// The next chunk, or null.
    pub(super) next: AtomicPtr<Chunk>,
}

/// The registry state that belongs to one process and must not pass
/// to a child made by `fork`. It lives in an anonymous mapping advised
/// `MADV_WIPEONFORK`, which a child sees filled with zeros (a valid
/// value of every field): no handler counted as running.
#[repr(C)]
pub(super) struct Local {
    /// Handlers between their scan's start and their last use of a
    /// slot.
    pub(super) in_handler: AtomicUsize,
}

/// The first chunk (null until the first registration).
static HEAD: AtomicPtr<Chunk> = AtomicPtr::new(ptr::null_mut());
/// Slots in all chunks linked so far (for error messages).
static SLOTS: AtomicUsize = AtomicUsize::new(0);
/// This process's `Local` (null until the first registration or
/// `install`); set once, never unmapped.
pub(super) static LOCAL: AtomicPtr<Local> = AtomicPtr::new(ptr::null_mut());
/// The cut offset of unregistered mappings: never lowered.
static NEVER_CUT: AtomicUsize = AtomicUsize::new(NOT_CUT);

/// A new private anonymous range of `size` bytes advised
/// `MADV_WIPEONFORK`, or `None` if the kernel refuses either (Linux
/// before 4.14 for the advice). Never unmapped once returned.
fn wiped_on_fork(size: usize) -> Option<*mut c_void> {
    // SAFETY: a null hint without `MAP_FIXED` makes a new private
    // anonymous range that replaces nothing; it is this module's.
    let raw = unsafe {
        rustix::mm::mmap_anonymous(
            ptr::null_mut(),
            size,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    }
    .ok()?;
    // SAFETY: `[raw, raw + size)` is the range just mapped; the
    // advice only decides what a child made by `fork` sees there.
    if unsafe { rustix::mm::madvise(raw, size, Advice::LinuxWipeOnFork) }.is_err() {
        // SAFETY: the range was mapped above and never published.
        let _ = unsafe { rustix::mm::munmap(raw, size) };
        return None;
    }
    Some(raw)
}

/// This process's [`Local`], made on first use; `None` if the kernel
/// refuses the mapping or `MADV_WIPEONFORK` (Linux before 4.14).
pub(super) fn local() -> Option<&'static Local> {
    let mut p = LOCAL.load(Ordering::SeqCst);
    if p.is_null() {
        let size = super::super::round_up_to_page(std::mem::size_of::<Local>())?;
        let raw = wiped_on_fork(size)?;
        if LOCAL
            .compare_exchange(p, raw.cast(), Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            p = raw.cast();
        } else {
            // SAFETY: the range was mapped by `wiped_on_fork` and never
            // published.
            let _ = unsafe { rustix::mm::munmap(raw, size) };
            p = LOCAL.load(Ordering::SeqCst);
        }
    }
    // SAFETY: a non-null `LOCAL` is a mapping of at least
    // `size_of::<Local>()` bytes that is never unmapped, page-aligned
    // (so aligned for `Local`), holding zeros or values stored through
    // the atomics: every byte pattern of it is a valid `Local`. Only
    // atomics are accessed through the reference; the kernel zeroing
    // it in a child made by `fork` happens before that child runs.
    Some(unsafe { &*p })
}

/// A new chunk, or `None` if memory for it cannot be had. Normal
/// context only (it allocates).
fn new_chunk() -> Option<&'static Chunk> {
    let size = super::super::round_up_to_page(CHUNK)?;
    let ours = wiped_on_fork(size)?;
    // SAFETY: `ours` is a private mapping of `size >= CHUNK` bytes,
    // zeroed, page-aligned (`AtomicBool` has size and alignment 1, and
    // 0 is `false`), never unmapped, and reached only through these
    // atomics (the kernel zeroing it in a child made by `fork` happens
    // before that child runs): a valid `[AtomicBool; CHUNK]` for ever.
    let ours: &'static [AtomicBool] =
        unsafe { std::slice::from_raw_parts(ours.cast::<AtomicBool>(), CHUNK) };
    let mut slots = Vec::new();
    slots.try_reserve_exact(CHUNK).ok()?;
    slots.extend((0..CHUNK).map(|_| Slot::new()));
    let chunk = Box::new(Chunk {
        slots: slots.into_boxed_slice(),
        ours,
        high: AtomicUsize::new(0),
        next: AtomicPtr::new(ptr::null_mut()),
    });
    Some(Box::leak(chunk))
}

/// Appends `chunk` at the end of the chain (never fails: chunks are
/// only ever linked, never unlinked).
fn link(chunk: &'static Chunk) {
    let new = ptr::from_ref(chunk).cast_mut();
    let mut at = &HEAD;
    loop {
        match at.compare_exchange(ptr::null_mut(), new, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => {
                SLOTS.fetch_add(CHUNK, Ordering::SeqCst);
                return;
            }
            // SAFETY: a non-null link is a leaked `Chunk`, never freed.
            Err(next) => at = unsafe { &(*next).next },
        }
    }
}

/// The chunks linked so far, in order. Allocation-free and lock-free
/// (the handler walks it).
pub(super) fn chunks() -> impl Iterator<Item = &'static Chunk> {
    let mut next = HEAD.load(Ordering::SeqCst);
    std::iter::from_fn(move || {
        // SAFETY: a non-null link is a leaked `Chunk`, never freed and
        // fully built before it was linked (`SeqCst` compare-exchange).
        let chunk = unsafe { next.as_ref() }?;
        next = chunk.next.load(Ordering::SeqCst);
        Some(chunk)
    })
}

/// How many slots the registry has now (for error messages).
pub(crate) fn slots() -> usize {
    SLOTS.load(Ordering::SeqCst)
}

/// The running handlers' counter of this process (for tests).
#[cfg(test)]
pub(super) fn in_handler() -> &'static AtomicUsize {
    &local().expect("MADV_WIPEONFORK").in_handler
}

/// Whether `reg`'s slot is marked as claimed by this process (for
/// tests).
#[cfg(test)]
pub(super) fn is_ours(reg: &Registration) -> bool {
    chunks().any(|chunk| {
        chunk.slots.iter().zip(chunk.ours).any(|(slot, ours)| {
            reg.slot.is_some_and(|s| ptr::eq(s, slot)) && ours.load(Ordering::SeqCst)
        })
    })
}

/// A mapping's entry in the registry, or none.
pub(crate) struct Registration {
    pub(super) slot: Option<&'static Slot>,
    /// The handle's cut cell, shared by the registrations of every
    /// mapping the handle made (`join`); `None`: never cut.
    cut: Option<Arc<AtomicUsize>>,
    /// The cell made at registration, kept for as long as the
    /// registration lives even after `join` replaced `cut`: a handler
    /// that loaded the slot's `family` pointer before `join` stored the
    /// new one may still lower it.
    #[allow(dead_code, reason = "held, never read: it keeps the cell alive")]
    own: Option<Arc<AtomicUsize>>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("registered", &self.slot.is_some())
            .field("cut", &self.cut_cell().load(Ordering::Relaxed))
            .finish()
    }
}

impl Registration {
    /// No entry: the cut offset stays `usize::MAX`.
    pub(crate) fn none() -> Self {
        Self {
            slot: None,
            cut: None,
            own: None,
        }
    }

    fn cut_cell(&self) -> &AtomicUsize {
        self.cut.as_deref().unwrap_or(&NEVER_CUT)
    }

    /// Registers the mapping `[base, base + len)`, which the caller
    /// owns (invariant 1) and has just mapped. The registry grows when
    /// every slot is taken; if memory for that cannot be had, no entry
    /// is made, unless `install` has succeeded: then `ENOSPC` (which
    /// `mmap` never returns), so that no mapping made after `install`
    /// goes unguarded.
    pub(crate) fn register(base: *mut u8, len: usize, writable: bool) -> Result<Self, Errno> {
        if local().is_none() {
            // No fork-safe registry on this kernel: `install` fails too.
            return Ok(Self::none());
        }
        // The handler needs it for any registered slot, installed or
        // not (a unit test calls it directly).
        PAGE.store(super::super::page_size(), Ordering::SeqCst);
        let cut = Arc::new(AtomicUsize::new(NOT_CUT));
        loop {
            for chunk in chunks() {
                for (i, (slot, ours)) in chunk.slots.iter().zip(chunk.ours).enumerate() {
                    if slot.state.load(Ordering::SeqCst) != FREE
                        || slot
                            .state
                            .compare_exchange(FREE, CLAIMED, Ordering::SeqCst, Ordering::SeqCst)
                            .is_err()
                    {
                        continue;
                    }
                    slot.start.store(base, Ordering::SeqCst);
                    slot.len.store(len, Ordering::SeqCst);
                    slot.writable.store(writable, Ordering::SeqCst);
                    slot.dont_dump.store(false, Ordering::SeqCst);
                    slot.dont_fork.store(false, Ordering::SeqCst);
                    slot.cut.store(NOT_CUT, Ordering::SeqCst);
                    slot.pieces.store(0, Ordering::SeqCst);
                    slot.family
                        .store(Arc::as_ptr(&cut).cast_mut(), Ordering::SeqCst);
                    ours.store(true, Ordering::SeqCst);
                    chunk.high.fetch_max(i + 1, Ordering::SeqCst);
                    slot.state.store(LIVE, Ordering::SeqCst);
                    return Ok(Self {
                        slot: Some(slot),
                        own: Some(Arc::clone(&cut)),
                        cut: Some(cut),
                    });
                }
            }
            // Every slot is taken: one more chunk, then look again
            // (another thread may have linked one meanwhile too).
            match new_chunk() {
                Some(chunk) => link(chunk),
                None => return Self::full(),
            }
        }
    }

    /// The registry cannot grow: unregistered before `install`,
    /// `ENOSPC` after.
    fn full() -> Result<Self, Errno> {
        if ARMED.load(Ordering::SeqCst) {
            Err(Errno::NOSPC)
        } else {
            Ok(Self::none())
        }
    }

    /// Makes this registration share the cut cell of `earlier` (a
    /// mapping the same handle made before), so that a cut of either
    /// is a cut of both: the lower cut stays. Called before the range
    /// is reachable by anyone but the caller; the cell made at
    /// registration stays alive with the registration (`own`).
    pub(crate) fn join(&mut self, earlier: &Self) {
        let (Some(slot), Some(shared)) = (self.slot, earlier.cut.as_ref()) else {
            return;
        };
        shared.fetch_min(self.cut_cell().load(Ordering::SeqCst), Ordering::SeqCst);
        slot.family
            .store(Arc::as_ptr(shared).cast_mut(), Ordering::SeqCst);
        // A fault handled between the store of the old cell and this
        // point lowered the old cell only: fold it in again.
        shared.fetch_min(self.cut_cell().load(Ordering::SeqCst), Ordering::SeqCst);
        self.cut = Some(Arc::clone(shared));
    }

    /// Records that the mapping is being advised out of core dumps
    /// and/or out of children made by `fork`, so that pages the
    /// handler puts in are advised the same way. Called before the
    /// advice is given to the mapping (see `Slot::dont_fork`).
    pub(crate) fn set_advice(&self, dont_dump: bool, dont_fork: bool) {
        if let Some(slot) = self.slot {
            if dont_dump {
                slot.dont_dump.store(true, Ordering::SeqCst);
            }
            if dont_fork {
                slot.dont_fork.store(true, Ordering::SeqCst);
            }
        }
    }

    /// The lowest offset from which the handler replaced pages of
    /// this mapping or of any other mapping its handle made (`join`)
    /// with zeros (a multiple of the page size), or `usize::MAX`.
    ///
    /// Preceded by an acquire fence: the accesses the caller made
    /// before are ordered before this load (on x86 only the compiler
    /// is restrained). A handler that ran on this thread during those
    /// accesses stored the offset before they resumed; one that ran on
    /// another thread stored it before replacing the page (invariant
    /// 6), so an access that read a replaced page is followed by a load
    /// that sees the cut.
    #[inline]
    pub(crate) fn cut(&self) -> usize {
        fence(Ordering::Acquire);
        self.cut_cell().load(Ordering::Acquire)
    }

    /// Takes the entry out of the handler's reach: after this returns,
    /// no handler replaces pages of the range any more (invariant 6).
    /// Called before the mapping is unmapped.
    pub(crate) fn retire(&self) {
        if let Some(slot) = self.slot {
            slot.state.store(RETIRED, Ordering::SeqCst);
            // A slot exists only once `LOCAL` is set (`register`).
            let local = LOCAL.load(Ordering::SeqCst);
            // SAFETY: as in `local`: non-null, never unmapped, every
            // byte pattern valid, accessed through atomics only.
            if let Some(local) = unsafe { local.as_ref() } {
                while local.in_handler.load(Ordering::SeqCst) != 0 {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Frees the slot for reuse. Called after the mapping is unmapped
    /// (or the unmap failed), after [`retire`](Self::retire).
    pub(crate) fn release(&self) {
        if let Some(slot) = self.slot {
            slot.state.store(FREE, Ordering::SeqCst);
        }
    }
}
