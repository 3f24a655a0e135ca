//! Containment of `SIGBUS` from files truncated under their mappings.
//!
//! A peer that can write a path-backed file can truncate it at any moment.
//! The pages of every mapping of the file past its new end are then gone,
//! and the next access to one of them raises `SIGBUS`, which by default
//! kills the process, whatever checks came before the access. Sealed memfds
//! ([`MmapRegion::create_sealed`](crate::MmapRegion::create_sealed)) rule
//! the truncation out; for files at a path, a host that maps files peers
//! can write should call [`install`] once, early in `main`:
//!
//! ```
//! # #[cfg(miri)] fn main() {} // Miri cannot map files.
//! # #[cfg(not(miri))]
//! # fn main() -> Result<(), shm_region::Error> {
//! use shm_region::{sigbus, ErrorKind, FileCleanup, MmapRegion};
//! # #[cfg(target_os = "linux")]
//! sigbus::install()?;
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("segment");
//! let region = MmapRegion::create(&path, 1 << 20, FileCleanup::Manual)?;
//! let view = region.region();
//! view.write_at(512 * 1024, b"record")?;
//!
//! // A peer truncates the file under the mapping.
//! std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(4096).unwrap();
//!
//! let mut buf = [0u8; 6];
//! # #[cfg(target_os = "linux")]
//! assert_eq!(view.read_at(512 * 1024, &mut buf).unwrap_err().kind(), ErrorKind::Truncated);
//! view.read_at(0, &mut buf)?;                        // still in the file
//! # Ok(()) }
//! ```
//!
//! # What the handler does
//!
//! After [`install`], every mapping the crate makes of a file (path-backed,
//! memfd, staged; not [in-memory](crate::MmapRegion::in_memory) regions,
//! which have no file to lose) is registered, also the ones made before
//! `install`. When the kernel raises `SIGBUS` for an address with no
//! backing (`BUS_ADRERR`) inside a registered mapping, the handler marks the
//! mapping, and the handle that made it, *cut* at the faulting page's
//! offset (the lowest such offset wins), replaces pages with shared
//! anonymous zero pages (memory without a file name or descriptor, so no
//! peer reaches it through the region's file, shared only with children
//! made by `fork` and with processes privileged to reach any memory of
//! this one, such as through `/proc/<pid>/map_files/`; the kernel does not
//! count it as data, so `RLIMIT_DATA` never refuses it; the mapping's protection, `MAP_NORESERVE`, and the
//! mapping's [`dont_dump`](crate::MmapOptions::dont_dump) and
//! [`dont_fork`](crate::MmapOptions::dont_fork) advice; not its
//! [`lock`](crate::MmapOptions::lock)), and returns: the faulting
//! instruction runs again, on zeros, and the process lives on. The first
//! fault replaces everything from its page to the mapping's end (one
//! kernel mapping, which costs nothing until touched); a fault below that
//! replaces everything up to the replaced area, and after 16 such pieces
//! the whole area is made one mapping again, so a mapping's replacements
//! are at most 17 kernel mappings however the faults are spread (a few
//! more while several threads fault below the cut at once, or when the
//! kernel refused a wide replacement and the faulting page alone was
//! replaced). A copy
//! that goes on to the next missing page below faults there and is
//! contained the same way. The handler runs with every blockable signal
//! blocked; a fault in a signal handler of the program (one that
//! interrupted anything but the crate's handler) is contained like any
//! other. What such a handler may call is another matter: the crate's
//! errors are allocated (`Error` is boxed), so a checked accessor that
//! fails calls `malloc`, which is not async-signal-safe (a handler that
//! interrupted `malloc` on the same thread then deadlocks). In a signal
//! handler, use only accesses that allocate nothing: a load or store
//! through a word from [`Region::shared_u32`](crate::Region::shared_u32)
//! or [`shared_u64`](crate::Region::shared_u64) taken beforehand (an
//! `AtomicU32`/`AtomicU64`), or a read through
//! [`Region::as_ptr`](crate::Region::as_ptr).
//!
//! Truncation is seen a page at a time. A file cut to an end inside a page
//! keeps that page, without a fault: the bytes past the new end stay
//! shared by every process that maps the file (zeros, or what one of them
//! wrote there since), are no part of the file on disk (tmpfs keeps them
//! if the file grows back), and the checked accessors return `Ok` for them
//! until [`check_and_remap`](crate::MmapRegion::check_and_remap) notices
//! the truncation.
//!
//! The checked accessors of [`Region`](crate::Region) never report bytes
//! of a replaced page as data: [`read_at`](crate::Region::read_at),
//! [`write_at`](crate::Region::write_at),
//! [`load_u32`](crate::Region::load_u32),
//! [`load_u64`](crate::Region::load_u64),
//! [`wait_u32`](crate::Region::wait_u32),
//! [`wake_u32`](crate::Region::wake_u32), `read_val` and `write_val`,
//! and the constructors of atomic references
//! ([`atomic_u32`](crate::Region::atomic_u32), `atomic_u64`, `shared_u32`,
//! `shared_u64`), return [`ErrorKind::Truncated`]
//! when the range they touch reaches the cut, whether the access itself
//! faulted or the mapping was cut before it (by this or another thread).
//! A copy that faulted midway finishes on zeros and is reported as
//! `Truncated`: its destination buffer then holds unspecified bytes. A
//! `write_at` that returns `Truncated` may have written (part of) its
//! bytes, into replacement pages, which no peer sees, or, where the file
//! had pages again (a peer grew it back) and another thread's fault moved
//! the cut below them during the copy, into the file. The cut is sticky and
//! belongs to the handle: a contained fault in any mapping the handle ever
//! made (an older generation's too, reached through a view or
//! [`SharedU32`](crate::SharedU32) kept from before a growth that made a
//! new mapping) cuts every view of the handle at that offset, and the
//! handle treats it as a detected truncation (as
//! [`check_and_remap`](crate::MmapRegion::check_and_remap) would), so its
//! `check_and_remap` and `resize` return `Truncated` from then on, even
//! after the file grows back, and accesses below the cut keep working.
//! Attach anew to use the file again.
//!
//! **Raw pointers and atomic references obtained earlier are not checked.**
//! After a cut, [`as_ptr`](crate::Region::as_ptr) accesses, and
//! `&AtomicU32`/`&AtomicU64` and [`SharedU32`](crate::SharedU32)/
//! [`SharedU64`](crate::SharedU64) taken earlier, reach replacement pages
//! anywhere in the replaced area, from the lowest page that faulted to the
//! mapping's end, pages that never faulted and pages the file has again
//! included: reads give zeros or what was written there, writes go to
//! memory that no peer sees (children made by `fork` that inherited the
//! mapping share it, as they shared the file's pages) and that a later
//! fault may reset to zeros. Each page touched there takes a page of
//! memory (shared memory is not backed by the kernel's zero page). Below
//! that area they reach the file where it has pages, and fault where it has
//! none (contained the same way). A [`wait_u32`](crate::Region::wait_u32) whose word is cut
//! between its check and the futex call sleeps on a replacement page that
//! nothing can wake ([`wake_u32`](crate::Region::wake_u32) refuses a cut
//! word): it ends at its timeout, with `Truncated`; give guarded waits a
//! timeout.
//!
//! # Faults that are not ours
//!
//! A `SIGBUS` outside the registered mappings (the program's own `mmap`, a
//! library's), with another `si_code`, or sent by a process (`kill`,
//! `tgkill`, `sigqueue`) is handed to the disposition that was in place
//! when `install` first ran: its handler is called as the kernel would call
//! it (with `SA_SIGINFO` or without, as it was installed), or, if it was the
//! default, the default action is restored and the signal raised again, so
//! the process dies as it would have. If it was "ignore", a signal sent by
//! a process is ignored, and a fault ends the process (the kernel does not
//! let a fault be ignored).
//!
//! Rust's standard library installs a `SIGBUS` handler of its own at
//! startup (for stack overflows); it is such a previous handler. For a
//! fault it does not recognise it resets `SIGBUS` to the default action and
//! returns, and the fault, raised again, ends the process. For a `SIGBUS`
//! sent with `kill` it does the same and the process lives on; without the
//! crate, the next such signal would then kill it. With the crate, after a
//! previous handler has reset `SIGBUS` to the default for a signal sent by
//! a process, the handler records the default as the previous disposition
//! and puts itself back at once, and the next signal sent ends the process,
//! as it would have. In the short gap between the previous handler's reset
//! and the crate's handler putting itself back, the disposition is the
//! default: a fault on another thread then ends the process, and
//! [`is_installed`] says `false`. A previous handler that installs itself
//! again (the System V idiom) is followed the same way: the crate's handler
//! is put back after it. A previous handler that sets "ignore" or another
//! handler turns the guard off ([`is_installed`] says `false`, and
//! [`install`] refuses to replace it).
//!
//! # Limits
//!
//! - **Opt-in and process-wide.** Nothing is installed unless the program
//!   calls [`install`]: a library must not take signal state silently.
//!   Call it before starting threads that change signal dispositions.
//! - **Someone replacing the handler.** Code that installs another
//!   `SIGBUS` handler after `install` takes the signal away from this one
//!   (the crate is not told) unless it chains to the previous handler;
//!   [`is_installed`] then returns `false`, and [`install`] refuses to
//!   replace it.
//! - **Resource limits.** `RLIMIT_DATA` and `RLIMIT_AS` never refuse a
//!   replacement (it is not data, and it takes the place of pages of the
//!   same mapping). The commit limit under strict overcommit,
//!   `vm.max_map_count` (reached across many mappings; one mapping's
//!   faults use at most 17 kernel mappings plus one per single-page
//!   fallback; at the limit the whole mapping is replaced, but once a
//!   plain `mmap` took the count one past it the kernel refuses every
//!   replacement and the fault is not contained) and the memory cgroup
//!   still can.
//! - **The kernel refusing a replacement.** Under strict overcommit
//!   (`vm.overcommit_memory=2`, where `MAP_NORESERVE` is ignored)
//!   replacement pages are charged against the commit limit, whether the
//!   fault was a read or a write. If the kernel refuses the range the
//!   handler chose, it tries the faulting page alone, then everything from
//!   the cut to the end (one mapping instead of several), then the *sink
//!   page* (one page of a sealed memfd that [`install`] creates and
//!   allocates, mapped shared and with the mapping's protection over the
//!   faulting page: writes go on into garbage shared by every such page,
//!   which checked accessors never return), then, when every replacement
//!   that splits a kernel mapping is refused (`vm.max_map_count` reached
//!   across the process's mappings), the whole mapping in one piece with
//!   its cut lowered to 0 (every checked access of at least one byte
//!   through that handle is then `Truncated`), then the faulting page
//!   read-only and private (charged neither as data nor against the
//!   commit limit): a read then goes on, on zeros, and a write to that page
//!   ends the process with `SIGSEGV`. If the kernel refuses even that, the
//!   fault is handled as one that is not ours (by default, the process dies
//!   as it would have without the guard). If the kernel replaces the pages
//!   but refuses their `dont_dump`/`dont_fork` advice, the process dies of
//!   `SIGBUS` rather than go on with pages a core dump or a child would
//!   get.
//! - **`mlockall(MCL_FUTURE)`.** In a process that asked the kernel to
//!   lock every future mapping, the kernel treats replacement pages as
//!   such a mapping, so the replaced area can cost its size in locked
//!   memory.
//! - **A signal sent while the guard is put back.** Between a previous
//!   handler resetting `SIGBUS` to the default (for a signal sent by a
//!   process) and the crate's handler putting itself back, a fault on
//!   another thread meets the default action.
//! - **Blocked signals.** A thread that blocks `SIGBUS` (`sigprocmask`) and
//!   faults is killed by the kernel; no handler runs.
//! - **Re-entrancy.** The handler runs with every blockable signal blocked.
//!   A previous handler that the crate forwards to (with `SA_NODEFER` or
//!   not) runs that way too; its own `sa_mask` and `SA_RESETHAND` are not
//!   applied. A signal handler of the program's that faults while `SIGBUS`
//!   is blocked for it is killed by the kernel (see "Blocked signals").
//! - **Capacity.** The registry has no fixed size: it grows by blocks of
//!   1,024 slots (on 64-bit targets 57,344 bytes of heap, a 48-byte header
//!   and one page for per-process flags per block), allocated when a
//!   mapping is made and kept for the life of
//!   the process. If memory for a block cannot be had, once [`install`] has
//!   succeeded making the mapping fails with [`ErrorKind::SigbusRegistry`];
//!   before, the mapping is made unregistered, and a fault in it is not
//!   contained.
//! - **Children made by `fork`.** A child that runs on without `exec` keeps
//!   containment for the mappings it inherited (each came along with the
//!   handle owning it and its registry entry), except those made with
//!   [`dont_fork`](crate::MmapOptions::dont_fork), which the child does not
//!   have: a fault at such an address in the child is not the crate's.
//!   Mappings the child makes itself are covered.
//! - **A process forging its own fault.** A thread can queue itself a
//!   `SIGBUS` that looks like a fault (`rt_tgsigqueueinfo` with
//!   `BUS_ADRERR`; the kernel refuses that between processes); at an
//!   address in a crate mapping, that cuts the mapping there, as a real
//!   fault would.
//! - **Systems.** Linux 4.14 or later (`MADV_WIPEONFORK`). Elsewhere, and
//!   under Miri and loom, [`install`] returns [`ErrorKind::Unsupported`].

use crate::error::{Error, ErrorKind, Result};

/// Installs the crate's `SIGBUS` handler for the whole process.
///
/// Idempotent and thread-safe: while the handler is in place, later calls,
/// from any thread, return `Ok(())` without changing anything. If
/// something reset `SIGBUS` to the default action since, the handler is
/// installed again, and what is not ours meets the default from then on.
/// See the [module documentation](self) for what the handler does and
/// what it cannot do.
///
/// # Errors
///
/// - [`ErrorKind::Unsupported`] on systems other than Linux, on Linux
///   kernels without `MADV_WIPEONFORK` (before 4.14), and under Miri and
///   loom.
/// - [`ErrorKind::Os`] with `EBUSY` if the handler was installed before and
///   `SIGBUS` now has another handler or is ignored: that handler may chain
///   to this one, and replacing it would silence it or loop.
/// - [`ErrorKind::Os`] if `sigaction` fails, or if making the sink page
///   (`memfd_create`, `ftruncate`, a one-byte `pwrite`, sealing) fails.
///
/// Nothing is installed when it fails.
pub fn install() -> Result<()> {
    const OP: &str = "sigbus::install";
    match crate::sys::sigbus::install() {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NOTSUP) => Err(Error::new(ErrorKind::Unsupported, OP).because(
            "SIGBUS containment needs Linux 4.14 or later (MADV_WIPEONFORK), not Miri or loom",
        )),
        Err(e @ rustix::io::Errno::BUSY) => Err(Error::os(OP, e).because(
            "SIGBUS has another handler since the guard was installed; install does not replace it",
        )),
        Err(e) => Err(Error::os(OP, e)),
    }
}

/// Whether the crate's handler is `SIGBUS`'s disposition in this process
/// right now: `true` after [`install`] succeeded, until something else
/// changes the disposition.
#[must_use]
pub fn is_installed() -> bool {
    crate::sys::sigbus::is_installed()
}
