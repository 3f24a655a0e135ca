//! The reserve-and-map steps that construction (`open.rs`) and growth
//! (`MmapRegion::resize`, `check_and_remap`) share: size checks, mapping
//! with the options' reservation, block reservation before a growth, and
//! the options' `populate`, `lock`, `dont_dump` and `dont_fork`.

use crate::error::{Error, ErrorKind, Limit, Result};
use crate::fs;
use crate::options::MmapOptions;
use crate::sync::Arc;
use crate::sys::Mapping;

/// The descriptor of a region's file, shared by its handle and its
/// mappings (`Mapping::file`, for the `fstat` of a failed descriptor
/// copy). Always std's `Arc`: it is not part of what loom models.
pub(crate) type FileArc = std::sync::Arc<crate::sys::OwnedFile>;

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

/// A size as a mappable length, within the options' limit.
pub(crate) fn mappable(options: &MmapOptions, size: u64, op: &'static str) -> Result<usize> {
    usize::try_from(size)
        .ok()
        .filter(|&n| isize::try_from(n).is_ok())
        .filter(|&n| options.max_size.is_none_or(|max| n <= max))
        .ok_or_else(|| Error::too_large_to_map(op, size, options.max_size))
}

/// A file's size as a mappable length, as [`mappable`]; and without an
/// explicit `max_size`, a size past a quarter of the address space left
/// ([`address_space_left`]) is refused too: the size is the file's, which
/// a peer may choose, and two such files would leave this process no
/// address space. (Many files are bounded together in [`map_len`], by
/// [`unbounded_cap`]. Not for in-memory regions, whose capacity is fixed
/// at creation.)
pub(crate) fn file_mappable(options: &MmapOptions, size: u64, op: &'static str) -> Result<usize> {
    let len = mappable(options, size, op)?;
    if options.max_size.is_none() {
        within_quarter(len, size, op)?;
    }
    Ok(len)
}

/// Refuses a length (of a file of `size` bytes) past a quarter of the
/// address space left, the rule of [`file_mappable`] without `max_size`;
/// [`Frozen`](crate::Frozen) mappings, which have no `max_size`, follow it
/// too.
pub(crate) fn within_quarter(len: usize, size: u64, op: &'static str) -> Result<()> {
    match address_space_left().filter(|&left| len > left / 4) {
        Some(left) => Err(Error::too_large(op, size, Limit::AddressSpaceShare(left))),
        None => Ok(()),
    }
}

/// Where the file behind a mapping came from, which decides the share of
/// the address space that mappings made without `max_size` draw on
/// ([`unbounded_cap`]). A handle keeps its origin for every mapping it
/// makes (growth, followed growth, [`peer`](crate::MmapRegion::peer),
/// `freeze`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Created by this process (`create`, `create_sealed`, `create_shm`,
    /// `stage`): a quarter of the address space.
    Created,
    /// Attached by path or by POSIX shared-memory name: an eighth.
    Named,
    /// Received as a descriptor (`attach_fd`, `attach_fd_read_only`,
    /// [`Frozen::attach_fd`](crate::Frozen::attach_fd)): an eighth. (No
    /// descriptor is received on Windows.)
    #[cfg_attr(windows, allow(dead_code))]
    Received,
}

impl Origin {
    /// The pool of this origin's mappings made without `max_size`.
    fn pool(self) -> &'static std::sync::atomic::AtomicUsize {
        &UNBOUNDED_LENGTHS[self as usize]
    }

    /// The share is `1 / divisor` of the address space ([`room`]).
    pub(crate) fn divisor(self) -> usize {
        match self {
            Self::Created => 4,
            Self::Named | Self::Received => 8,
        }
    }
}

/// A share of an origin's pool of mappings made without `max_size`, held
/// by what it was taken for and given back on drop.
#[derive(Debug)]
pub(crate) struct UnboundedShare {
    _claim: Claim,
}

/// Takes `len` bytes (rounded up to pages) of the share of `origin`
/// ([`unbounded_cap`]) for a mapping about to be made without `max_size`,
/// or refuses with `FileTooLarge` naming the share.
pub(crate) fn take_unbounded(
    origin: Origin,
    len: usize,
    op: &'static str,
) -> Result<UnboundedShare> {
    let exact = len
        .checked_next_multiple_of(crate::sys::page_size())
        .unwrap_or(len);
    let cap = unbounded_cap(origin);
    Claim::take(origin.pool(), exact, cap)
        .map(|claim| UnboundedShare { _claim: claim })
        .ok_or_else(|| Error::too_large(op, len, Limit::UnboundedShare { cap, origin }))
}

/// Applies the options' `populate` and `lock` to `[from, to)` of `map`
/// (Unix: Windows refuses both options).
#[cfg(unix)]
pub(crate) fn prepare(
    options: &MmapOptions,
    map: &Mapping,
    from: usize,
    to: usize,
    op: &'static str,
) -> Result<()> {
    let len = to - from;
    if options.populate {
        use crate::sys::Hint;
        match map.advise(from, len, Hint::Populate) {
            Ok(()) => {}
            // Kernels before 5.14 do not know MADV_POPULATE_*.
            Err(crate::sys::Errno::INVAL) => {
                map.advise(from, len, Hint::WillNeed)
                    .map_err(|e| Error::os(op, e))?;
            }
            Err(e) => return Err(Error::os(op, e)),
        }
    }
    if options.lock {
        map.lock(from, len).map_err(|e| match e {
            crate::sys::Errno::NOMEM | crate::sys::Errno::AGAIN | crate::sys::Errno::PERM => {
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
#[cfg(unix)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn grow_and_map(
    options: &MmapOptions,
    origin: Origin,
    file: &FileArc,
    current: Option<&Arc<Mapping>>,
    from: u64,
    len: usize,
    to: u64,
    op: &'static str,
) -> Result<Arc<Mapping>> {
    fs::check_file_size_limit(to, op)?;
    let map = map_len(options, origin, file, current, len, true, op)?;
    let fd = crate::sys::borrow_file(file);
    let how = if options.reserve_blocks {
        fs::reserve(fd, from, to, op)?
    } else {
        fs::Reserved::Sparse
    };
    fs::extend(fd, from, to, how, op)?;
    Ok(map)
}

/// A mapping covering `len` bytes: `current` if its reservation covers
/// them (growth in place, no system call), otherwise a new one, marked
/// as the options' `dont_dump` and `dont_fork` ask.
pub(crate) fn map_len(
    options: &MmapOptions,
    origin: Origin,
    file: &FileArc,
    current: Option<&Arc<Mapping>>,
    len: usize,
    writable: bool,
    op: &'static str,
) -> Result<Arc<Mapping>> {
    if let Some(cur) = current.filter(|m| m.covers(len)) {
        return Ok(Arc::clone(cur));
    }
    let fd = crate::sys::borrow_file(file);
    let exact = len
        .checked_next_multiple_of(crate::sys::page_size())
        .unwrap_or(len);
    let wanted = options.reservation_for(len);
    // Without an explicit `max_size` the length is taken of its origin's
    // share of the address space, atomically, before the mapping is made:
    // however many files (of sizes a peer chose) are mapped, and however
    // many threads map them at once, each origin stays within its share and
    // leaves the others theirs, and all together leave half.
    let length = match options.max_size {
        Some(_) => None,
        None => Some(take_unbounded(origin, len, op)?),
    };
    // Explicit reservations are used as given; default ones draw on the
    // process-wide budget, and reserve only the length once it is spent.
    let claim = options.address_space.is_none().then(|| {
        Claim::take(&RESERVED_BEYOND, wanted.saturating_sub(exact), budget())
            .unwrap_or_else(|| Claim::none(&RESERVED_BEYOND))
    });
    let reserve = match &claim {
        Some(claim) => exact.saturating_add(claim.bytes),
        None => wanted,
    };
    let mut map = Mapping::new(fd, len, reserve, writable).map_err(|e| {
        // Not enough address space (or mapping slots) for the file.
        match e {
            crate::sys::Errno::NOMEM => {
                Error::too_large(op, len, Limit::AddressSpace).with_errno_of(e)
            }
            // The `SIGBUS` registry cannot grow (`mmap` never says ENOSPC).
            crate::sys::Errno::NOSPC => {
                Error::sigbus_registry(op, len, crate::sys::sigbus::slots())
            }
            // A descriptor open read-only cannot be mapped writable.
            crate::sys::Errno::ACCESS if writable && fs::is_open_read_only(fd) => {
                Error::read_only_descriptor(op, e)
            }
            e => Error::os(op, e),
        }
    })?;
    let claim = claim.map(|mut claim| {
        // The reservation may have fallen back to the exact length.
        claim.keep(map.mapped_len().saturating_sub(exact));
        claim
    });
    map.hold(Box::new((length, claim)));
    // A cut of any mapping this handle made is the handle's (sticky across
    // generations).
    if let Some(cur) = current {
        map.join(cur);
    }
    exclude(options, &map, op)?;
    Ok(Arc::new(map.with_file(FileArc::clone(file))))
}

/// Bytes of address space that the default reservations of this process's
/// live file mappings hold beyond their lengths (each counted as when its
/// mapping was made), against [`budget`]. A plain `std` atomic: file
/// mappings are never made under loom.
static RESERVED_BEYOND: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Bytes that this process's live file mappings made without an explicit
/// `max_size` map (each its length rounded up to pages when it was made),
/// one count per [`Origin`] (indexed by it), each against
/// [`unbounded_cap`] of its origin.
static UNBOUNDED_LENGTHS: [std::sync::atomic::AtomicUsize; 3] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

/// A share of one of the process-wide counts above, held by the mapping it
/// was taken for ([`Mapping::hold`]) and given back when that mapping is
/// unmapped.
#[derive(Debug)]
struct Claim {
    pool: &'static std::sync::atomic::AtomicUsize,
    bytes: usize,
}

impl Claim {
    /// `bytes` of `pool` if they fit under `cap` with what it holds,
    /// otherwise `None`; atomic, so threads taking shares at once never
    /// pass the cap together.
    fn take(
        pool: &'static std::sync::atomic::AtomicUsize,
        bytes: usize,
        cap: usize,
    ) -> Option<Self> {
        use std::sync::atomic::Ordering::Relaxed;
        pool.fetch_update(Relaxed, Relaxed, |held| {
            held.checked_add(bytes).filter(|&total| total <= cap)
        })
        .ok()
        .map(|_| Self { pool, bytes })
    }

    /// A share of nothing: the mapping reserves only its length.
    fn none(pool: &'static std::sync::atomic::AtomicUsize) -> Self {
        Self { pool, bytes: 0 }
    }

    /// Gives back all but `bytes` of this claim (never more than it holds).
    fn keep(&mut self, bytes: usize) {
        let back = self.bytes.saturating_sub(bytes);
        self.pool
            .fetch_sub(back, std::sync::atomic::Ordering::Relaxed);
        self.bytes -= back;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.pool
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The room that default reservations of this process may hold beyond the
/// lengths they map, all together: an eighth of its address space
/// ([`room`]), 16 TiB with the 47-bit address space of x86_64 and no
/// `RLIMIT_AS`. A default reservation is room to grow in place, a
/// convenience; how many files a process maps is often up to its peers
/// (each client of a server sends one), so without a bound 1,085 clients
/// with 2 GiB pools (128 GiB reserved each) would exhaust a 47-bit address
/// space, and under a finite `RLIMIT_AS` a few dozen 4 KiB pools would take
/// nearly all of what the limit leaves. With it, the reservations take at
/// most an eighth, and the other seven eighths remain for the mappings
/// themselves and the rest of the program.
pub(crate) fn budget() -> usize {
    room(&RESERVED_BEYOND) / BUDGET_SHARE
}

/// The most that the mappings of one [`Origin`] made without an explicit
/// `max_size` may map together: of this process's address space
/// ([`room`]), a quarter for the regions it created (32 TiB on x86_64
/// without `RLIMIT_AS`), an eighth for files attached by path or name and
/// an eighth for files received by descriptor (16 TiB each), half in all.
/// The size of an attached file is its maker's choice, and the quarter
/// rule ([`file_mappable`]) looks at one file at a time: a peer that sends
/// file after file, each a little under a quarter of what is left (sparse,
/// so they cost it nothing), would otherwise take all of it. One share for
/// all origins would still let it take what the process's own creations
/// need (four sparse 16 TiB memfds filled a shared half); split by origin,
/// what peers send fills only the share of what is received, and counting
/// a file's allocated blocks instead of its size would not help: the
/// address space a mapping takes is its size, whatever is allocated.
pub(crate) fn unbounded_cap(origin: Origin) -> usize {
    room(origin.pool()) / origin.divisor()
}

/// The address space a process-wide count (`pool`) is a share of. Without
/// `RLIMIT_AS`: the user address space ([`address_space_size`]). Under a
/// finite limit: what the limit leaves to the count, which is the limit
/// minus everything else the process maps (its current use, from
/// `/proc/self/statm`, less what the count holds; the limit itself where
/// the use cannot be read), at most the user address space. Read at each
/// mapping; a use that changes between the read and the mapping (other
/// threads allocating) moves the figure by as much.
fn room(pool: &std::sync::atomic::AtomicUsize) -> usize {
    let size = address_space_size();
    match rlimit_as() {
        None => size,
        Some(limit) => {
            let held = pool.load(std::sync::atomic::Ordering::Relaxed);
            let others = address_space_used().map_or(0, |used| used.saturating_sub(held));
            limit.saturating_sub(others).min(size)
        }
    }
}

/// The soft `RLIMIT_AS`, if finite and within `usize`.
fn rlimit_as() -> Option<usize> {
    crate::sys::address_space_limit()
}

/// This process's address-space use, where it can be read.
fn address_space_used() -> Option<usize> {
    crate::options::address_space_used()
}

/// The budget is `1 / BUDGET_SHARE` of the address space.
const BUDGET_SHARE: usize = 8;

/// The size of this process's user address space in bytes. On Linux, the
/// end of its highest mapping (the main thread's stack sits at the top;
/// `[vsyscall]` lies outside and is skipped) rounded up to a power of two:
/// 2^47 on x86_64 with 4-level page tables, 2^39 or 2^48 on arm64 as the
/// kernel is configured. Read once. Elsewhere, if `/proc/self/maps` cannot
/// be read, or if the rounding overflows (a 32-bit process whose highest
/// mapping ends past 2^31): 2^47 on 64-bit targets, 2^31 on 32-bit ones.
pub(crate) fn address_space_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        highest_mapping_end()
            .and_then(usize::checked_next_power_of_two)
            .unwrap_or(if cfg!(target_pointer_width = "64") {
                1 << 47
            } else {
                usize::MAX / 2 + 1
            })
    })
}

/// The end address of this process's highest mapping, from
/// `/proc/self/maps` (Linux), `[vsyscall]` excepted.
fn highest_mapping_end() -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        maps.lines()
            .filter(|line| !line.ends_with("[vsyscall]"))
            .filter_map(|line| {
                let range = line.split_whitespace().next()?;
                let (_, end) = range.split_once('-')?;
                usize::from_str_radix(end, 16).ok()
            })
            .max()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        None
    }
}

/// The address space this process has left, in bytes: the smaller of what
/// `RLIMIT_AS` leaves and the user address space
/// ([`address_space_size`]) minus the current use (`VmSize`). `None` where
/// the current use cannot be read and `RLIMIT_AS` is infinite.
pub(crate) fn address_space_left() -> Option<usize> {
    let by_size =
        crate::options::address_space_used().map(|used| address_space_size().saturating_sub(used));
    match (crate::options::address_space_left(), by_size) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Applies the options' `dont_dump` and `dont_fork` to the whole of a
/// mapping just made, before anything is published or faulted in.
pub(crate) fn exclude(options: &MmapOptions, map: &Mapping, op: &'static str) -> Result<()> {
    map.exclude(options.dont_dump, options.dont_fork)
        .map_err(|e| Error::os(op, e))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// `VmSize` of `/proc/self/status`, in bytes.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn vm_size() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    /// The sum of the lengths of this process's mappings in
    /// `/proc/self/maps`, `[vsyscall]` excepted (the kernel does not count
    /// it in `VmSize`).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn maps_total() -> usize {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter(|l| !l.ends_with("[vsyscall]"))
            .map(|l| {
                let (start, end) = l.split(' ').next().unwrap().split_once('-').unwrap();
                usize::from_str_radix(end, 16).unwrap() - usize::from_str_radix(start, 16).unwrap()
            })
            .sum()
    }

    /// The use the shares and the budget subtract is the process's real
    /// address-space use: exactly `VmSize`, and the sum of its mappings,
    /// not 0 or a byte (with which every share under `RLIMIT_AS` would
    /// count the limit as free). Other tests' threads (and, under
    /// AddressSanitizer, its allocator) map and unmap meanwhile, so a
    /// reading counts only when `VmSize` reads the same before and after
    /// and the mappings add up to it, and one whose `address_space_used`
    /// still differs (something mapped and unmapped in between) is tried
    /// again: ten exact readings out of at most 1,000 tries pass, a figure
    /// that is never exact (0, a byte, a page off) fails.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    #[cfg_attr(miri, ignore = "reads /proc/self/statm, /proc/self/status and /proc/self/maps")]
    fn address_space_used_is_this_processs_vm_size_and_the_sum_of_its_mappings() {
        let (mut compared, mut differing) = (0, Vec::new());
        for _ in 0..1000 {
            let before = vm_size();
            let (used, through_map, maps) = (
                crate::options::address_space_used(),
                address_space_used(),
                maps_total(),
            );
            if vm_size() != before || maps != before {
                continue;
            }
            if (used, through_map) != (Some(before), Some(before)) {
                differing.push((before, used, through_map));
                continue;
            }
            compared += 1;
            if compared == 10 {
                return;
            }
        }
        panic!(
            "{compared} of 10 exact readings; readings (VmSize, address_space_used through \
             options and map) that differed: {:?}",
            &differing[..differing.len().min(5)]
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads /proc/self/maps and /proc/self/status")]
    fn address_space_size_is_a_power_of_two_past_every_mapping() {
        let size = address_space_size();
        assert!(size.is_power_of_two());
        if cfg!(any(target_os = "linux", target_os = "android")) {
            assert!(highest_mapping_end().is_some_and(|end| end <= size));
        }
        if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            // 4-level page tables, or 5-level ones without a hint past 2^47.
            assert_eq!(size, 1 << 47);
            assert_eq!(budget(), 16 << 40);
        }
        let left = address_space_left().unwrap();
        assert!(left > 0 && left < size);
    }

    #[test]
    fn a_claim_holds_what_it_took_less_what_it_gave_back_and_returns_the_rest_on_drop() {
        static POOL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let held = || POOL.load(std::sync::atomic::Ordering::Relaxed);
        // Within the cap: taken whole; past it: nothing taken.
        let mut a = Claim::take(&POOL, 600, 1000).unwrap();
        assert_eq!((a.bytes, held()), (600, 600));
        assert!(Claim::take(&POOL, 401, 1000).is_none());
        assert_eq!(held(), 600);
        // A mapping that fell back to a shorter reservation keeps less, and
        // what it gave back is free for the next claim at once.
        a.keep(100);
        assert_eq!((a.bytes, held()), (100, 100));
        a.keep(500);
        assert_eq!((a.bytes, held()), (100, 100), "keep never takes more");
        let b = Claim::take(&POOL, 900, 1000).unwrap();
        assert_eq!(held(), 1000);
        // Dropping gives back exactly what each still holds.
        drop(a);
        assert_eq!(held(), 900);
        drop(b);
        assert_eq!(held(), 0);
        let none = Claim::none(&POOL);
        drop(none);
        assert_eq!(held(), 0);
    }
}
