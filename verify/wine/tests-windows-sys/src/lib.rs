//! Compiles `src/sys/windows/` of shm-region on its own, so that its
//! functions and tests build and run for Windows before the crate does.
#![cfg(windows)]

#[path = "../../../../src/sys/windows/mod.rs"]
pub mod windows;
