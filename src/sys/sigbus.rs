//! `SIGBUS` containment: the registry of the crate's file mappings and the
//! process-wide handler that [`install`] puts in place (invariants 6 and 7
//! of the parent module).
//!
//! Linux only, outside Miri and loom; elsewhere [`install`] returns
//! `ENOTSUP` and the registry is empty (every mapping's cut offset stays
//! `usize::MAX`).
//!
//! **Registry.** A chain of chunks of [`CHUNK`] slots each, starting at
//! `HEAD`. A chunk is allocated by `register` (normal context) when every
//! slot of the chain is taken, linked at the end with a compare-exchange,
//! and never unlinked or freed, so the handler walks the chain without a
//! lock and without allocating, and a slot it reads stays valid memory. A
//! slot is `FREE`, `CLAIMED` (being filled by a registration), `LIVE`
//! (its range is a mapping the crate owns, not yet being unmapped) or
//! `RETIRED` (its mapping is about to be unmapped). Every state change and
//! every field access of the registry is `SeqCst`. The handler counts
//! itself in `in_handler` around its scan, and a retiring mapping waits for
//! that counter to reach 0 after marking its slot `RETIRED` and before it is
//! unmapped. Of the handler's increment and the retirement's load of the
//! counter, one comes first in the single `SeqCst` order: if the increment,
//! the retirement waits for the handler; if the load, the handler's later
//! load of the slot's state sees `RETIRED` (or a later state), so it does not
//! touch the range. Either way no handler replaces pages of a range after
//! it was unmapped, and a slot is only reused (made `FREE`) after the unmap.
//!
//! **Children made by `fork`.** A child inherits the chunks (heap memory,
//! copied) and a copy of every `Mapping` value, but the counter
//! `in_handler` and each chunk's per-slot flags "claimed by this process"
//! live in private mappings advised `MADV_WIPEONFORK`, which the child sees as zeros: no handler is counted
//! as running in it (none runs: only the forking thread was copied), and no
//! inherited slot is its own. An inherited slot whose mapping came along
//! (every mapping not advised `MADV_DONTFORK`) is still exactly right: the
//! child has the range, and the `Mapping` value that owns it and will
//! retire the slot before unmapping it. An inherited slot of a
//! `dont_fork` mapping names a range the child does not have (and may have
//! mapped something else at), so the handler skips it.
//!
//! **Handler.** For a `SIGBUS` the kernel raised for an address with no
//! backing (`si_code == BUS_ADRERR`) inside a `LIVE` slot it may act on, it
//! lowers the slot's cut offset to the faulting page (`fetch_min`), and the
//! cut cell of the mapping's handle (`family`, shared by every mapping the
//! handle made) with it, then maps shared anonymous zero pages (not data:
//! `RLIMIT_DATA` never refuses them), with the mapping's protection and
//! `MAP_NORESERVE`, `MAP_FIXED` over the range `span` chooses (from the
//! page to the mapping's end for the first fault; up to the old cut for a
//! fault below it, or to the end again after `MAX_PIECES` (16) such pieces),
//! falling back to the faulting page alone, then everything from the cut,
//! then the sink page (one page of a sealed memfd made by `install`, shared,
//! writable if the mapping is), then the whole mapping (its cut lowered to
//! 0 first: no split needed), then the page read-only and private; gives
//! them the mapping's
//! `MADV_DONTDUMP`/`MADV_DONTFORK`; and returns: the faulting instruction
//! runs again, on zeros. Every replaced page is in the mapping and at or
//! past a value the cut has held (`within`, checked before each `mmap`,
//! and a debug assertion). It runs with every blockable signal blocked. Anything else is forwarded to the
//! previous disposition (`PREVIOUS`); after a previous handler reset
//! `SIGBUS` to the default for a signal a process sent, the handler records
//! the default as the previous disposition and installs itself again, and
//! after a previous handler installed itself again, so does the crate's.

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
pub(crate) use imp::{install, is_installed, slots, Registration};

#[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
pub(crate) use stub::{install, is_installed, slots, Registration};

/// The cut offset of a mapping that never lost pages.
const NOT_CUT: usize = usize::MAX;

/// Slots per chunk of the registry (it grows a chunk at a time).
// The stub (other systems, Miri, loom) has no registry.
#[cfg_attr(not(all(target_os = "linux", not(miri), not(loom))), allow(dead_code))]
const CHUNK: usize = 1024;

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
mod imp {
    use std::ffi::{c_int, c_void};
    use std::ptr;
    use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use rustix::io::Errno;
    use rustix::mm::{Advice, MapFlags, ProtFlags};

    use super::{CHUNK, NOT_CUT};

    const FREE: usize = 0;
    const CLAIMED: usize = 1;
    const LIVE: usize = 2;
    const RETIRED: usize = 3;

    /// One registered mapping.
    struct Slot {
        state: AtomicUsize,
        /// The mapping's base; its provenance is the mapping's, so the
        /// replacement's address is derived from it.
        start: AtomicPtr<u8>,
        len: AtomicUsize,
        writable: AtomicBool,
        /// The mapping is out of core dumps (`MADV_DONTDUMP`): so are its
        /// replacement pages.
        dont_dump: AtomicBool,
        /// The mapping is out of children made by `fork`
        /// (`MADV_DONTFORK`): so are its replacement pages, and a child
        /// never acts on the slot it inherits (the range is not its own).
        /// Set before the advice is given, never cleared while the slot is
        /// claimed.
        dont_fork: AtomicBool,
        /// The offset from which the handler replaced pages of this
        /// mapping, or `NOT_CUT`; reset by each registration.
        cut: AtomicUsize,
        /// Replacements made below the cut since the area was last made
        /// one mapping again (see [`span`]).
        pieces: AtomicUsize,
        /// The cut cell of the mapping's handle (its `Registration::cut`,
        /// shared by every mapping the handle made): lowered with `cut`.
        /// Points into memory that the registration holding the slot keeps
        /// alive (an `Arc`) for as long as the slot is `LIVE`.
        family: AtomicPtr<AtomicUsize>,
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
    struct Chunk {
        slots: Box<[Slot]>,
        /// `ours[i]`: slot `i` was claimed by this process (not inherited
        /// through `fork`). Lives in an anonymous mapping advised
        /// `MADV_WIPEONFORK` (never unmapped), which a child made by `fork`
        /// sees as zeros: no slot of its own.
        ours: &'static [AtomicBool],
        /// Slots at or past this index have never been claimed.
        high: AtomicUsize,
        /// The next chunk, or null.
        next: AtomicPtr<Chunk>,
    }

    /// The registry state that belongs to one process and must not pass
    /// to a child made by `fork`. It lives in an anonymous mapping advised
    /// `MADV_WIPEONFORK`, which a child sees filled with zeros (a valid
    /// value of every field): no handler counted as running.
    #[repr(C)]
    struct Local {
        /// Handlers between their scan's start and their last use of a
        /// slot.
        in_handler: AtomicUsize,
    }

    /// The first chunk (null until the first registration).
    static HEAD: AtomicPtr<Chunk> = AtomicPtr::new(ptr::null_mut());
    /// Slots in all chunks linked so far (for error messages).
    static SLOTS: AtomicUsize = AtomicUsize::new(0);
    /// This process's `Local` (null until the first registration or
    /// `install`); set once, never unmapped.
    static LOCAL: AtomicPtr<Local> = AtomicPtr::new(ptr::null_mut());
    /// The cut offset of unregistered mappings: never lowered.
    static NEVER_CUT: AtomicUsize = AtomicUsize::new(NOT_CUT);
    /// `install` has succeeded at least once.
    static ARMED: AtomicBool = AtomicBool::new(false);
    /// Serialises `install` (never taken by the handler).
    static INSTALL: Mutex<()> = Mutex::new(());
    /// The handler of the disposition found when the handler was first
    /// installed (`SIG_DFL`, `SIG_IGN` or an address), stored before the
    /// handler is installed. Changed afterwards only to `SIG_DFL`: when
    /// that handler reset `SIGBUS` to the default (`rearm`), or when the
    /// default is what `install` found it replaced.
    static PREVIOUS: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
    /// Whether that handler was installed with `SA_SIGINFO`; stored before
    /// the handler is installed, never changed.
    static PREVIOUS_SIGINFO: AtomicBool = AtomicBool::new(false);
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
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    /// Test seam: the handler skips this many of its candidate
    /// replacements, as if the kernel had refused them, so that the
    /// fallbacks run. Compiled into unit tests only.
    #[cfg(test)]
    static REFUSED: AtomicUsize = AtomicUsize::new(0);

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

    /// Makes the sink ([`SINK`]) if there is none yet: a one-page memfd,
    /// its page written once (so the kernel allocates it now, not in the
    /// handler), sealed against shrinking, growing and further seals.
    /// Normal context.
    ///
    /// # Errors
    ///
    /// What `memfd_create`, `ftruncate`, `pwrite` or the sealing report.
    fn make_sink() -> Result<(), Errno> {
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

    /// This process's [`Local`], made on first use; `None` if the kernel
    /// refuses the mapping or `MADV_WIPEONFORK` (Linux before 4.14).
    fn local() -> Option<&'static Local> {
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
    fn chunks() -> impl Iterator<Item = &'static Chunk> {
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
        slot: Option<&'static Slot>,
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

    /// The handler's address as `sigaction` stores it.
    fn handler_address() -> libc::sighandler_t {
        on_sigbus as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as libc::sighandler_t
    }

    /// Whether the crate's handler is `SIGBUS`'s disposition right now.
    pub(crate) fn is_installed() -> bool {
        query().is_ok_and(|a| a.sa_sigaction == handler_address())
    }

    /// Installs the handler for the process, or again after the
    /// disposition was reset to the default.
    ///
    /// # Errors
    ///
    /// `ENOTSUP` without `MADV_WIPEONFORK`; `EBUSY` if the handler was
    /// installed before and `SIGBUS` now has another handler or is
    /// ignored; whatever `sigaction` reports. Nothing is installed then.
    pub(crate) fn install() -> Result<(), Errno> {
        let _serial = INSTALL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = query()?;
        if current.sa_sigaction == handler_address() {
            return Ok(());
        }
        if ARMED.load(Ordering::SeqCst) && current.sa_sigaction != libc::SIG_DFL {
            // Someone replaced ours; theirs may chain to ours, and ours
            // forwards to what it found first: replacing theirs could
            // loop, or silence it.
            return Err(Errno::BUSY);
        }
        local().ok_or(Errno::NOTSUP)?;
        make_sink()?;
        PAGE.store(super::super::page_size(), Ordering::SeqCst);
        if ARMED.load(Ordering::SeqCst) {
            // Installed before and reset to the default since: the default
            // is what a signal that is not ours now gets.
            PREVIOUS.store(libc::SIG_DFL, Ordering::SeqCst);
        } else {
            // Stored before the handler exists, so it reads them at once.
            PREVIOUS_SIGINFO.store(current.sa_flags & libc::SA_SIGINFO != 0, Ordering::SeqCst);
            PREVIOUS.store(current.sa_sigaction, Ordering::SeqCst);
        }
        let Some(replaced) = arm() else {
            return Err(last_errno());
        };
        if replaced.sa_sigaction == libc::SIG_DFL {
            // The disposition was reset to the default between the look
            // above and now (a sent SIGBUS that the previous handler
            // answered that way, say): the default is what was replaced.
            // (Another thread installing a handler in between is not
            // followed: `install` is to be called before threads that
            // change dispositions start.)
            PREVIOUS.store(libc::SIG_DFL, Ordering::SeqCst);
        }
        ARMED.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Makes the crate's handler `SIGBUS`'s disposition and returns the one
    /// it replaced; `None` if `sigaction` failed. Async-signal-safe
    /// (`rearm` calls it).
    fn arm() -> Option<libc::sigaction> {
        // SAFETY: an all-zero `sigaction` is a valid value of the C
        // struct (no handler, empty mask, no flags); the fields that
        // matter are set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler_address();
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        // Every blockable signal is blocked while the handler runs, so no
        // other handler interrupts it (and faults, meeting a blocked
        // `SIGBUS`, which the kernel answers by killing the process).
        // SAFETY: `sigfillset` is async-signal-safe (POSIX) and writes
        // only the valid, writable mask it is given.
        unsafe {
            libc::sigfillset(&mut action.sa_mask);
        }
        // SAFETY: as above, a zeroed `sigaction` is valid.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: `action` is initialised, `old` is valid and writable,
        // and the handler `action` names is async-signal-safe (invariant
        // 7). Every blockable signal, `SIGBUS` included, is blocked while
        // it runs (the full mask, no `SA_NODEFER`).
        let rc = unsafe { libc::sigaction(libc::SIGBUS, &action, &mut old) };
        (rc == 0).then_some(old)
    }

    fn last_errno() -> Errno {
        Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL)
    }

    /// The current disposition of `SIGBUS`.
    fn query() -> Result<libc::sigaction, Errno> {
        // SAFETY: as in `install`, a zeroed `sigaction` is valid.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the disposition into `old`,
        // a valid, writable `sigaction`.
        let rc = unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut old) };
        if rc == 0 {
            Ok(old)
        } else {
            Err(last_errno())
        }
    }

    /// What the handler did with a fault.
    #[cfg_attr(test, derive(Debug, PartialEq, Eq))]
    enum Outcome {
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

    /// The handler (invariant 7: no allocation, no lock, no panic).
    extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
        // SAFETY: installed with `SA_SIGINFO`, so the kernel passes a valid
        // `siginfo_t`.
        let info_ref = unsafe { &*info };
        let local = LOCAL.load(Ordering::SeqCst);
        // SAFETY: as in `local`: non-null, never unmapped, every byte
        // pattern valid, accessed through atomics only.
        if let (libc::BUS_ADRERR, Some(local)) = (info_ref.si_code, unsafe { local.as_ref() }) {
            // SAFETY: for the kernel's `BUS_*` codes the fault member of
            // the union is the one filled in.
            let addr = unsafe { info_ref.si_addr() }.cast::<u8>();
            local.in_handler.fetch_add(1, Ordering::SeqCst);
            let outcome = contain(local, addr);
            local.in_handler.fetch_sub(1, Ordering::SeqCst);
            match outcome {
                Outcome::Contained => return,
                Outcome::Unadvised => return die(sig),
                Outcome::NotOurs => {}
            }
        }
        forward(sig, info, ctx);
    }

    /// Replacements below the cut a mapping may collect before the whole
    /// replaced area is made one mapping again (see [`span`]).
    const MAX_PIECES: usize = 16;

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
    fn span(
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
    fn within(lo: usize, hi: usize, cut: usize, len: usize) -> bool {
        lo <= cut && cut < hi && hi <= len
    }

    /// Replaces the page holding `addr` if it lies in a `LIVE` slot this
    /// process may act on: one it claimed, or one it inherited through
    /// `fork` whose mapping came along (not `dont_fork`).
    fn contain(local: &Local, addr: *mut u8) -> Outcome {
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

    /// Hands a `SIGBUS` that is not ours to the disposition found at the
    /// first install: its handler (`SA_SIGINFO` or plain), or for the
    /// default (and, for a fault, for "ignore", which the kernel does not
    /// honour for faults) the default action.
    fn forward(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
        // SAFETY: `info` is valid (as in `on_sigbus`).
        let code = unsafe { (*info).si_code };
        // `si_code <= 0`: sent by a process (`kill`, `tgkill`, `sigqueue`).
        let sent = code <= 0;
        let handler = PREVIOUS.load(Ordering::SeqCst);
        if handler == libc::SIG_IGN {
            // A signal sent by a process is ignored as asked; a fault
            // cannot be.
            if !sent {
                die(sig);
            }
            return;
        }
        if handler == libc::SIG_DFL {
            return die(sig);
        }
        if PREVIOUS_SIGINFO.load(Ordering::SeqCst) {
            // SAFETY: the previous disposition was installed with
            // `SA_SIGINFO`, so its handler is such a function's address,
            // called as the kernel would call it.
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                unsafe { std::mem::transmute(handler) };
            f(sig, info, ctx);
        } else {
            // SAFETY: without `SA_SIGINFO`, the handler (the same field of
            // `sigaction`) is a one-argument function's address.
            let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
            f(sig);
        }
        rearm(handler, sent);
    }

    /// After the previous handler `handler` ran: puts the crate's handler
    /// back if that handler took `SIGBUS`'s disposition for itself again
    /// (the System V idiom of re-installing a handler inside it), or, for a
    /// signal sent by a process (`sent`), reset it to the default (Rust's
    /// standard library does): the default is then from now on what a
    /// signal that is not ours gets, as it would have been without the
    /// crate. Until this runs, the disposition is the previous handler's
    /// choice (the gap the documentation names). A fault it reset to the
    /// default needs none of this: the faulting instruction runs again and
    /// meets the default. Any other choice of its (ignore, another handler)
    /// stands: the guard is then off.
    fn rearm(handler: libc::sighandler_t, sent: bool) {
        // SAFETY: as in `install`, a zeroed `sigaction` is valid.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: `sigaction` is async-signal-safe; a null new action only
        // reads the disposition into `now`, valid and writable.
        let rc = unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut now) };
        if rc != 0 {
            return;
        }
        if now.sa_sigaction == handler {
            let _ = arm();
        } else if sent && now.sa_sigaction == libc::SIG_DFL {
            PREVIOUS.store(libc::SIG_DFL, Ordering::SeqCst);
            let _ = arm();
        }
    }

    /// Restores the default action and raises the signal again: it is
    /// delivered when the handler returns (it is blocked until then) and
    /// ends the process as it would have ended without us.
    fn die(sig: c_int) {
        // SAFETY: as in `install`, a zeroed `sigaction` is valid, and
        // `SIG_DFL` (0) is its handler.
        let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        dfl.sa_sigaction = libc::SIG_DFL;
        // SAFETY: `sigaction` and `raise` are async-signal-safe; `dfl` is
        // initialised and the old-action pointer may be null.
        unsafe {
            libc::sigaction(sig, &dfl, ptr::null_mut());
        }
        // SAFETY: `raise` is async-signal-safe.
        unsafe {
            libc::raise(sig);
        }
    }

    #[cfg(test)]
    mod tests {
        use std::collections::HashSet;
        use std::os::fd::AsFd;
        use std::sync::atomic::Ordering;
        use std::time::Duration;

        use super::{contain, handler_address, local, query, Outcome, Registration};
        use crate::sys::{page_size, Mapping};

        /// Serialises the tests that call `contain` (the `REFUSED` seam is
        /// process-wide).
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

        fn serial() -> std::sync::MutexGuard<'static, ()> {
            SERIAL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        /// A file mapping of `pages` pages, registered.
        fn mapping(pages: usize) -> (std::fs::File, Mapping) {
            let file = tempfile::tempfile().unwrap();
            let len = pages * page_size();
            file.set_len(u64::try_from(len).unwrap()).unwrap();
            let map = Mapping::new(file.as_fd(), len, 0, true).unwrap();
            (file, map)
        }

        /// A registered file mapping of 4 pages whose next page is a
        /// private `PROT_NONE` page of this test's (the fence): no mapping
        /// another test registers concurrently can lie there. Without it
        /// the page just past a mapping is often another test's (the kernel
        /// places new mappings next to old ones; failed once in CI). Five
        /// pages are reserved, the first four given back, and the mapping
        /// made, until it lands in them. Returns the mappings tried (the
        /// last one is the fenced one) and the fence's address, to unmap.
        fn mapping_with_a_fence() -> (Vec<(std::fs::File, Mapping)>, usize) {
            use rustix::mm::{mmap_anonymous, munmap, MapFlags, ProtFlags};
            let page = page_size();
            let mut tried = Vec::new();
            for _ in 0..64 {
                // SAFETY: a null hint without `MAP_FIXED` makes a new private
                // range that replaces nothing; it is this test's alone.
                let space = unsafe {
                    mmap_anonymous(
                        std::ptr::null_mut(),
                        5 * page,
                        ProtFlags::empty(),
                        MapFlags::PRIVATE,
                    )
                }
                .unwrap()
                .cast::<u8>();
                // SAFETY: the first four pages of the range just made, which
                // nothing uses.
                unsafe { munmap(space.cast(), 4 * page) }.unwrap();
                let fence = space.wrapping_add(4 * page);
                let (file, map) = mapping(4);
                let landed = map.base() == space;
                tried.push((file, map));
                if landed {
                    return (tried, fence as usize);
                }
                // SAFETY: the fifth page of the range made above, which
                // nothing uses.
                unsafe { munmap(fence.cast(), page) }.unwrap();
            }
            panic!("no 4-page mapping landed before a fence page in 64 tries");
        }

        #[test]
        fn the_handler_replaces_the_faulting_page_of_a_live_slot_and_nothing_of_a_retired_one() {
            let _serial = serial();
            let page = page_size();
            let (mut tried, fence) = mapping_with_a_fence();
            let (_file, map) = tried.pop().unwrap();
            let local = local().unwrap();
            assert_eq!(
                format!("{:?}", map.guard),
                format!("Registration {{ registered: true, cut: {} }}", usize::MAX)
            );
            // Called as the handler calls it, without a signal: the slot is
            // live, so page 2 is replaced and the cut drops to it.
            assert_eq!(
                contain(local, map.base().wrapping_add(2 * page + 5)),
                Outcome::Contained
            );
            assert_eq!(map.cut(), 2 * page);
            assert_eq!(
                contain(local, map.base().wrapping_add(3 * page)),
                Outcome::Contained
            );
            assert_eq!(map.cut(), 2 * page, "the lowest cut wins");
            // Just past the mapping: not ours.
            assert_eq!(
                contain(local, map.base().wrapping_add(4 * page)),
                Outcome::NotOurs
            );
            map.guard.retire();
            assert_eq!(contain(local, map.base()), Outcome::NotOurs);
            assert_eq!(map.cut(), 2 * page);
            // SAFETY: `fence` is the private page `mapping_with_a_fence`
            // mapped for this test, used by nothing.
            unsafe { rustix::mm::munmap(fence as *mut std::ffi::c_void, page) }.unwrap();
        }

        #[test]
        fn the_replaced_range_is_in_the_mapping_and_at_or_past_the_cut() {
            use super::{span, within, MAX_PIECES, NOT_CUT};
            const P: usize = 4096;
            const LEN: usize = 64 * P;
            // The first fault: from its page to the end.
            assert_eq!(span(8 * P, LEN, NOT_CUT, 8 * P, 0), (8 * P, LEN));
            // At or past the cut (a pending or refused replacement): from
            // the cut as it is now to the end.
            assert_eq!(span(12 * P, LEN, 8 * P, 8 * P, 0), (8 * P, LEN));
            assert_eq!(span(8 * P, LEN, 8 * P, 6 * P, 3), (6 * P, LEN));
            // Below the cut: up to the old cut, a piece.
            assert_eq!(span(4 * P, LEN, 8 * P, 4 * P, 0), (4 * P, 8 * P));
            assert_eq!(
                span(4 * P, LEN, 8 * P, 4 * P, MAX_PIECES - 1),
                (4 * P, 8 * P)
            );
            // With as many pieces as allowed: one area again.
            assert_eq!(span(4 * P, LEN, 8 * P, 4 * P, MAX_PIECES), (4 * P, LEN));
            // Every result holds the page and stays in the mapping.
            for cut in (0..LEN).step_by(P) {
                for old in [NOT_CUT, 0, 3 * P, cut, cut + P, LEN - P] {
                    for pieces in [0, MAX_PIECES] {
                        let now = old.min(cut);
                        let (lo, hi) = span(cut, LEN, old, now, pieces);
                        assert!(within(lo, hi, cut, LEN), "{cut} {old} {pieces}");
                        assert!(lo >= now, "{cut} {old} {pieces}");
                    }
                }
            }
            assert!(!within(0, LEN + P, 0, LEN));
            assert!(!within(P, 2 * P, 0, LEN));
            assert!(!within(0, P, P, LEN));
        }

        /// The bytes of page `i` of `map` read through it.
        fn page_byte(map: &Mapping, i: usize) -> u8 {
            let mut b = [0u8; 1];
            assert!(map.read(i * page_size(), &mut b));
            b[0]
        }

        #[test]
        fn when_the_wide_replacement_is_refused_the_faulting_page_alone_is_replaced() {
            let _serial = serial();
            let page = page_size();
            let (_file, map) = mapping(8);
            for i in 0..8 {
                assert!(map.write(i * page, &[0x5A]));
            }
            let local = local().unwrap();
            super::REFUSED.store(1, Ordering::SeqCst);
            let first = contain(local, map.base().wrapping_add(5 * page + 1));
            let below = contain(local, map.base().wrapping_add(2 * page));
            super::REFUSED.store(0, Ordering::SeqCst);
            assert_eq!((first, below), (Outcome::Contained, Outcome::Contained));
            assert_eq!(map.cut(), 2 * page);
            // Pages 2 and 5 are zero pages; the file's pages around them
            // are still the file's.
            let bytes: Vec<u8> = (0..8).map(|i| page_byte(&map, i)).collect();
            assert_eq!(bytes, [0x5A, 0x5A, 0, 0x5A, 0x5A, 0, 0x5A, 0x5A]);
            // Without the seam the wide range goes in: from the cut to the
            // end.
            assert_eq!(
                contain(local, map.base().wrapping_add(3 * page)),
                Outcome::Contained
            );
            let bytes: Vec<u8> = (0..8).map(|i| page_byte(&map, i)).collect();
            assert_eq!(bytes, [0x5A, 0x5A, 0, 0, 0, 0, 0, 0]);
        }

        /// The permissions `/proc/self/maps` gives the page at `addr`.
        fn perms_at(addr: usize) -> String {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            maps.lines()
                .find_map(|l| {
                    let (range, rest) = l.split_once(' ')?;
                    let (lo, hi) = range.split_once('-')?;
                    let lo = usize::from_str_radix(lo, 16).ok()?;
                    let hi = usize::from_str_radix(hi, 16).ok()?;
                    (lo <= addr && addr < hi).then(|| rest[..4].to_string())
                })
                .unwrap()
        }

        /// The `/proc/self/maps` line of the mapping holding `addr`.
        fn maps_line(addr: usize) -> String {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            maps.lines()
                .find(|l| {
                    let Some((range, _)) = l.split_once(' ') else {
                        return false;
                    };
                    let Some((lo, hi)) = range.split_once('-') else {
                        return false;
                    };
                    let lo = usize::from_str_radix(lo, 16).unwrap();
                    let hi = usize::from_str_radix(hi, 16).unwrap();
                    lo <= addr && addr < hi
                })
                .unwrap()
                .to_string()
        }

        #[test]
        fn when_every_shared_anonymous_replacement_is_refused_the_sink_page_is_mapped_writable() {
            let _serial = serial();
            super::make_sink().unwrap();
            let page = page_size();
            let (_file, map) = mapping(4);
            assert!(map.write(2 * page, &[0x5A]));
            let local = local().unwrap();
            // The three shared anonymous candidates are refused.
            super::REFUSED.store(3, Ordering::SeqCst);
            let outcome = contain(local, map.base().wrapping_add(2 * page));
            super::REFUSED.store(0, Ordering::SeqCst);
            assert_eq!(outcome, Outcome::Contained);
            assert_eq!(map.cut(), 2 * page);
            let line = maps_line(map.base() as usize + 2 * page);
            assert!(line.contains("rw-s"), "{line}");
            assert!(line.contains("memfd:shm-region-sigbus-sink"), "{line}");
            // Exactly the faulting page: its neighbours are the file's.
            let above = maps_line(map.base() as usize + 3 * page);
            assert!(!above.contains("sink"), "{above}");
            let below = maps_line(map.base() as usize + page);
            assert!(!below.contains("sink"), "{below}");
            // Writable: a write there goes on (into garbage).
            assert!(map.write(2 * page + 8, &[9]));
        }

        #[test]
        fn when_every_splitting_replacement_is_refused_the_whole_mapping_is_replaced_and_cut_at_0()
        {
            let _serial = serial();
            let page = page_size();
            let (_file, map) = mapping(8);
            for i in 0..8 {
                assert!(map.write(i * page, &[0x5A]));
            }
            let local = local().unwrap();
            // A first fault whose wide replacement is refused: the page
            // alone, so the mapping is three kernel mappings.
            super::REFUSED.store(1, Ordering::SeqCst);
            let first = contain(local, map.base().wrapping_add(5 * page));
            // Every replacement that would split a mapping refused (the
            // wide one, the page alone, everything from the cut, the sink
            // page), as at `vm.max_map_count`.
            super::REFUSED.store(4, Ordering::SeqCst);
            let second = contain(local, map.base().wrapping_add(2 * page + 3));
            super::REFUSED.store(0, Ordering::SeqCst);
            assert_eq!((first, second), (Outcome::Contained, Outcome::Contained));
            assert_eq!(map.cut(), 0, "everything is cut");
            let bytes: Vec<u8> = (0..8).map(|i| page_byte(&map, i)).collect();
            assert_eq!(bytes, [0; 8]);
            // One shared mapping of exactly the whole range.
            let base = map.base() as usize;
            let line = maps_line(base);
            let (range, rest) = line.split_once(' ').unwrap();
            assert_eq!(range, format!("{base:x}-{:x}", base + 8 * page), "{line}");
            assert!(rest.starts_with("rw-s"), "{line}");
            assert_eq!(maps_line(base + 7 * page), line);
        }

        #[test]
        fn when_every_writable_replacement_is_refused_the_page_is_replaced_read_only() {
            let _serial = serial();
            let page = page_size();
            let (_file, map) = mapping(4);
            assert!(map.write(2 * page, &[0x5A]));
            let local = local().unwrap();
            // The sink page and the whole mapping are refused too.
            super::REFUSED.store(5, Ordering::SeqCst);
            let outcome = contain(local, map.base().wrapping_add(2 * page));
            super::REFUSED.store(0, Ordering::SeqCst);
            assert_eq!(outcome, Outcome::Contained);
            assert_eq!(map.cut(), 2 * page);
            assert_eq!(page_byte(&map, 2), 0);
            assert_eq!(perms_at(map.base() as usize + 2 * page), "r--p");
            assert_eq!(perms_at(map.base() as usize + 3 * page), "rw-s");
            // Refused but the collapse: everything from the cut, shared.
            super::REFUSED.store(2, Ordering::SeqCst);
            let outcome = contain(local, map.base().wrapping_add(page));
            super::REFUSED.store(0, Ordering::SeqCst);
            assert_eq!(outcome, Outcome::Contained);
            for i in 1..4 {
                assert_eq!(perms_at(map.base() as usize + i * page), "rw-s", "{i}");
            }
            assert_eq!(page_byte(&map, 0), 0);
        }

        #[test]
        fn a_slot_reused_by_a_smaller_mapping_starts_uncut_and_replaces_only_inside_it() {
            let _serial = serial();
            let page = page_size();
            let (_a_file, a) = mapping(64);
            let local = local().unwrap();
            let a_slot = a.guard.slot.map(std::ptr::from_ref);
            assert_eq!(
                contain(local, a.base().wrapping_add(60 * page)),
                Outcome::Contained
            );
            assert_eq!(a.cut(), 60 * page);
            drop(a);
            // The freed slot is the first free one again (other tests may
            // hold slots, so look for it among a few mappings).
            let mut held = Vec::new();
            let b = loop {
                let (f, m) = mapping(2);
                if m.guard.slot.map(std::ptr::from_ref) == a_slot {
                    break (f, m);
                }
                held.push((f, m));
                assert!(held.len() < 5000, "slot never reused");
            };
            let b = b.1;
            assert!(b.write(0, &[1]) && b.write(page, &[2]));
            assert_eq!(b.cut(), usize::MAX, "a reused slot starts uncut");
            // Two faults, one above the other: both contained, both inside
            // the two pages (a range from the old cut would have mapped far
            // past them: the debug assertion in the handler, or a crash).
            for at in [page, 0] {
                assert_eq!(
                    contain(local, b.base().wrapping_add(at)),
                    Outcome::Contained
                );
            }
            assert_eq!(b.cut(), 0);
            assert_eq!((page_byte(&b, 0), page_byte(&b, 1)), (0, 0));
        }

        #[test]
        fn a_cut_of_an_earlier_mapping_is_the_cut_of_every_mapping_joined_to_it() {
            let _serial = serial();
            let page = page_size();
            let (file, old) = mapping(4);
            let mut new = Mapping::new(file.as_fd(), 8 * page, 0, true).unwrap();
            new.join(&old);
            let local = local().unwrap();
            assert_eq!(
                contain(local, old.base().wrapping_add(3 * page)),
                Outcome::Contained
            );
            assert_eq!((old.cut(), new.cut()), (3 * page, 3 * page));
            // The new mapping's own pages are untouched: only the cut is
            // shared.
            assert!(new.write(3 * page, &[7]));
            assert_eq!(page_byte(&new, 3), 7);
            // A lower cut in the new one is the old one's too.
            assert_eq!(
                contain(local, new.base().wrapping_add(page)),
                Outcome::Contained
            );
            assert_eq!((old.cut(), new.cut()), (page, page));
            // A mapping cut before it joins brings its cut along.
            let (file2, first) = mapping(2);
            let mut second = Mapping::new(file2.as_fd(), 2 * page, 0, true).unwrap();
            assert_eq!(
                contain(local, second.base().wrapping_add(page)),
                Outcome::Contained
            );
            second.join(&first);
            assert_eq!((first.cut(), second.cut()), (page, page));
        }

        #[test]
        fn a_registry_block_is_1024_slots_of_56_bytes_a_header_and_a_page() {
            use super::{Chunk, Slot, CHUNK};
            assert_eq!(CHUNK, 1024);
            if cfg!(target_pointer_width = "64") {
                // Six 8-byte fields and three flags, padded to 8.
                assert_eq!(std::mem::size_of::<Slot>(), 56);
                assert_eq!(CHUNK * std::mem::size_of::<Slot>(), 57_344);
                // The boxed slice, the flag slice, `high` and `next`.
                assert_eq!(std::mem::size_of::<Chunk>(), 48);
            }
            // The flags: one byte per slot, rounded up to a page.
            assert_eq!(
                crate::sys::round_up_to_page(CHUNK),
                Some(page_size().max(CHUNK))
            );
        }

        #[test]
        fn retire_waits_for_a_running_handler() {
            let (_file, map) = mapping(1);
            let counter = &local().unwrap().in_handler;
            counter.fetch_add(1, Ordering::SeqCst);
            let retired = std::thread::scope(|s| {
                let t = s.spawn(|| map.guard.retire());
                std::thread::sleep(Duration::from_millis(50));
                let early = t.is_finished();
                counter.fetch_sub(1, Ordering::SeqCst);
                t.join().unwrap();
                early
            });
            assert!(!retired, "retire returned while a handler was counted");
        }

        #[test]
        fn concurrent_registrations_claim_distinct_slots() {
            let memory = vec![0u8; 8];
            let memory = &memory;
            let regs: Vec<Registration> = std::thread::scope(|s| {
                let threads: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            (0..200)
                                .map(|_| {
                                    let base = memory.as_ptr().cast_mut();
                                    Registration::register(base, 8, false).unwrap()
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .flat_map(|t| t.join().unwrap())
                    .collect()
            });
            let slots: HashSet<usize> = regs
                .iter()
                .map(|r| r.slot.map_or(0, |s| std::ptr::from_ref(s) as usize))
                .collect();
            assert_eq!(slots.len(), 1600);
            assert!(!slots.contains(&0));
            for r in &regs {
                r.retire();
                r.release();
            }
            // Threads that register and release over and over fight for
            // the same first free slots: a slot claimed twice would be in
            // the set of live slots already.
            let live = std::sync::Mutex::new(HashSet::new());
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        for _ in 0..5000 {
                            let base = memory.as_ptr().cast_mut();
                            let r = Registration::register(base, 8, false).unwrap();
                            let at = r.slot.map_or(0, |s| std::ptr::from_ref(s) as usize);
                            assert!(live.lock().unwrap().insert(at), "slot claimed twice");
                            std::thread::yield_now();
                            live.lock().unwrap().remove(&at);
                            r.retire();
                            r.release();
                        }
                    });
                }
            });
        }

        #[test]
        fn install_asks_for_siginfo_the_alternate_stack_and_restarted_calls() {
            // Installing in the unit-test process is harmless: the handler
            // forwards every fault that is not the crate's (to a handler
            // that returns, here: no unit test makes a foreign fault). The
            // only test that installs, so the disposition found is this
            // plain (not `SA_SIGINFO`) one.
            extern "C" fn plain(_sig: libc::c_int) {}
            // SAFETY: a zeroed `sigaction` is valid; flags stay 0.
            let mut before: libc::sigaction = unsafe { std::mem::zeroed() };
            before.sa_sigaction = plain as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // SAFETY: `before` is initialised; `plain` does nothing.
            let rc = unsafe { libc::sigaction(libc::SIGBUS, &before, std::ptr::null_mut()) };
            assert_eq!(rc, 0);
            super::install().unwrap();
            assert_eq!(super::PREVIOUS.load(Ordering::SeqCst), before.sa_sigaction);
            assert!(!super::PREVIOUS_SIGINFO.load(Ordering::SeqCst));
            let action = query().unwrap();
            assert_eq!(action.sa_sigaction, handler_address());
            let wanted = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            assert_eq!(action.sa_flags & wanted, wanted);
            assert_eq!(action.sa_flags & libc::SA_NODEFER, 0);
            // Every blockable signal is blocked while it runs: the standard
            // ones and the real-time ones the C library leaves to programs
            // (it keeps two below SIGRTMIN for itself).
            let blockable = (1..32)
                .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
                .filter(|&sig| sig != libc::SIGKILL && sig != libc::SIGSTOP);
            for sig in blockable {
                // SAFETY: `sa_mask` is a valid, initialised set.
                let member = unsafe { libc::sigismember(&action.sa_mask, sig) };
                assert_eq!(member, 1, "signal {sig} not blocked");
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
mod stub {
    use rustix::io::Errno;

    use super::NOT_CUT;

    /// No registry here: every mapping is unregistered.
    #[derive(Debug)]
    pub(crate) struct Registration;

    #[allow(
        clippy::unused_self,
        clippy::unnecessary_wraps,
        reason = "the same interface as the Linux registry"
    )]
    impl Registration {
        pub(crate) fn none() -> Self {
            Self
        }

        pub(crate) fn register(
            _base: *mut u8,
            _len: usize,
            _writable: bool,
        ) -> Result<Self, Errno> {
            Ok(Self)
        }

        #[inline]
        pub(crate) fn cut(&self) -> usize {
            NOT_CUT
        }

        pub(crate) fn set_advice(&self, _dont_dump: bool, _dont_fork: bool) {}

        pub(crate) fn join(&mut self, _earlier: &Self) {}

        pub(crate) fn retire(&self) {}

        pub(crate) fn release(&self) {}
    }

    pub(crate) fn is_installed() -> bool {
        false
    }

    pub(crate) fn slots() -> usize {
        0
    }

    pub(crate) fn install() -> Result<(), Errno> {
        Err(Errno::NOTSUP)
    }
}

#[cfg(all(test, target_os = "linux", not(miri), not(loom)))]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::sync::atomic::Ordering;

    use super::imp::{in_handler, is_ours, Registration};

    #[test]
    fn a_fork_child_starts_with_no_handler_counted_and_no_slot_of_its_own() {
        // A handler "running" in this process when it forks (counted, as
        // `on_sigbus` counts itself), and a slot this process claimed.
        let memory = vec![0u8; 4096];
        let reg = Registration::register(memory.as_ptr().cast_mut(), 4096, false).unwrap();
        let reg = std::sync::Arc::new(reg);
        assert!(is_ours(&reg));
        let in_child = std::sync::Arc::clone(&reg);
        in_handler().fetch_add(1, Ordering::SeqCst);
        let mut cmd = Command::new("true");
        // SAFETY: the closure runs in the child between fork and exec and
        // only makes atomic loads and stores; `retire` returns at once when
        // no handler is counted (it would spin forever otherwise).
        unsafe {
            cmd.pre_exec(move || {
                if in_handler().load(Ordering::SeqCst) != 0 {
                    return Err(std::io::Error::from_raw_os_error(1001));
                }
                if is_ours(&in_child) {
                    return Err(std::io::Error::from_raw_os_error(1002));
                }
                in_child.retire();
                Ok(())
            });
        }
        let status = cmd.status();
        drop(cmd);
        in_handler().fetch_sub(1, Ordering::SeqCst);
        reg.retire();
        reg.release();
        assert!(status.unwrap().success());
    }
}
