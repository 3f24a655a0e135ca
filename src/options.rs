//! `MmapOptions`, `FileCleanup` and `Advice`: the policies the plain
//! constructors fix to their hardened defaults.

use crate::error::{Error, ErrorKind, Result};

/// Who may own, and who may write, a file we attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrustPolicy {
    pub(crate) allow_other_owner: bool,
    pub(crate) allow_group_or_other_write: bool,
    pub(crate) allow_hard_links: bool,
}
/// What happens to the backing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileCleanup {
    /// The file stays at its path so that peers can attach by path. The
    /// creator owns it and removes it when dropped, unless
    /// [`MmapRegion::release_ownership`](crate::MmapRegion::release_ownership) was called; an attached handle
    /// removes it only after [`MmapRegion::take_ownership`](crate::MmapRegion::take_ownership).
    Manual,
    /// The file never keeps a name: peers attach through the descriptor
    /// ([`MmapRegion::fd`](crate::MmapRegion::fd) and [`MmapRegion::attach_fd`](crate::MmapRegion::attach_fd)), and
    /// [`MmapRegion::attach`](crate::MmapRegion::attach) by path finds nothing. On Linux it is created
    /// with `O_TMPFILE|O_EXCL` in the path's directory, so no name ever
    /// exists (the name at the path is only checked to be free). Elsewhere,
    /// and on file systems without `O_TMPFILE`, it is created at the path
    /// and unlinked as soon as it is mapped: until then a process of the
    /// same user can open it by name.
    Auto,
}

/// Access-pattern advice for [`MmapRegion::advise`](crate::MmapRegion::advise) (`madvise`). Only hints
/// that never change the shared contents are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// No special treatment (`MADV_NORMAL`).
    Normal,
    /// Expect random access: read ahead less (`MADV_RANDOM`).
    Random,
    /// Expect sequential access: read ahead more (`MADV_SEQUENTIAL`).
    Sequential,
    /// Expect access soon: start reading the pages in (`MADV_WILLNEED`).
    WillNeed,
    /// Not needed soon: drop this process's page-table entries. The bytes
    /// stay in the shared file and are faulted back in on the next access
    /// (`MADV_DONTNEED` on a shared file mapping discards nothing).
    DontNeed,
}

impl Advice {
    /// The hint the mapping passes on (`madvise`; refused on Windows).
    pub(crate) fn hint(self) -> crate::sys::Hint {
        use crate::sys::Hint;
        match self {
            Self::Normal => Hint::Normal,
            Self::Random => Hint::Random,
            Self::Sequential => Hint::Sequential,
            Self::WillNeed => Hint::WillNeed,
            Self::DontNeed => Hint::DontNeed,
        }
    }
}

/// One gibibyte: the smallest default address-space reservation.
const MIN_DEFAULT_RESERVATION: usize = 1 << 30;
/// The default reservation is this many times the mapped size, if larger.
const RESERVATION_FACTOR: usize = 64;
/// Under a finite `RLIMIT_AS`, the default reservation takes at most
/// `1 / BUDGET_DIVISOR` of the address space the limit leaves.
const BUDGET_DIVISOR: usize = 8;

/// The default reservation for a mapping of `len` bytes, given the address
/// space `RLIMIT_AS` leaves (`None`: no limit): the larger of 1 GiB and 64 ×
/// `len`, capped to an eighth of `left` rounded down to pages, but never
/// less than `len`.
fn default_reservation(len: usize, left: Option<usize>) -> usize {
    let wanted = MIN_DEFAULT_RESERVATION.max(len.saturating_mul(RESERVATION_FACTOR));
    match left {
        None => wanted,
        Some(left) => {
            let budget = (left / BUDGET_DIVISOR) & !(crate::sys::page_size() - 1);
            wanted.min(budget).max(len)
        }
    }
}

/// The address space `RLIMIT_AS` still allows this process, in bytes:
/// `None` if the limit is infinite (always on Windows, which has no such
/// limit). It is the limit minus the current address-space use
/// ([`address_space_used`]); where the current use cannot be read, the
/// limit itself.
pub(crate) fn address_space_left() -> Option<usize> {
    let limit = crate::sys::address_space_limit()?;
    Some(address_space_used().map_or(limit, |used| limit.saturating_sub(used)))
}

/// This process's current address-space use in bytes, if known: on Linux
/// `VmSize` (`/proc/self/statm`'s first field), on Windows the user
/// address space less what `GlobalMemoryStatusEx` says is free of it;
/// elsewhere `None`.
pub(crate) fn address_space_used() -> Option<usize> {
    crate::sys::address_space_used()
}

/// Options for the policies that the plain constructors fix to their
/// hardened defaults. Each setter documents its trade-off.
///
/// ```
/// # #[cfg(any(miri, windows))] fn main() {} // Miri cannot map files; Windows refuses `populate`.
/// # #[cfg(not(any(miri, windows)))]
/// # fn main() -> Result<(), shm_region::Error> {
/// use shm_region::{FileCleanup, MmapOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let region = MmapOptions::new()
///     .reserve_blocks(false)          // sparse: faster, but a full disk means SIGBUS later
///     .address_space(64 << 20)        // room to grow in place up to 64 MiB
///     .populate(true)                 // fault the pages in at map time
///     .create(&dir.path().join("seg"), 4096, FileCleanup::Manual)?;
/// assert_eq!(region.len(), 4096);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmapOptions {
    pub(crate) reserve_blocks: bool,
    pub(crate) address_space: Option<usize>,
    pub(crate) trust: TrustPolicy,
    pub(crate) require_shrink_seal: bool,
    pub(crate) require_write_seal: bool,
    pub(crate) max_size: Option<usize>,
    pub(crate) mode: u32,
    pub(crate) populate: bool,
    pub(crate) lock: bool,
    pub(crate) dont_dump: bool,
    pub(crate) dont_fork: bool,
}

impl Default for MmapOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl MmapOptions {
    /// The hardened defaults: blocks reserved on create and grow, an
    /// address-space reservation of the larger of 1 GiB and 64 × the size
    /// (at most an eighth of what a finite `RLIMIT_AS` leaves, and within a
    /// process-wide budget; see [`address_space`](Self::address_space)),
    /// files created with mode `0600`, attach only to files owned by the
    /// effective user, not writable by group or others and with exactly one
    /// name (no hard links; memfds passed as descriptors excepted), no size
    /// limit beyond what can be mapped and, for files attached or followed,
    /// a quarter of the address space left (see
    /// [`max_size`](Self::max_size)), no seal required, no populating or
    /// locking, and the memory left in core dumps and in children made by
    /// `fork`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            reserve_blocks: true,
            address_space: None,
            trust: TrustPolicy {
                allow_other_owner: false,
                allow_group_or_other_write: false,
                allow_hard_links: false,
            },
            require_shrink_seal: false,
            require_write_seal: false,
            max_size: None,
            mode: 0o600,
            populate: false,
            lock: false,
            dont_dump: false,
            dont_fork: false,
        }
    }

    /// Whether `create` and `resize` reserve the file's blocks (`fallocate`,
    /// or writing zeros where that is not available) before the new size
    /// becomes visible. On (the default), a full file system is an error
    /// from the call, at the price of allocating (on tmpfs: zeroing) the
    /// pages up front. Off, growth is sparse and cheaper, but a full file
    /// system (tmpfs in particular) kills whoever first touches an unbacked
    /// page with `SIGBUS` (unless [`populate`](Self::populate) is on, which
    /// then reports it as an error from the call instead).
    pub fn reserve_blocks(&mut self, yes: bool) -> &mut Self {
        self.reserve_blocks = yes;
        self
    }

    /// Bytes of address space to map for each mapping, so that growth up to
    /// that size keeps the base address and the pages already faulted in.
    /// Growth past it still works: a new mapping is made (the base moves,
    /// views taken before keep the old one).
    ///
    /// Address space past the file's end costs no memory, but counts against
    /// `RLIMIT_AS`. The default is the larger of 1 GiB and 64 × the mapped
    /// size; when `RLIMIT_AS` is finite, it is capped to one eighth of what
    /// the limit leaves when the mapping is made (the limit minus the
    /// process's current address-space use, read from `/proc/self/statm`
    /// on Linux; where that use cannot be read, one eighth of the limit
    /// itself), so a region leaves at least seven eighths of that room to
    /// the rest of the program. Default reservations also share a
    /// process-wide budget: together they hold at most an eighth of the
    /// user address space (under a finite `RLIMIT_AS`, of what the limit
    /// leaves them) beyond
    /// the lengths they map (16 TiB with the
    /// 47-bit address space of x86_64; on Linux the size is taken from the
    /// highest mapping in `/proc/self/maps`, rounded up to a power of two;
    /// elsewhere it is taken as 2^47 on 64-bit targets), so
    /// that however many files peers make this process map, reservations
    /// cannot use up its address space. A mapping made once the budget is
    /// spent reserves only its length (its growth then makes a new
    /// mapping), and a mapping gives its share back when it is unmapped. A
    /// value set here is used as given, whatever `RLIMIT_AS` or the budget
    /// is. Either way the reservation is at most
    /// [`max_size`](Self::max_size) rounded up to pages, and a mapping is
    /// never shorter than the mapped
    /// length rounded up to pages: `0` maps exactly, so every growth makes
    /// a new mapping and moves the base (as the reference implementation
    /// did). If the reservation cannot be had (address space, `RLIMIT_AS`),
    /// the file is mapped exactly instead.
    pub fn address_space(&mut self, bytes: usize) -> &mut Self {
        self.address_space = Some(bytes);
        self
    }

    /// Whether `attach` accepts a file owned by a user other than the
    /// effective user. Off by default: another user's file can be truncated
    /// or rewritten by that user at any time. A memfd passed as a
    /// descriptor is accepted whatever its owner (it has no name; see
    /// [`MmapRegion::attach_fd`](crate::MmapRegion::attach_fd)).
    pub fn allow_other_owner(&mut self, yes: bool) -> &mut Self {
        self.trust.allow_other_owner = yes;
        self
    }

    /// Whether `attach` accepts a file writable by its group or by others.
    /// Off by default: anyone with write permission can truncate the file
    /// under every peer. A memfd passed as a descriptor is accepted
    /// whatever its mode (0777 as the kernel makes it): nobody can open it
    /// by a name; see
    /// [`MmapRegion::attach_fd`](crate::MmapRegion::attach_fd).
    pub fn allow_group_or_other_write(&mut self, yes: bool) -> &mut Self {
        self.trust.allow_group_or_other_write = yes;
        self
    }

    /// Whether `attach` and `attach_fd` (and their read-only forms) accept
    /// a regular file with more than one name (a link count above 1). Off
    /// by default: where the system lets users hard-link files they do not
    /// own (Linux with `fs.protected_hardlinks=0`, the BSDs, macOS), a
    /// writer of the shared directory could plant a link to one of *your*
    /// private files, whose owner and mode then pass every other check, and
    /// the application would read and write that file as if it were the
    /// region. Files with no name at all (memfds, unlinked files) are fine.
    pub fn allow_hard_links(&mut self, yes: bool) -> &mut Self {
        self.trust.allow_hard_links = yes;
        self
    }

    /// Whether `attach_fd` (and `attach`) refuse a file that is not sealed
    /// against shrinking (`F_SEAL_SHRINK`, see
    /// [`MmapRegion::create_sealed`](crate::MmapRegion::create_sealed)). Off by default, since files at a path
    /// cannot be sealed. On, no holder of the file can truncate it under
    /// this handle, which closes the `SIGBUS` window described in
    /// `SECURITY.md`; only Linux memfds qualify. Memfds made with
    /// `MFD_HUGETLB` are refused with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) whatever
    /// their seals: a holder can punch their pages out, which the seal does
    /// not prevent.
    pub fn require_shrink_seal(&mut self, yes: bool) -> &mut Self {
        self.require_shrink_seal = yes;
        self
    }

    /// Whether `attach_fd` (and `attach`, and the read-only variants)
    /// refuse a file that is not sealed against writes: one that carries
    /// neither `F_SEAL_FUTURE_WRITE` (what
    /// [`MmapRegion::share_read_only`](crate::MmapRegion::share_read_only) adds) nor `F_SEAL_WRITE` (what
    /// [`MmapRegion::freeze`](crate::MmapRegion::freeze) adds) is refused with
    /// [`ErrorKind::NotSealed`](crate::ErrorKind::NotSealed). Off by
    /// default. On, no holder of a descriptor of the file can write it any
    /// more through a new mapping or a write call, so a peer this process
    /// does not trust cannot change what it reads, except the creator
    /// through the mappings it made before sealing. Use it with
    /// [`attach_fd_read_only`](Self::attach_fd_read_only): such a file
    /// cannot be mapped writable (`attach_fd` then fails with
    /// [`ErrorKind::Os`](crate::ErrorKind::Os), `EPERM`).
    pub fn require_write_seal(&mut self, yes: bool) -> &mut Self {
        self.require_write_seal = yes;
        self
    }

    /// The largest size, in bytes, that a handle made with these options
    /// maps: `attach` refuses a longer file, `check_and_remap` refuses to
    /// follow a peer's growth past it, and `create`, `stage`,
    /// `create_sealed` and `resize` refuse to make the file longer, each
    /// with [`ErrorKind::FileTooLarge`](crate::ErrorKind::FileTooLarge) and
    /// nothing changed. It also bounds every address-space reservation the
    /// handle makes (at most `bytes` rounded up to pages, whatever
    /// [`address_space`](Self::address_space) asks for).
    ///
    /// Without it, `attach` (all forms) and `check_and_remap` refuse a file
    /// larger than a quarter of the address space this process has left
    /// (the smaller of what `RLIMIT_AS` leaves and the user address space
    /// minus the current use), with `FileTooLarge` and a message naming
    /// this option: a file's size is chosen by whoever made it, and two
    /// files of half the address space would leave none for anything
    /// else. And since a peer can send file after file, each a little
    /// under that quarter, every file mapping made without `max_size` (by
    /// every constructor but `in_memory`, and by `resize`,
    /// `check_and_remap`, `peer` and `freeze`) takes a share of a
    /// process-wide count of its origin, and the mappings of one origin map
    /// together at most their part of the address space (the user address
    /// space, or under a finite `RLIMIT_AS` what the limit leaves them):
    /// a quarter for the regions this process created (`create`,
    /// `create_sealed`, `create_shm`, `stage`; 32 TiB on x86_64 without a
    /// limit), an eighth for the files it attached by path or POSIX name
    /// (`attach`, `attach_shm` and their read-only forms) and an eighth for
    /// the files it received by descriptor (`attach_fd`,
    /// `attach_fd_read_only` and [`Frozen::attach_fd`](crate::Frozen::attach_fd)),
    /// 16 TiB each. Half of the address space is thus left to the rest of
    /// the program, and what one source maps never takes another's share:
    /// files a peer sends, sparse and of any size, cannot keep this process
    /// from creating its own regions or attaching by name. (The size of a
    /// received file is its sender's free choice and costs it nothing when
    /// sparse, and a mapping takes its size in address space whatever is
    /// allocated, so counting allocated blocks would not bound it.) A
    /// handle keeps its origin: its growth, a followed growth (even one a
    /// peer made to a region this process created), its `peer`s and its
    /// `freeze` draw on the same share. Shares are taken atomically, so
    /// threads mapping at once cannot pass them either; a mapping past one
    /// is `FileTooLarge` naming this option, and a mapping's share comes
    /// back when it is unmapped. Set `max_size` to map larger files, or
    /// more of them: then only it and what can be mapped limit the size.
    pub fn max_size(&mut self, bytes: usize) -> &mut Self {
        self.max_size = Some(bytes);
        self
    }

    /// The permission bits for files this crate creates (`create`, `stage`),
    /// applied by the kernel at creation (the umask can only remove bits).
    /// Only `0o777` is kept. The default `0o600` lets only the owner open
    /// the file. Granting group or others write permission lets them
    /// truncate it under every peer, and `attach` then needs
    /// [`allow_group_or_other_write`](Self::allow_group_or_other_write);
    /// read permission alone suits [`MmapRegion::attach_read_only`](crate::MmapRegion::attach_read_only) peers.
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode & 0o777;
        self
    }

    /// Whether to fault the pages in when mapping and after each growth
    /// (`MADV_POPULATE_WRITE`/`READ` on Linux 5.14+, `MADV_WILLNEED`
    /// elsewhere). Costs the page faults up front, so first accesses do not
    /// pay them; with sparse growth it also turns a full file system into an
    /// error from the call instead of `SIGBUS` later.
    pub fn populate(&mut self, yes: bool) -> &mut Self {
        self.populate = yes;
        self
    }

    /// Whether to lock the mapped pages in memory (`mlock`) when mapping and
    /// after each growth, so they are never swapped out. Locked memory
    /// counts against `RLIMIT_MEMLOCK` (often 8 MiB for unprivileged users);
    /// going past it is [`ErrorKind::LockLimit`](crate::ErrorKind::LockLimit).
    /// When a growth cannot be locked, the file has already grown but the
    /// handle keeps its old length; call `resize` or `check_and_remap` again
    /// once the limit allows.
    pub fn lock(&mut self, yes: bool) -> &mut Self {
        self.lock = yes;
        self
    }

    /// Whether to keep the region's memory out of this process's core
    /// dumps (`MADV_DONTDUMP`, Linux), for regions that hold secrets. Off
    /// by default.
    ///
    /// The advice is given for every mapping that a handle made with these
    /// options makes, as the mapping is made: at `create`, `create_sealed`, `stage`, each `attach` and
    /// `in_memory`, in [`MmapRegion::peer`](crate::MmapRegion::peer) (the new handle keeps these
    /// options), and for the new mapping of a `resize` or `check_and_remap`
    /// past the address-space reservation. It covers the whole reservation,
    /// so growth in place stays covered. It shows as `dd` among the
    /// mapping's `VmFlags` in `/proc/<pid>/smaps`, and the kernel then
    /// dumps none of it, whatever `/proc/<pid>/coredump_filter` says
    /// (without the option, that filter decides).
    ///
    /// It concerns this process only: another process that maps the same
    /// file decides for itself, and the bytes stay in the file (on tmpfs,
    /// in memory or swap), readable by whoever can open it.
    ///
    /// Off Linux and Android, the constructors of these options
    /// ([`create`](Self::create), [`create_sealed`](Self::create_sealed),
    /// [`stage`](Self::stage), the `attach` forms and
    /// [`in_memory`](Self::in_memory)) return
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) while it
    /// is on, and create nothing. Under Miri and loom, where an in-memory
    /// region is not a mapping of its own, it has no effect.
    pub fn dont_dump(&mut self, yes: bool) -> &mut Self {
        self.dont_dump = yes;
        self
    }

    /// Whether to keep the region's memory out of children that this
    /// process makes with `fork` (`MADV_DONTFORK`, Linux), for regions
    /// that hold secrets: such a child gets no part of the mapping, the
    /// reservation past the file's end included. Off by default. It is
    /// given for the same mappings as [`dont_dump`](Self::dont_dump), with
    /// the same platform rules, and shows as `dc` among the `VmFlags`.
    ///
    /// It matters for a child that runs on after `fork` without `exec`
    /// (the workers of a pre-forking server, say). Such a child must
    /// neither use nor drop the handles and views it inherited: nothing is
    /// mapped at their address there (an access faults, or reaches whatever
    /// the child has mapped there since, which dropping the last of them
    /// would unmap). A child that calls `exec` at once, as
    /// [`std::process::Command`] makes them, is not affected.
    pub fn dont_fork(&mut self, yes: bool) -> &mut Self {
        self.dont_fork = yes;
        self
    }

    /// [`ErrorKind::Unsupported`] if an option this system cannot honour
    /// is on (`dont_dump`, `dont_fork` off Linux and Android), checked by
    /// every constructor before anything is created.
    pub(crate) fn refuse_unsupported(&self, op: &'static str) -> Result<()> {
        if self.needs_madvise_exclusions(cfg!(any(target_os = "linux", target_os = "android"))) {
            Err(Error::new(ErrorKind::Unsupported, op))
        } else {
            Ok(())
        }
    }

    /// Whether these options ask for advice only Linux has, on a system
    /// that is not Linux (`linux` false).
    fn needs_madvise_exclusions(&self, linux: bool) -> bool {
        !linux && (self.dont_dump || self.dont_fork)
    }

    /// The mode for files this crate creates.
    #[allow(
        clippy::useless_conversion,
        reason = "`RawMode` is `u16` on some targets"
    )]
    #[cfg(unix)]
    pub(crate) fn creation_mode(&self) -> rustix::fs::Mode {
        // `mode` was masked to 0o777 by the setter, so it fits any `RawMode`.
        rustix::fs::Mode::from_bits_truncate(self.mode.try_into().unwrap_or(0o600))
    }

    /// The address space to map for a mapping of `len` bytes, at most
    /// `max_size` rounded up to pages (never less than `len`). Called only
    /// when a mapping is made (the default reads `RLIMIT_AS` and, under a
    /// finite limit, `/proc/self/statm`). The process-wide budget of
    /// default reservations is applied on top, in `map.rs`.
    pub(crate) fn reservation_for(&self, len: usize) -> usize {
        let wanted = match self.address_space {
            Some(bytes) => bytes,
            None => default_reservation(len, address_space_left()),
        };
        self.within_max_size(wanted).max(len)
    }

    /// The capacity of an in-memory region of `len` bytes: the explicit
    /// address space, or the default reservation (64 × `len` under Miri and
    /// loom, which allocate all of it); at most `max_size` rounded up to
    /// pages, never less than `len`.
    pub(crate) fn capacity_for(&self, len: usize) -> usize {
        let wanted = match self.address_space {
            Some(bytes) => bytes,
            None if cfg!(any(miri, loom)) => len.saturating_mul(RESERVATION_FACTOR),
            None => default_reservation(len, address_space_left()),
        };
        self.within_max_size(wanted).max(len)
    }

    /// `bytes`, capped to `max_size` rounded up to pages: a handle never
    /// maps more than it may ever hold.
    fn within_max_size(&self, bytes: usize) -> usize {
        match self.max_size {
            Some(max) => {
                let page = crate::sys::page_size();
                bytes.min(max.checked_next_multiple_of(page).unwrap_or(max))
            }
            None => bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: usize = 1 << 30;
    const MIB: usize = 1 << 20;

    #[test]
    fn default_reservation_without_a_limit_is_a_gibibyte_or_64_times_the_size() {
        assert_eq!(default_reservation(4096, None), GIB);
        assert_eq!(default_reservation(16 * MIB, None), GIB);
        assert_eq!(default_reservation(64 * MIB, None), 64 * 64 * MIB);
        assert_eq!(default_reservation(usize::MAX, None), usize::MAX);
    }

    #[test]
    fn default_reservation_takes_at_most_an_eighth_of_what_the_limit_leaves() {
        let ps = crate::sys::page_size();
        assert_eq!(default_reservation(4096, Some(2 * GIB)), 256 * MIB);
        assert_eq!(default_reservation(4096, Some(16 * GIB)), GIB);
        assert_eq!(default_reservation(4096, Some(64 * GIB)), GIB);
        assert_eq!(default_reservation(256 * MIB, Some(64 * GIB)), 8 * GIB);
        // An eighth that is not a page multiple is rounded down to pages.
        assert_eq!(default_reservation(1, Some(8 * ps + 8 * (ps - 1))), ps);
        assert_eq!(default_reservation(1, Some(8 * ps - 1)), 1);
    }

    #[test]
    fn default_reservation_is_never_shorter_than_the_length() {
        assert_eq!(default_reservation(4096, Some(0)), 4096);
        assert_eq!(default_reservation(512 * MIB, Some(2 * GIB)), 512 * MIB);
        assert_eq!(default_reservation(3 * GIB, Some(GIB)), 3 * GIB);
    }

    #[test]
    fn dont_dump_and_dont_fork_are_refused_only_off_linux() {
        let mut o = MmapOptions::new();
        assert!(!o.needs_madvise_exclusions(false));
        assert!(!o.needs_madvise_exclusions(true));
        for (dump, fork) in [(true, false), (false, true), (true, true)] {
            o.dont_dump(dump).dont_fork(fork);
            assert!(o.needs_madvise_exclusions(false), "{dump} {fork}");
            assert!(!o.needs_madvise_exclusions(true), "{dump} {fork}");
        }
        let on_this_system = o.refuse_unsupported("op").map_err(|e| e.kind());
        if cfg!(any(target_os = "linux", target_os = "android")) {
            assert_eq!(on_this_system, Ok(()));
        } else {
            assert_eq!(on_this_system, Err(ErrorKind::Unsupported));
        }
    }

    #[test]
    fn explicit_address_space_is_used_as_given_but_never_below_the_length() {
        let mut o = MmapOptions::new();
        o.address_space(GIB);
        assert_eq!(o.reservation_for(4096), GIB);
        assert_eq!(o.reservation_for(2 * GIB), 2 * GIB);
        o.address_space(0);
        assert_eq!(o.reservation_for(4096), 4096);
    }

    #[test]
    fn in_memory_capacity_is_the_default_reservation_except_under_miri_and_loom() {
        let o = MmapOptions::new();
        if cfg!(any(miri, loom)) {
            // Heap and loom backings allocate all of it.
            assert_eq!(o.capacity_for(4096), 64 * 4096);
        } else {
            assert_eq!(o.capacity_for(4096), o.reservation_for(4096));
            if crate::sys::address_space_limit().is_none() {
                assert_eq!(o.capacity_for(4096), GIB);
            }
        }
        let mut explicit = MmapOptions::new();
        explicit.address_space(1 << 20);
        assert_eq!(explicit.capacity_for(4096), 1 << 20);
        assert_eq!(explicit.capacity_for(2 << 20), 2 << 20);
    }
}
