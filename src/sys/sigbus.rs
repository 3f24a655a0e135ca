//! `SIGBUS` containment: the registry of the crate's file mappings and the
//! process-wide handler that [`install`] puts in place (invariants 6 and 7
//! of the parent module).
//!
//! Linux only, outside Miri and loom; elsewhere [`install`] returns
//! `ENOTSUP` and the registry is empty (every mapping's cut offset stays
//! `usize::MAX`).
//!
//! **Registry.** A fixed array of `CAPACITY` (4096) slots in static memory. A
//! slot is `FREE`, `CLAIMED` (being filled by a registration), `LIVE`
//! (its range is a mapping the crate owns, not yet being unmapped) or
//! `RETIRED` (its mapping is about to be unmapped). Every state change and
//! every field access of the registry is `SeqCst`. The handler counts
//! itself in `IN_HANDLER` around its scan, and a retiring mapping waits for
//! that counter to reach 0 after marking its slot `RETIRED` and before it is
//! unmapped. Of the handler's increment and the retirement's load of the
//! counter, one comes first in the single `SeqCst` order: if the increment,
//! the retirement waits for the handler; if the load, the handler's later
//! load of the slot's state sees `RETIRED` (or a later state), so it does not
//! touch the range. Either way no handler replaces pages of a range after
//! it was unmapped, and a slot is only reused (made `FREE`) after the unmap.
//!
//! **Handler.** For a `SIGBUS` the kernel raised for an address with no
//! backing (`si_code == BUS_ADRERR`) inside a `LIVE` slot registered by this
//! process, it stores the faulting page's offset into the slot's cut offset
//! (`fetch_min`), then maps private anonymous zero pages, with the
//! mapping's protection, `MAP_FIXED` over `[faulting page, end of the
//! mapping)`, and returns: the faulting instruction runs again, on zeros.
//! Anything else is forwarded to the disposition found at install time.

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
pub(crate) use imp::{install, is_installed, Registration};

#[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
pub(crate) use stub::{install, is_installed, Registration};

/// The cut offset of a mapping that never lost pages.
const NOT_CUT: usize = usize::MAX;

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
mod imp {
    use std::ffi::{c_int, c_void};
    use std::ptr;
    use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock};

    use rustix::io::Errno;
    use rustix::mm::{MapFlags, ProtFlags};

    use super::NOT_CUT;

    /// How many mappings the registry holds at once.
    const CAPACITY: usize = 4096;

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
        /// The process that registered it (a child made by `fork` inherits
        /// the registry but not, with `MADV_DONTFORK`, the mapping).
        pid: AtomicI32,
        /// The offset from which the handler replaced the pages, or
        /// `NOT_CUT`. Outlives the slot's registration (static memory).
        cut: AtomicUsize,
    }

    impl Slot {
        const fn new() -> Self {
            Self {
                state: AtomicUsize::new(FREE),
                start: AtomicPtr::new(ptr::null_mut()),
                len: AtomicUsize::new(0),
                writable: AtomicBool::new(false),
                pid: AtomicI32::new(0),
                cut: AtomicUsize::new(NOT_CUT),
            }
        }
    }

    static SLOTS: [Slot; CAPACITY] = [const { Slot::new() }; CAPACITY];
    /// Slots at or past this index have never been claimed.
    static HIGH: AtomicUsize = AtomicUsize::new(0);
    /// Handlers between their scan's start and their last use of a slot.
    static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);
    /// The cut offset of unregistered mappings: never lowered.
    static NEVER_CUT: AtomicUsize = AtomicUsize::new(NOT_CUT);
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    /// Serialises `install` (never taken by the handler).
    static INSTALL: Mutex<()> = Mutex::new(());
    /// The disposition found when the handler was installed; set once,
    /// before the handler is installed.
    static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
    /// The page size, stored before the handler is installed.
    static PAGE: AtomicUsize = AtomicUsize::new(0);

    /// A mapping's entry in the registry, or none.
    #[derive(Debug)]
    pub(crate) struct Registration {
        slot: Option<&'static Slot>,
        cut: &'static AtomicUsize,
    }

    impl std::fmt::Debug for Slot {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Slot").finish_non_exhaustive()
        }
    }

    impl Registration {
        /// No entry: the cut offset stays `usize::MAX`.
        pub(crate) fn none() -> Self {
            Self {
                slot: None,
                cut: &NEVER_CUT,
            }
        }

        /// Registers the mapping `[base, base + len)`, which the caller
        /// owns (invariant 1) and has just mapped. With the registry full,
        /// no entry is made, unless the handler is installed: then
        /// `ENOMEM`, so that no mapping made after `install` goes
        /// unguarded.
        pub(crate) fn register(base: *mut u8, len: usize, writable: bool) -> Result<Self, Errno> {
            let pid = rustix::process::getpid().as_raw_nonzero().get();
            for (i, slot) in SLOTS.iter().enumerate() {
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
                slot.pid.store(pid, Ordering::SeqCst);
                slot.cut.store(NOT_CUT, Ordering::SeqCst);
                HIGH.fetch_max(i + 1, Ordering::SeqCst);
                slot.state.store(LIVE, Ordering::SeqCst);
                return Ok(Self {
                    slot: Some(slot),
                    cut: &slot.cut,
                });
            }
            if is_installed() {
                Err(Errno::NOMEM)
            } else {
                Ok(Self::none())
            }
        }

        /// The offset from which the handler replaced this mapping's pages
        /// with zeros (a multiple of the page size), or `usize::MAX`.
        ///
        /// Preceded by an acquire fence: the accesses the caller made
        /// before are ordered before this load (on x86 only the compiler
        /// is restrained). A handler that ran on this thread during those
        /// accesses stored the offset before they resumed; one that ran on
        /// another thread stored it before replacing the pages (invariant
        /// 6), so an access that read a replaced page is followed by a load
        /// that sees the cut.
        #[inline]
        pub(crate) fn cut(&self) -> usize {
            fence(Ordering::Acquire);
            self.cut.load(Ordering::Acquire)
        }

        /// Takes the entry out of the handler's reach: after this returns,
        /// no handler replaces pages of the range any more (invariant 6).
        /// Called before the mapping is unmapped.
        pub(crate) fn retire(&self) {
            if let Some(slot) = self.slot {
                slot.state.store(RETIRED, Ordering::SeqCst);
                while IN_HANDLER.load(Ordering::SeqCst) != 0 {
                    std::thread::yield_now();
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

    /// Whether the handler is installed.
    pub(crate) fn is_installed() -> bool {
        INSTALLED.load(Ordering::SeqCst)
    }

    /// Installs the handler once for the process.
    ///
    /// # Errors
    ///
    /// Whatever `sigaction` reports; nothing is installed then.
    pub(crate) fn install() -> Result<(), Errno> {
        let _serial = INSTALL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if is_installed() {
            return Ok(());
        }
        PAGE.store(super::super::page_size(), Ordering::SeqCst);
        if PREVIOUS.get().is_none() {
            let previous = query()?;
            // Set before the handler exists, so it reads the disposition
            // without waiting (`OnceLock::get` is one atomic load).
            let _ = PREVIOUS.set(previous);
        }
        // SAFETY: an all-zero `sigaction` is a valid value of the C
        // struct (no handler, empty mask, no flags); the fields that
        // matter are set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        // SAFETY: `action` is initialised, the old-action pointer may be
        // null, and the handler it names is async-signal-safe (invariant
        // 7). SIGBUS is blocked while it runs (no `SA_NODEFER`; the zeroed
        // mask adds nothing else).
        let rc = unsafe { libc::sigaction(libc::SIGBUS, &action, ptr::null_mut()) };
        if rc != 0 {
            return Err(
                Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL)
            );
        }
        INSTALLED.store(true, Ordering::SeqCst);
        Ok(())
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
            Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL))
        }
    }

    /// The handler (invariant 7: no allocation, no lock, no panic).
    extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
        // SAFETY: installed with `SA_SIGINFO`, so the kernel passes a valid
        // `siginfo_t`.
        let info_ref = unsafe { &*info };
        if info_ref.si_code == libc::BUS_ADRERR {
            // SAFETY: for the kernel's `BUS_*` codes the fault member of
            // the union is the one filled in.
            let addr = unsafe { info_ref.si_addr() }.cast::<u8>();
            IN_HANDLER.fetch_add(1, Ordering::SeqCst);
            let contained = contain(addr);
            IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
            if contained {
                return;
            }
        }
        forward(sig, info, ctx);
    }

    /// Replaces the pages of the registered mapping holding `addr`, from
    /// its page to the mapping's end; `false` if no `LIVE` slot of this
    /// process holds it or the replacement failed.
    fn contain(addr: *mut u8) -> bool {
        let addr = addr as usize;
        let high = HIGH.load(Ordering::SeqCst).min(CAPACITY);
        for slot in SLOTS.iter().take(high) {
            if slot.state.load(Ordering::SeqCst) != LIVE {
                continue;
            }
            let start = slot.start.load(Ordering::SeqCst);
            let len = slot.len.load(Ordering::SeqCst);
            let offset = addr.wrapping_sub(start as usize);
            if addr < start as usize || offset >= len {
                continue;
            }
            let pid = rustix::process::getpid().as_raw_nonzero().get();
            if slot.pid.load(Ordering::SeqCst) != pid {
                return false;
            }
            let page = PAGE.load(Ordering::SeqCst);
            let cut = offset & !page.wrapping_sub(1);
            let prot = if slot.writable.load(Ordering::SeqCst) {
                ProtFlags::READ | ProtFlags::WRITE
            } else {
                ProtFlags::READ
            };
            // Stored before the pages are replaced (see `Registration::cut`).
            slot.cut.fetch_min(cut, Ordering::SeqCst);
            // SAFETY: invariant 6. The slot is `LIVE` and this handler is
            // counted in `IN_HANDLER`, so the mapping `[start, start + len)`
            // is still mapped and owned by the crate, and stays so until
            // this handler returns; `cut < len` and both are multiples of
            // the page size, so `[start + cut, start + len)` is a
            // page-aligned part of it. `MAP_FIXED` replaces exactly that
            // part with private anonymous zero pages of the same
            // protection: nothing outside the mapping is touched, and the
            // range stays mapped (invariant 2's exception). The call is one
            // raw system call (rustix's `linux_raw` backend): no
            // allocation, no lock, no `errno`.
            let res = unsafe {
                rustix::mm::mmap_anonymous(
                    start.wrapping_add(cut).cast::<c_void>(),
                    len.wrapping_sub(cut),
                    prot,
                    MapFlags::PRIVATE | MapFlags::FIXED,
                )
            };
            return res.is_ok();
        }
        false
    }

    /// Hands a `SIGBUS` that is not ours to the disposition found at
    /// install time: its handler (`SA_SIGINFO` or plain), or for the
    /// default (and, for a fault, for "ignore", which the kernel does not
    /// honour for faults) the default action.
    fn forward(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
        let Some(previous) = PREVIOUS.get() else {
            die(sig);
            return;
        };
        let handler = previous.sa_sigaction;
        if handler == libc::SIG_IGN {
            // SAFETY: `info` is valid (as in `on_sigbus`).
            let code = unsafe { (*info).si_code };
            // A signal sent by a process (`si_code <= 0`) is ignored as
            // asked; a fault cannot be.
            if code <= 0 {
                return;
            }
            die(sig);
        } else if handler == libc::SIG_DFL {
            die(sig);
        } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous disposition was installed with
            // `SA_SIGINFO`, so `sa_sigaction` is such a handler's address,
            // called as the kernel would call it.
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                unsafe { std::mem::transmute(handler) };
            f(sig, info, ctx);
        } else {
            // SAFETY: without `SA_SIGINFO`, `sa_handler` (the same field)
            // is a one-argument handler's address.
            let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
            f(sig);
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
        INSTALLED.store(false, Ordering::SeqCst);
        // SAFETY: `raise` is async-signal-safe.
        unsafe {
            libc::raise(sig);
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

        pub(crate) fn retire(&self) {}

        pub(crate) fn release(&self) {}
    }

    pub(crate) fn is_installed() -> bool {
        false
    }

    pub(crate) fn install() -> Result<(), Errno> {
        Err(Errno::NOTSUP)
    }
}
