//! The reserve-and-map steps that construction (`open.rs`) and growth
//! (`MmapRegion::resize`, `check_and_remap`) share: size checks, mapping
//! with the options' reservation, block reservation before a growth, and
//! the options' `populate`, `lock`, `dont_dump` and `dont_fork`.

use std::os::fd::{AsFd, OwnedFd};

use crate::error::{Error, ErrorKind, Limit, Result};
use crate::fs::{self, Reserved};
use crate::options::MmapOptions;
use crate::sync::{Arc, AtomicUsize};
use crate::sys::{Hint, Mapping};

/// The descriptor of a region's file, shared by its handle and its
/// mappings (`Mapping::file`, for the `fstat` of a failed descriptor
/// copy). Always std's `Arc`: it is not part of what loom models.
pub(crate) type FileArc = std::sync::Arc<OwnedFd>;

/// What backs a region.
pub(crate) enum Source {
    /// A file, open at this descriptor; its size is the published length.
    /// Every mapping of it keeps the descriptor too.
    File(FileArc),
    /// Process memory ([`MmapRegion::in_memory`](crate::MmapRegion::in_memory)): one allocation shared by
    /// every handle, and the length the handles published, which stands in
    /// for the file's size. It only ever grows.
    Memory(Arc<AtomicUsize>),
}

/// Refuses sizes that cannot be mapped or stored as a file length
/// (`InvalidSize`) and sizes past the options' `max_size` (`FileTooLarge`).
pub(crate) fn checked_size(options: &MmapOptions, size: usize, op: &'static str) -> Result<u64> {
    if size == 0 || isize::try_from(size).is_err() {
        return Err(Error::invalid_size(op, size));
    }
    if let Some(max) = options.max_size.filter(|&max| size > max) {
        return Err(Error::too_large(op, size, Limit::MaxSize(max)));
    }
    fs::file_len(size, op)
}

/// For an in-memory region, `map` itself if it holds `len` bytes;
/// growth past the capacity fixed at creation is unsupported.
pub(crate) fn within_capacity(
    map: &Arc<Mapping>,
    len: usize,
    op: &'static str,
) -> Result<Arc<Mapping>> {
    if map.covers(len) {
        Ok(Arc::clone(map))
    } else {
        Err(Error::new(ErrorKind::Unsupported, op)
            .because("an in-memory region cannot grow past the capacity fixed at its creation"))
    }
}

/// A file size as a mappable length, within the options' limit.
pub(crate) fn mappable(options: &MmapOptions, size: u64, op: &'static str) -> Result<usize> {
    usize::try_from(size)
        .ok()
        .filter(|&n| isize::try_from(n).is_ok())
        .filter(|&n| options.max_size.is_none_or(|max| n <= max))
        .ok_or_else(|| Error::too_large_to_map(op, size, options.max_size))
}

/// Applies the options' `populate` and `lock` to `[from, to)` of `map`.
pub(crate) fn prepare(
    options: &MmapOptions,
    map: &Mapping,
    from: usize,
    to: usize,
    op: &'static str,
) -> Result<()> {
    let len = to - from;
    if options.populate {
        match map.advise(from, len, Hint::Populate) {
            Ok(()) => {}
            // Kernels before 5.14 do not know MADV_POPULATE_*.
            Err(rustix::io::Errno::INVAL) => {
                map.advise(from, len, Hint::WillNeed)
                    .map_err(|e| Error::os(op, e))?;
            }
            Err(e) => return Err(Error::os(op, e)),
        }
    }
    if options.lock {
        map.lock(from, len).map_err(|e| match e {
            rustix::io::Errno::NOMEM | rustix::io::Errno::AGAIN | rustix::io::Errno::PERM => {
                Error::lock_limit(op, len, e)
            }
            e => Error::os(op, e),
        })?;
    }
    Ok(())
}

/// Checks `to` against `RLIMIT_FSIZE`, makes sure a mapping covers `len`
/// bytes (the current one when its reservation has room), reserves
/// blocks for `[from, to)` (`from` being the file's size as last seen),
/// then raises the file size to `to`. Whatever can fail for want of
/// room (the limit, address space, blocks) fails before anything is
/// reserved or the size changes, and the size changes last; nothing is
/// published on failure. Only writable handles grow, so the mapping is
/// writable.
pub(crate) fn grow_and_map(
    options: &MmapOptions,
    file: &FileArc,
    current: Option<&Arc<Mapping>>,
    from: u64,
    len: usize,
    to: u64,
    op: &'static str,
) -> Result<Arc<Mapping>> {
    fs::check_file_size_limit(to, op)?;
    let map = map_len(options, file, current, len, true, op)?;
    let fd = file.as_fd();
    let how = if options.reserve_blocks {
        fs::reserve(fd, from, to, op)?
    } else {
        Reserved::Sparse
    };
    fs::extend(fd, from, to, how, op)?;
    Ok(map)
}

/// A mapping covering `len` bytes: `current` if its reservation covers
/// them (growth in place, no system call), otherwise a new one, marked
/// as the options' `dont_dump` and `dont_fork` ask.
pub(crate) fn map_len(
    options: &MmapOptions,
    file: &FileArc,
    current: Option<&Arc<Mapping>>,
    len: usize,
    writable: bool,
    op: &'static str,
) -> Result<Arc<Mapping>> {
    if let Some(cur) = current.filter(|m| m.covers(len)) {
        return Ok(Arc::clone(cur));
    }
    let fd = file.as_fd();
    let mut map = Mapping::new(fd, len, options.reservation_for(len), writable).map_err(|e| {
        // Not enough address space (or mapping slots) for the file.
        match e {
            rustix::io::Errno::NOMEM => {
                Error::too_large(op, len, Limit::AddressSpace).with_errno_of(e)
            }
            // The `SIGBUS` registry cannot grow (`mmap` never says ENOSPC).
            rustix::io::Errno::NOSPC => {
                Error::sigbus_registry(op, len, crate::sys::sigbus::slots())
            }
            // A descriptor open read-only cannot be mapped writable.
            rustix::io::Errno::ACCESS if writable && fs::is_open_read_only(fd) => {
                Error::read_only_descriptor(op, e)
            }
            e => Error::os(op, e),
        }
    })?;
    // A cut of any mapping this handle made is the handle's (sticky across
    // generations).
    if let Some(cur) = current {
        map.join(cur);
    }
    exclude(options, &map, op)?;
    Ok(Arc::new(map.with_file(FileArc::clone(file))))
}

/// Applies the options' `dont_dump` and `dont_fork` to the whole of a
/// mapping just made, before anything is published or faulted in.
pub(crate) fn exclude(options: &MmapOptions, map: &Mapping, op: &'static str) -> Result<()> {
    map.exclude(options.dont_dump, options.dont_fork)
        .map_err(|e| Error::os(op, e))
}
