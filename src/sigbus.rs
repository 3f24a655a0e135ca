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
//! `install`. When a `SIGBUS` reports an address with no backing
//! (`BUS_ADRERR`) inside a registered mapping of this process, the handler
//! replaces that mapping's pages, from the faulting page to the end of the
//! mapping, with private anonymous zero pages, marks the mapping *cut* at the
//! faulting page's offset, and returns: the faulting instruction runs
//! again, on zeros, and the process lives on.
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
//! `write_at` that reached the cut wrote (part of) its bytes into private
//! memory that no peer sees. The cut is sticky: the handle treats it as a
//! detected truncation (as
//! [`check_and_remap`](crate::MmapRegion::check_and_remap) would), so its
//! `check_and_remap` and `resize` return `Truncated` from then on, and
//! accesses below the cut keep working. Attach anew to use the file again.
//!
//! **Raw pointers and atomic references obtained earlier are not checked.**
//! After a cut, [`as_ptr`](crate::Region::as_ptr) accesses, and
//! `&AtomicU32`/`&AtomicU64` and [`SharedU32`](crate::SharedU32)/
//! [`SharedU64`](crate::SharedU64) taken before the cut, read zeros and
//! write into private memory that no peer sees; they do not fault.
//!
//! # Faults that are not ours
//!
//! A `SIGBUS` outside the registered mappings (the program's own `mmap`, a
//! library's, another kind of bus error, a `SIGBUS` sent with `kill`) is
//! handed to the disposition that was in place when `install` ran: its
//! handler is called as the kernel would call it (with `SA_SIGINFO` or
//! without, as it was installed), or, if it was the default, the default
//! action is restored and the signal raised again, so the process dies as
//! it would have. (Rust's standard library installs a `SIGBUS` handler of
//! its own at startup, for stack overflows on some systems; it is such a
//! previous handler, and it too ends the process for a fault it does not
//! recognise.)
//!
//! # Limits
//!
//! - **Opt-in and process-wide.** Nothing is installed unless the program
//!   calls [`install`]: a library must not take signal state silently.
//!   Call it before starting threads that change signal dispositions.
//! - **Someone replacing the handler.** Code that installs another
//!   `SIGBUS` handler after `install` takes the signal away from this one
//!   (the crate is not told). Code that installs one must chain to the
//!   previous handler for containment to keep working.
//! - **Blocked signals.** A thread that blocks `SIGBUS` (`sigprocmask`) and
//!   faults is killed by the kernel; no handler runs.
//! - **Re-entrancy.** The handler runs with `SIGBUS` blocked. A previous
//!   handler installed with `SA_NODEFER` that the crate forwards to runs
//!   with it blocked too; its own `sa_mask` and `SA_RESETHAND` are not
//!   applied.
//! - **Capacity.** The registry holds 4096 mappings at once. With the
//!   handler installed, making a further mapping fails with
//!   [`ErrorKind::FileTooLarge`] (as when
//!   `mmap` runs out of mapping slots); before `install`, such mappings are
//!   made unregistered, and a fault in them is not contained.
//! - **Children made by `fork`.** The registry is inherited but entries
//!   name the process that made them: in a child that runs on without
//!   `exec`, a fault in an inherited mapping is not contained (it would be
//!   memory the child may not own, with `MmapOptions::dont_fork`); mappings
//!   the child makes itself are.
//! - **Systems.** Linux only. Elsewhere, and under Miri and loom,
//!   [`install`] returns [`ErrorKind::Unsupported`].

use crate::error::{Error, ErrorKind, Result};

/// Installs the crate's `SIGBUS` handler for the whole process, once.
///
/// Idempotent and thread-safe: later calls, from any thread, return
/// `Ok(())` without changing anything. See the [module
/// documentation](self) for what the handler does and what it cannot do.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] on systems other than Linux, and under Miri
/// and loom; [`ErrorKind::Os`] if `sigaction` fails (nothing is installed
/// then).
pub fn install() -> Result<()> {
    const OP: &str = "sigbus::install";
    match crate::sys::sigbus::install() {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NOTSUP) => Err(Error::new(ErrorKind::Unsupported, OP)
            .because("SIGBUS containment is implemented on Linux only (not under Miri or loom)")),
        Err(e) => Err(Error::os(OP, e)),
    }
}

/// Whether [`install`] has installed the handler in this process.
#[must_use]
pub fn is_installed() -> bool {
    crate::sys::sigbus::is_installed()
}
