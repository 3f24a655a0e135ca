//! The Windows construction path: [`MmapRegion`] on Windows, over
//! in-process memory and named, pagefile-backed sections (`Local\`
//! namespace). The unsafe calls are in `sys/windows/`; this module is
//! safe code.
//!
//! What Windows gets, and what it does not yet:
//!
//! - [`MmapRegion::in_memory`], [`MmapRegion::peer`],
//!   [`MmapRegion::create_shm`], [`MmapRegion::attach_shm`],
//!   [`MmapRegion::attach_shm_read_only`], [`MmapRegion::resize`],
//!   [`MmapRegion::check_and_remap`], [`MmapRegion::ensure_len`] and the
//!   whole of [`Region`](crate::Region) (copies, atomics, `wait_u32`,
//!   `EventCount`) behave as on Unix, with the differences their
//!   documentation names.
//! - Files by path (`create`, `attach`, `attach_read_only`) are not built
//!   on Windows yet; descriptor passing, seals, `Frozen`, `Doorbell`, the
//!   `SIGBUS` guard and `stage` do not exist there.

mod region;

pub use region::MmapRegion;
