//! The synchronisation primitives the remapping protocol uses, and the
//! atomic types `Region::atomic_u32`/`atomic_u64` hand out: `std`'s
//! normally, loom's when built with `RUSTFLAGS="--cfg loom"` so that the
//! protocol, and downstream protocols over in-memory regions, can be
//! model-checked.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

/// Locks `m`, ignoring poisoning: the protected data is replaced whole
/// under the lock, so a panic elsewhere cannot leave it half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
