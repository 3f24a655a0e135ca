//! The Unix part of the audited module: how a [`Mapping`](super::Mapping)
//! is made, advised and released with `mmap`, `madvise`, `msync`, `mlock`
//! and `munmap` (`mapping.rs`). The other Unix-only parts (descriptor
//! passing, `read(2)`/`write(2)` into a mapping, the futex, pidfds, frozen
//! memfds and the `SIGBUS` guard) are the sibling modules named in the
//! parent's documentation. The invariants are the parent module's.

mod mapping;

#[cfg(not(miri))]
pub(crate) use mapping::anonymous;

/// The system page size in bytes (a power of two).
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// The soft `RLIMIT_AS` in bytes, if finite and within `usize` (never on
/// OpenBSD, which has no such limit in rustix).
pub(crate) fn address_space_limit() -> Option<usize> {
    #[cfg(not(target_os = "openbsd"))]
    {
        use rustix::process::{getrlimit, Resource};
        // A limit past `usize` cannot constrain this process's addresses.
        usize::try_from(getrlimit(Resource::As).current?).ok()
    }
    #[cfg(target_os = "openbsd")]
    {
        None
    }
}

/// This process's address-space use (`VmSize`, from `/proc/self/statm`)
/// in bytes; `None` off Linux and Android or without `/proc`.
pub(crate) fn address_space_used() -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: usize = statm.split_whitespace().next()?.parse().ok()?;
        pages.checked_mul(page_size())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        None
    }
}
