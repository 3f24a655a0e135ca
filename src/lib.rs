//! Hardened file-backed shared memory that grows in place while in use.
//!
//! One process [creates](MmapRegion::create) a `MAP_SHARED` mapping of a
//! file; others [attach](MmapRegion::attach) by path or
//! [by descriptor](MmapRegion::attach_fd); the creator
//! [grows](MmapRegion::resize) it while they stay attached, and they notice
//! with [`check_and_remap`](MmapRegion::check_and_remap) and remap. Memory is
//! reached through [`Region`] views, tagged with the generation of the
//! mapping they show, which keep that mapping alive for as long as they live.
//!
//! The crate is written for processes that do not fully trust each other or
//! the file system: creation is exclusive and never follows symbolic links,
//! attach refuses anything but a regular, non-empty file with one name,
//! owned by the effective user and not on hugetlbfs (a memfd received by
//! descriptor, which has no name, is accepted whatever its owner and mode),
//! growth reserves blocks before the new size is visible,
//! the attaching side never changes the file's size, a truncation by a peer
//! is detected and fences every checked access through the handle that saw
//! it, and a handle only ever removes the file it created. See `SECURITY.md` for the threat model and
//! its one known limit (a peer with write access to a path-backed file can
//! still truncate it between two checks, which raises `SIGBUS`;
//! [`sigbus::install`] contains that on Linux).
//!
//! ```
//! # #[cfg(miri)] fn main() {} // Miri cannot map files.
//! # #[cfg(not(miri))]
//! # fn main() -> Result<(), shm_region::Error> {
//! use shm_region::{FileCleanup, MmapRegion};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("segment");
//!
//! let mut host = MmapRegion::create(&path, 4096, FileCleanup::Manual)?;
//! let mut guest = MmapRegion::attach(&path)?;
//! let old_view = guest.region();
//!
//! host.region().atomic_u64(0)?.store(42, std::sync::atomic::Ordering::Release);
//! host.resize(1 << 20)?;
//! assert!(guest.check_and_remap()?);
//! assert_eq!(guest.len(), 1 << 20);
//! assert!(!old_view.is_current());                 // stale, but still valid memory
//! assert_eq!(old_view.atomic_u64(0)?.load(std::sync::atomic::Ordering::Acquire), 42);
//! #[cfg(unix)] // grown in place (on Windows a file grows into a new mapping)
//! assert_eq!(guest.region().as_ptr(), old_view.as_ptr());
//! # Ok(()) }
//! ```
//!
//! No `&[u8]` is ever handed out over memory a peer may write: bytes move
//! through checked copies. The one exception is frozen memory (Linux):
//! `MmapRegion::freeze` seals a memfd region so that the kernel refuses
//! every write to it, by anyone, and returns a `Frozen`, which derefs to
//! `[u8]`. `MmapRegion::share_read_only` gives peers a descriptor no one can
//! write through while the owner keeps writing (read with copies).
//!
//! A [`Doorbell`] (Linux: an eventfd) wakes a peer asleep in an event loop
//! (`poll`, mio, tokio's `AsyncFd`, calloop) rather than in
//! [`Region::wait_u32`]; [`Doorbell::from_fd`] checks that a descriptor a
//! peer sent really is one. [`fdpass::peer_process`] names the process at
//! the other end of a Unix socket by a pidfd, race-free against pid reuse,
//! which polls readable when that process exits.
//!
//! With the feature `zerocopy`, `Region::read_val` and `Region::write_val`
//! copy `zerocopy` types (`FromBytes`, `IntoBytes`) in and out at any
//! offset, through the same checked copies as [`Region::read_at`] and
//! [`Region::write_at`].
//!
//! With the feature `arbitrary`, `hostile::region` makes a region that
//! behaves like memory a hostile peer rewrites between any two reads,
//! driven by a fuzzer's input, to fuzz protocols built on the crate.
//!
//! All `unsafe` code is in one module, `sys`, whose invariants are stated at
//! its top; the remapping protocol is in `protocol`, generic over the mapping
//! so that it can be model-checked. Built with `RUSTFLAGS="--cfg loom"`,
//! [in-memory regions](MmapRegion::in_memory) are modelled by loom, so that
//! protocols built on a [`Region`] can be model-checked too.
//!
//! **Platforms.** Linux gets everything; macOS and the BSDs the portable
//! Unix path. On Windows the same `MmapRegion`, `MmapOptions`, `Region`,
//! `EventCount`, `Error` and `ErrorKind` work over files by path, named
//! pagefile-backed sections (`create_shm`/`attach_shm`, in `Local\`) and
//! in-memory regions; what Windows cannot have (descriptor passing, seals
//! and `Frozen`, `Doorbell`, `sigbus`, `stage`) is absent there, options it
//! cannot honour are refused with `ErrorKind::Unsupported`, and the
//! documentation of `MmapRegion` on Windows says what differs (a named
//! region's length is whole pages; a file grows into a new mapping; waits
//! between processes poll). `SECURITY.md` ("Windows") says what is tested
//! under Wine, what only compiles and what is argued on paper.
//!
//! The [`guide`] has the long-form documentation, one module per topic
//! (growth, frozen regions, `SIGBUS`, pool servers, notification, Python
//! and C peers, verifying your protocol, resources, errors), each with
//! runnable examples.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Everything below needs Unix or Windows (files, mappings, handles or
// descriptors): on other targets this one message is the only error.
#[cfg(not(any(unix, windows)))]
compile_error!(
    "shm-region supports Unix (Linux, Android, macOS, FreeBSD and other Unix systems) and Windows only"
);

/// The items inside, each compiled on Unix and Windows only (so that the
/// `compile_error!` above is the only error elsewhere).
macro_rules! portable {
    ($($item:item)*) => { $( #[cfg(any(unix, windows))] $item )* };
}

// Portable modules: the same code on every platform, calling the platform
// part of `sys` (and, for construction, `region`/`open` on Unix or
// `windows` on Windows) by the same names.
portable! {
    mod error;
    mod event;
    // Not under loom: the hostile backing is real memory, which loom cannot see.
    #[cfg(all(feature = "arbitrary", not(loom)))]
    #[cfg_attr(docsrs, doc(cfg(feature = "arbitrary")))]
    pub mod hostile;
    mod map;
    mod options;
    #[cfg(loom)]
    #[doc(hidden)]
    pub mod protocol;
    #[cfg(not(loom))]
    mod protocol;
    mod shared;
    mod spin;
    mod sync;
    mod sys;
    #[cfg(feature = "zerocopy")]
    mod typed;
    mod view;
    mod wait;

    pub use error::{Error, ErrorKind, Result};
    pub use event::EventCount;
    pub use options::{Advice, FileCleanup, MmapOptions};
    pub use shared::{SharedU32, SharedU64};
    pub use sys::unmap_failures;
    pub use view::Region;
}

// Unix: files through directory descriptors, POSIX names, descriptor
// passing, seals, the SIGBUS guard.
#[cfg(unix)]
mod doorbell;
#[cfg(unix)]
pub mod fdpass;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod frozen;
#[cfg(unix)]
mod fs;
#[cfg(windows)]
#[path = "windows/fs.rs"]
mod fs;
// The long-form documentation (docs.rs), Unix examples.
#[cfg(unix)]
pub mod guide;
#[cfg(unix)]
mod open;
#[cfg(unix)]
mod peer;
#[cfg(unix)]
mod poll;
#[cfg(unix)]
mod region;
#[cfg(unix)]
mod shm;
#[cfg(unix)]
pub mod sigbus;
#[cfg(unix)]
mod staged;

// Windows: files and named sections through handles (`windows/`).
#[cfg(windows)]
mod windows;

#[cfg(unix)]
pub use doorbell::Doorbell;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use frozen::{FreezeError, Frozen};
#[cfg(unix)]
pub use region::MmapRegion;
#[cfg(unix)]
pub use staged::{PublishError, Staged};
#[cfg(windows)]
pub use windows::MmapRegion;

/// The README's examples, compiled and run as doctests.
#[cfg(all(unix, doctest))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
