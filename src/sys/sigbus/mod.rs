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
//!
//! **Files.** `registry` holds the chain of slot blocks and a mapping's
//! [`Registration`] in it; `handler` the handler itself, its install and
//! what it does with a signal that is not ours (forwarding, re-arming,
//! dying as without the crate); `replace` what the handler does with a
//! fault that is ours: which range to replace (`span`, `within`) and the
//! replacement pages and their fallbacks (shared anonymous zero pages, the
//! sink page, the whole mapping, a private read-only page). `stub` is the
//! same interface elsewhere.

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
mod handler;
#[cfg(all(target_os = "linux", not(miri), not(loom)))]
mod registry;
#[cfg(all(target_os = "linux", not(miri), not(loom)))]
mod replace;
#[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
mod stub;
#[cfg(all(test, target_os = "linux", not(miri), not(loom)))]
mod tests;

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
pub(crate) use handler::{install, is_installed};
#[cfg(all(target_os = "linux", not(miri), not(loom)))]
pub(crate) use registry::{slots, Registration};

#[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
pub(crate) use stub::{slots, Registration};
// `shm_region::sigbus` exists on Unix only.
#[cfg(all(unix, not(all(target_os = "linux", not(miri), not(loom)))))]
pub(crate) use stub::{install, is_installed};

/// The cut offset of a mapping that never lost pages.
const NOT_CUT: usize = usize::MAX;

/// Slots per chunk of the registry (it grows a chunk at a time).
// The stub (other systems, Miri, loom) has no registry.
#[cfg_attr(not(all(target_os = "linux", not(miri), not(loom))), allow(dead_code))]
const CHUNK: usize = 1024;
