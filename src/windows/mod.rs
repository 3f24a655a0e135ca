//! The Windows construction path: [`MmapRegion`] on Windows, over files
//! by path, named pagefile-backed sections (`Local\` namespace) and
//! in-process memory (`region.rs`: the handle and its growth; `open.rs`:
//! the constructors; `fs.rs`, mounted as the crate's `fs`: the checks of
//! files). The unsafe calls are in `sys/windows/`; this module is safe
//! code. What Windows gets and does not is listed on [`MmapRegion`].

mod open;
mod region;

pub use region::MmapRegion;
