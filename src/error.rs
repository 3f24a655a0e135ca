//! The crate's error type.

use std::fmt;
use std::io;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// What went wrong, precisely enough to match on.
///
/// Each kind maps to one [`std::io::ErrorKind`] (see [`ErrorKind::io_kind`]),
/// which is what an [`Error`] becomes when converted into [`std::io::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The requested size is zero or larger than the platform can map
    /// (over `isize::MAX` or the largest file offset), or
    /// [`fdpass::recv_with`](crate::fdpass::recv_with) was given an empty
    /// buffer.
    InvalidSize,
    /// The path has no file name (`/`, `..`, empty).
    InvalidPath,
    /// Something already exists at the path; it was left untouched.
    AlreadyExists,
    /// Nothing exists at the path, or its parent directory does not exist
    /// (the message says which).
    NotFound,
    /// The path or descriptor names a symbolic link, directory, FIFO, socket,
    /// device or anything else that is not a regular file.
    NotRegularFile,
    /// The file is empty: there is nothing to map.
    EmptyFile,
    /// The file, or the size asked for, is larger than this process can
    /// map or store: past `isize::MAX`, past [`MmapOptions::max_size`] or
    /// the file-size limit (`RLIMIT_FSIZE`), or `mmap` failed with `ENOMEM`
    /// (no address space, or no mapping slots under `vm.max_map_count`,
    /// left for it). A refusal by `max_size` says so in its message, which
    /// ends with the way out (a larger `max_size`).
    ///
    /// [`MmapOptions::max_size`]: crate::MmapOptions::max_size
    FileTooLarge,
    /// The file belongs to another user (compared with the effective uid).
    /// The message names the option that accepts it,
    /// [`MmapOptions::allow_other_owner`](crate::MmapOptions::allow_other_owner).
    UntrustedOwner,
    /// The file is writable by its group or by others. The message names
    /// the option that accepts it,
    /// [`MmapOptions::allow_group_or_other_write`](crate::MmapOptions::allow_group_or_other_write).
    InsecureMode,
    /// The file has more than one name (hard link count above 1): someone
    /// who can write the directory may have linked a file of ours that was
    /// never meant to be shared. The message names the option that accepts
    /// it, [`MmapOptions::allow_hard_links`](crate::MmapOptions::allow_hard_links).
    HardLinked,
    /// `resize` was asked to shrink the region.
    ShrinkRefused,
    /// The file is shorter than the mapped length: a peer truncated it.
    Truncated,
    /// An access reaches past the accessible length, or its offset overflows.
    OutOfBounds,
    /// An atomic access at an offset not aligned to its size.
    Misaligned,
    /// The region is mapped read-only, or
    /// [`attach_fd`](crate::MmapRegion::attach_fd) was given a descriptor
    /// open read-only (`O_RDONLY`; then the OS error is `EACCES` and the
    /// message suggests
    /// [`attach_fd_read_only`](crate::MmapRegion::attach_fd_read_only)).
    ReadOnly,
    /// The file system has no room (or the quota is exhausted).
    StorageFull,
    /// The operation is not available on this platform (for example sealed
    /// memfd regions off Linux, or atomic loads of read-only memory on a
    /// target where std does not guarantee them).
    Unsupported,
    /// A descriptor without the seals an operation or the options require:
    /// `F_SEAL_SHRINK` for
    /// [`require_shrink_seal`](crate::MmapOptions::require_shrink_seal),
    /// `F_SEAL_WRITE` or `F_SEAL_FUTURE_WRITE` for
    /// [`require_write_seal`](crate::MmapOptions::require_write_seal), all
    /// of `F_SEAL_WRITE`, `F_SEAL_GROW` and `F_SEAL_SHRINK` for
    /// [`Frozen::attach_fd`](crate::Frozen::attach_fd). The message names
    /// the seals missing.
    NotSealed,
    /// A seal on the file forbids the operation: [`resize`] of a file sealed
    /// against growth (`F_SEAL_GROW`, which
    /// [`share_read_only`](crate::MmapRegion::share_read_only) adds) or
    /// writes (`F_SEAL_WRITE`, `F_SEAL_FUTURE_WRITE`), or
    /// [`freeze`](crate::MmapRegion::freeze) /
    /// [`share_read_only`](crate::MmapRegion::share_read_only) of a file
    /// whose seals a holder locked (`F_SEAL_SEAL`) before the seals they
    /// add. The message names the file's seals.
    ///
    /// [`resize`]: crate::MmapRegion::resize
    Sealed,
    /// [`freeze`](crate::MmapRegion::freeze) found a writable mapping of the
    /// file: a [`Region`](crate::Region) view (or shared word) of the
    /// handle, a [`peer`](crate::MmapRegion::peer) handle, or a mapping in
    /// another process (then the OS error is `EBUSY`).
    Busy,
    /// A descriptor-passing message carried no descriptor.
    MissingDescriptor,
    /// A descriptor-passing message carried more descriptors than the
    /// receiver asked for (more than one for [`fdpass::recv`], more than
    /// `max_fds` for [`fdpass::recv_with`]), or more than its control
    /// buffer could hold (`MSG_CTRUNC`); every descriptor received was
    /// closed.
    ///
    /// [`fdpass::recv`]: crate::fdpass::recv
    /// [`fdpass::recv_with`]: crate::fdpass::recv_with
    ExtraDescriptors,
    /// A message was longer than the buffer it was received into and the
    /// kernel cut it (`MSG_TRUNC`, on message-oriented sockets such as
    /// `SOCK_SEQPACKET`); every descriptor it carried was closed.
    MessageTruncated,
    /// A load was asked for with `Release` or `AcqRel` ordering.
    InvalidOrdering,
    /// `mlock` failed: the locked-memory limit (`RLIMIT_MEMLOCK`) or the
    /// privilege to lock was missing.
    LockLimit,
    /// The input ended before the bytes asked for were read:
    /// [`Region::read_exact_from_fd`](crate::Region::read_exact_from_fd)
    /// got end of input (a `read(2)` of 0) first. Converts into
    /// [`std::io::ErrorKind::UnexpectedEof`].
    UnexpectedEof,
    /// An [in-memory](crate::MmapRegion::in_memory) region's memory cannot
    /// be had: `mmap` of anonymous memory failed with `ENOMEM` (no address
    /// space left, `RLIMIT_AS`, `RLIMIT_DATA`, or the commit limit under
    /// strict overcommit).
    OutOfMemory,
    /// The `SIGBUS` registry ([`sigbus`](crate::sigbus)) could not grow to
    /// take one more file mapping (no memory for another block of slots)
    /// after [`sigbus::install`](crate::sigbus::install): the mapping is
    /// not made, so that none goes unguarded.
    SigbusRegistry,
    /// [`Doorbell::from_fd`](crate::Doorbell::from_fd) was given a
    /// descriptor that is not an eventfd (a pipe, socket, file, device,
    /// or another kind of anonymous inode such as a timerfd), or an eventfd
    /// in semaphore mode (`EFD_SEMAPHORE`), whose rings do not coalesce.
    /// The message gives the descriptor's number and what it is; the
    /// descriptor was closed.
    NotEventfd,
    /// A socket has no peer process to name:
    /// [`fdpass::peer_process`](crate::fdpass::peer_process) was given a
    /// socket that is not connected (then the OS error is `ENOTCONN`), or
    /// whose peer process has exited and been reaped (`ESRCH`), or, without
    /// `SO_PEERPIDFD`, whose peer has closed its end (see
    /// `peer_process`). The message says which.
    NotConnected,
    /// Another operating-system error; see [`Error::raw_os_error`].
    Os,
}

impl ErrorKind {
    /// The [`std::io::ErrorKind`] this kind converts to.
    #[must_use]
    pub fn io_kind(self) -> io::ErrorKind {
        match self {
            Self::InvalidSize
            | Self::InvalidPath
            | Self::NotRegularFile
            | Self::ShrinkRefused
            | Self::OutOfBounds
            | Self::Misaligned
            | Self::InvalidOrdering
            | Self::NotEventfd => io::ErrorKind::InvalidInput,
            Self::NotConnected => io::ErrorKind::NotConnected,
            Self::AlreadyExists => io::ErrorKind::AlreadyExists,
            Self::NotFound => io::ErrorKind::NotFound,
            Self::EmptyFile
            | Self::FileTooLarge
            | Self::Truncated
            | Self::MissingDescriptor
            | Self::ExtraDescriptors
            | Self::MessageTruncated => io::ErrorKind::InvalidData,
            Self::UntrustedOwner
            | Self::InsecureMode
            | Self::HardLinked
            | Self::ReadOnly
            | Self::NotSealed
            | Self::Sealed => io::ErrorKind::PermissionDenied,
            Self::Busy => io::ErrorKind::ResourceBusy,
            Self::StorageFull => io::ErrorKind::StorageFull,
            Self::Unsupported => io::ErrorKind::Unsupported,
            Self::LockLimit | Self::OutOfMemory | Self::SigbusRegistry => {
                io::ErrorKind::OutOfMemory
            }
            Self::UnexpectedEof => io::ErrorKind::UnexpectedEof,
            Self::Os => io::ErrorKind::Other,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::InvalidSize => "size is zero or too large to map",
            Self::InvalidPath => "path has no file name",
            Self::AlreadyExists => "something already exists at the path",
            Self::NotFound => "nothing exists at the path",
            Self::NotRegularFile => "not a regular file",
            Self::EmptyFile => "file is empty",
            Self::FileTooLarge => "file is too large to map",
            Self::UntrustedOwner => "file is owned by another user",
            Self::InsecureMode => "file is writable by group or others",
            Self::HardLinked => "file has more than one hard link",
            Self::ShrinkRefused => "a region can only grow",
            Self::Truncated => "file was truncated below the mapped length",
            Self::OutOfBounds => "access out of bounds",
            Self::Misaligned => "misaligned atomic access",
            Self::ReadOnly => "region is read-only",
            Self::StorageFull => "no space left for the region",
            Self::Unsupported => "not supported on this platform",
            Self::NotSealed => "descriptor is not sealed against shrinking",
            Self::Sealed => "a seal on the file forbids this",
            Self::Busy => "a writable mapping of the file exists",
            Self::MissingDescriptor => "message carried no descriptor",
            Self::ExtraDescriptors => "message carried more than one descriptor",
            Self::MessageTruncated => "message was longer than the buffer and was cut",
            Self::InvalidOrdering => "not an ordering a load can use",
            Self::LockLimit => "cannot lock the region in memory",
            Self::UnexpectedEof => "end of input before the bytes asked for",
            Self::OutOfMemory => "not enough memory for the region",
            Self::SigbusRegistry => "the SIGBUS registry cannot grow",
            Self::NotEventfd => "descriptor is not an eventfd",
            Self::NotConnected => "socket has no peer process",
            Self::Os => "operating-system error",
        }
    }
}

/// An error from this crate: a [`kind`](Error::kind) to match on, the
/// [operation](Error::operation) that failed, the [path](Error::path) it was
/// given if it took one, the numbers that made it fail, and the OS error
/// code where a system call failed.
///
/// `Display` gives all of that in one line: the operation, the path, what
/// went wrong with its numbers, then the OS error in parentheses (and, for
/// a read-only descriptor given to `attach_fd`, what to call instead), for
/// example `attach /dev/shm/seg: file is owned by uid 1000, not 0 (our
/// effective uid)` or `read_at: access out of bounds: 8 bytes at offset
/// 4096, accessible length 4096`. [`source`](std::error::Error::source) is
/// the [`std::io::Error`] of the OS error code, if there is one.
///
/// `Debug` gives the kind, the operation, the path and the numbers as
/// fields, then that same line as `message` (as [`std::io::Error`]'s
/// `Debug` carries its message), so a `main` returning
/// `Result<(), Box<dyn std::error::Error>>`, which prints `Debug`, shows
/// the option that would allow what was refused.
///
/// Converts into [`std::io::Error`] with [`ErrorKind::io_kind`]; the original
/// is recoverable from it with `get_ref()` and `downcast_ref::<Error>()`.
///
/// An `Error` is one pointer wide, and so is `Result<()>`: the details are
/// in one heap allocation made when the error is created, so only failures
/// allocate.
///
/// ```
/// # #[cfg(miri)] fn main() {} // Miri cannot open files.
/// # #[cfg(not(miri))] fn main() {
/// use shm_region::{Error, ErrorKind, MmapRegion};
/// let err = MmapRegion::attach("/dev/null").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotRegularFile);
/// assert_eq!(err.to_string(), "attach /dev/null: not a regular file: a character device");
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
/// let back = io.get_ref().unwrap().downcast_ref::<Error>().unwrap();
/// assert_eq!(back.kind(), ErrorKind::NotRegularFile);
/// assert_eq!(back.path(), Some(std::path::Path::new("/dev/null")));
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    op: &'static str,
    path: Option<PathBuf>,
    os: Option<OsError>,
    detail: Detail,
}

/// The OS error behind an [`Error`]: its code, and the `io::Error` made from
/// it that `source()` lends out. Cloned and compared by the code.
struct OsError {
    code: i32,
    // `io::Error` is not unwind-safe because it can hold any error type;
    // this one only ever holds an OS error code (`from_raw_os_error`),
    // which has no state a panic could leave half-updated. Wrapping it
    // keeps `Error` as unwind-safe as it was when it held the code alone.
    error: AssertUnwindSafe<io::Error>,
}

impl OsError {
    fn new(code: i32) -> Self {
        Self {
            code,
            error: AssertUnwindSafe(io::Error::from_raw_os_error(code)),
        }
    }
}

impl Clone for OsError {
    fn clone(&self) -> Self {
        Self::new(self.code)
    }
}

impl PartialEq for OsError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
    }
}

impl Eq for OsError {}

/// What made an operation fail, with its numbers, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Nothing beyond the kind.
    None,
    /// A sentence that replaces the kind's description.
    Reason(&'static str),
    /// `InvalidSize`: the size asked for.
    Size { requested: usize },
    /// `FileTooLarge`: the size and the limit it is past.
    TooLarge { size: u64, limit: Limit },
    /// `NotRegularFile`: what the file is instead.
    FileType(&'static str),
    /// `UntrustedOwner`: the file's owner and our effective uid.
    Owner { uid: u32, euid: u32 },
    /// `InsecureMode`: the file's permission bits.
    Mode { mode: u32 },
    /// `HardLinked`: the file's link count.
    Links { count: u64 },
    /// `ShrinkRefused`: the mapped length and the size asked for.
    Shrink { current: usize, requested: usize },
    /// `Truncated`: the mapped length and the file's size now.
    Truncated { mapped: usize, file: u64 },
    /// `Truncated`: the access, the offset from which the handle has no
    /// file under the mapping, how it learnt that, and the range the caller
    /// asked for when the access was only a part of it (`for_each_chunk`).
    Cut {
        offset: usize,
        len: usize,
        cut: usize,
        by: CutBy,
        asked: Option<(usize, usize)>,
    },
    /// `OutOfBounds`: the access and the length it must fit in.
    Bounds {
        offset: usize,
        len: usize,
        accessible: usize,
    },
    /// `Misaligned`: the offset and the alignment it lacks.
    Align { offset: usize, align: usize },
    /// `NotFound`: the directory part of the path does not exist.
    MissingParent,
    /// `ReadOnly`: `attach_fd` was given a descriptor open read-only.
    ReadOnlyDescriptor,
    /// `InvalidOrdering`: the ordering asked for.
    Ordering(Ordering),
    /// `LockLimit`: the bytes that could not be locked.
    Lock { len: usize },
    /// `OutOfMemory`: the bytes of memory asked for.
    Memory { len: usize },
    /// `SigbusRegistry`: the mapping's size and the registry's slots.
    Registry { size: usize, slots: usize },
    /// `ExtraDescriptors`: how many descriptors arrived (at least that many
    /// if the control message was cut) and how many were asked for.
    Descriptors {
        received: usize,
        cut: bool,
        max: usize,
    },
    /// `MessageTruncated`: the buffer the message did not fit in.
    Message { buf: usize },
    /// `Os` (`EMFILE`): the kernel installed only `received` descriptors of
    /// a message although the buffer had room for more; the descriptor
    /// limit (`RLIMIT_NOFILE`) when it was read.
    NotInstalled { received: usize, limit: Option<u64> },
    /// `NotSealed`: the seals missing (`F_SEAL_*` bits), all of which
    /// `what` requires.
    MissingSeals { missing: u32, what: &'static str },
    /// `Sealed`: why, and the file's seals (`F_SEAL_*` bits).
    SealedBy { reason: &'static str, seals: u32 },
    /// `UnexpectedEof`: the bytes read before the end of input, of `len`.
    Eof { done: usize, len: usize },
    /// `Unsupported`: a sealed file of `size` bytes with a hole at `offset`.
    // Only `Frozen` (Linux and Android) refuses holes.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Holes { offset: u64, size: u64 },
    /// `NotEventfd`: the descriptor's number and what it is instead.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    NotEventfd { fd: i32, found: &'static str },
    /// `NotEventfd`: the descriptor is an eventfd in semaphore mode.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    SemaphoreEventfd { fd: i32 },
}

/// How a handle learnt that its file ends before an access, for
/// [`Detail::Cut`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CutBy {
    /// A contained `SIGBUS` replaced the mapping's pages from the cut on.
    Sigbus,
    /// A truncation found earlier (by `check_and_remap`, a descriptor call
    /// or a contained `SIGBUS` of another mapping) lowered the handle's
    /// truncation limit to the cut.
    Seen,
}

/// The `F_SEAL_*` bits as names, joined by `" | "` (`"none"` for 0).
struct SealNames(u32);

impl fmt::Display for SealNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 6] = [
            (0x1, "F_SEAL_SEAL"),
            (0x2, "F_SEAL_SHRINK"),
            (0x4, "F_SEAL_GROW"),
            (0x8, "F_SEAL_WRITE"),
            (0x10, "F_SEAL_FUTURE_WRITE"),
            (0x20, "F_SEAL_EXEC"),
        ];
        let mut first = true;
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                f.write_str(if first { "" } else { " | " })?;
                f.write_str(name)?;
                first = false;
            }
        }
        let unknown = self.0 & !0x3f;
        if unknown != 0 {
            write!(f, "{}{unknown:#x}", if first { "" } else { " | " })?;
            first = false;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// The limit a size is past, for [`ErrorKind::FileTooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// [`MmapOptions::max_size`](crate::MmapOptions::max_size).
    MaxSize(usize),
    /// `isize::MAX`, the most one mapping can hold.
    Mappable,
    /// A quarter of the address space this process had left (the bytes
    /// given), the most a file may take without an explicit `max_size`.
    AddressSpaceShare(usize),
    /// The share of the address space (`cap` bytes: a part of the user
    /// address space or of what a finite `RLIMIT_AS` leaves) that the
    /// mappings of files of one origin made without an explicit `max_size`
    /// may map together ([`unbounded_cap`](crate::map::unbounded_cap)).
    UnboundedShare {
        cap: usize,
        origin: crate::map::Origin,
    },
    /// The file-size limit, `RLIMIT_FSIZE`.
    FileSize(u64),
    /// `mmap` failed with `ENOMEM`: no address space or mapping slots left.
    AddressSpace,
    /// The length of the region being frozen: a peer grew its file past it,
    /// and `freeze` would allocate (and map) all of that. Only `freeze`
    /// (Linux and Android) gives it.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    GrownPast(usize),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn build(kind: ErrorKind, op: &'static str, code: Option<i32>, detail: Detail) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                op,
                path: None,
                os: code.map(OsError::new),
                detail,
            }),
        }
    }

    pub(crate) fn new(kind: ErrorKind, op: &'static str) -> Self {
        Self::build(kind, op, None, Detail::None)
    }

    /// An error from a system call, classified by its errno.
    pub(crate) fn os(op: &'static str, errno: rustix::io::Errno) -> Self {
        use rustix::io::Errno;
        let kind = match errno {
            Errno::EXIST => ErrorKind::AlreadyExists,
            Errno::NOENT => ErrorKind::NotFound,
            Errno::NOSPC | Errno::DQUOT => ErrorKind::StorageFull,
            _ => ErrorKind::Os,
        };
        Self::with_errno(kind, op, errno)
    }

    pub(crate) fn with_errno(kind: ErrorKind, op: &'static str, errno: rustix::io::Errno) -> Self {
        Self::build(kind, op, Some(errno.raw_os_error()), Detail::None)
    }

    /// This error, naming `path` (the path the failed operation was given).
    pub(crate) fn with_path(mut self, path: &Path) -> Self {
        self.inner.path = Some(path.to_path_buf());
        self
    }

    /// This error, reported as a failure of `op` (an operation built on
    /// another, such as `create_shm` on `create`).
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        allow(dead_code, reason = "off Linux shm names do not go through paths")
    )]
    pub(crate) fn in_operation(mut self, op: &'static str) -> Self {
        self.inner.op = op;
        self
    }

    /// This error, described by `reason` instead of its kind's description.
    pub(crate) fn because(mut self, reason: &'static str) -> Self {
        self.inner.detail = Detail::Reason(reason);
        self
    }

    /// [`ErrorKind::InvalidSize`] for `requested` bytes.
    pub(crate) fn invalid_size(op: &'static str, requested: usize) -> Self {
        Self::build(ErrorKind::InvalidSize, op, None, Detail::Size { requested })
    }

    /// This error, caused by the OS error `errno`.
    pub(crate) fn with_errno_of(mut self, errno: rustix::io::Errno) -> Self {
        self.inner.os = Some(OsError::new(errno.raw_os_error()));
        self
    }

    /// [`ErrorKind::FileTooLarge`]: `size` bytes are past `limit`.
    pub(crate) fn too_large(op: &'static str, size: impl TryInto<u64>, limit: Limit) -> Self {
        // A size past `u64` (none on supported targets) saturates.
        let size = size.try_into().unwrap_or(u64::MAX);
        Self::build(
            ErrorKind::FileTooLarge,
            op,
            None,
            Detail::TooLarge { size, limit },
        )
    }

    /// [`ErrorKind::FileTooLarge`] for a file of `size` bytes that cannot
    /// be mapped: past `isize::MAX`, or else past `max_size`.
    pub(crate) fn too_large_to_map(op: &'static str, size: u64, max_size: Option<usize>) -> Self {
        let mappable = usize::try_from(size).is_ok_and(|n| isize::try_from(n).is_ok());
        let limit = match max_size {
            Some(max) if mappable => Limit::MaxSize(max),
            _ => Limit::Mappable,
        };
        Self::too_large(op, size, limit)
    }

    /// [`ErrorKind::NotRegularFile`] for a file of `st_mode` `mode`.
    pub(crate) fn not_regular(op: &'static str, mode: rustix::fs::RawMode) -> Self {
        use rustix::fs::FileType;
        let what = match FileType::from_raw_mode(mode) {
            FileType::Directory => "a directory",
            FileType::Symlink => "a symbolic link",
            FileType::Fifo => "a FIFO",
            FileType::Socket => "a socket",
            FileType::CharacterDevice => "a character device",
            FileType::BlockDevice => "a block device",
            _ => "of an unknown type",
        };
        Self::build(ErrorKind::NotRegularFile, op, None, Detail::FileType(what))
    }

    /// [`ErrorKind::UntrustedOwner`]: the file is owned by `uid`, we run as
    /// `euid`.
    pub(crate) fn untrusted_owner(op: &'static str, uid: u32, euid: u32) -> Self {
        Self::build(
            ErrorKind::UntrustedOwner,
            op,
            None,
            Detail::Owner { uid, euid },
        )
    }

    /// [`ErrorKind::InsecureMode`] for a file of `st_mode` `mode`.
    pub(crate) fn insecure_mode(op: &'static str, mode: impl Into<u32>) -> Self {
        let mode = mode.into() & 0o7777;
        Self::build(ErrorKind::InsecureMode, op, None, Detail::Mode { mode })
    }

    /// [`ErrorKind::HardLinked`] for a file with `links` names.
    pub(crate) fn hard_linked(op: &'static str, links: impl Into<u64>) -> Self {
        let count = links.into();
        Self::build(ErrorKind::HardLinked, op, None, Detail::Links { count })
    }

    /// [`ErrorKind::ShrinkRefused`]: `requested` bytes are fewer than the
    /// `current` length.
    pub(crate) fn shrink_refused(op: &'static str, current: usize, requested: usize) -> Self {
        let detail = Detail::Shrink { current, requested };
        Self::build(ErrorKind::ShrinkRefused, op, None, detail)
    }

    /// [`ErrorKind::Truncated`]: `mapped` bytes are mapped, the file has
    /// `file` bytes now.
    pub(crate) fn truncated(op: &'static str, mapped: usize, file: u64) -> Self {
        let detail = Detail::Truncated { mapped, file };
        Self::build(ErrorKind::Truncated, op, None, detail)
    }

    /// [`ErrorKind::Truncated`]: `len` bytes at `offset` reach pages that a
    /// contained `SIGBUS` replaced, from offset `cut` on.
    pub(crate) fn cut(op: &'static str, offset: usize, len: usize, cut: usize) -> Self {
        let detail = Detail::Cut {
            offset,
            len,
            cut,
            by: CutBy::Sigbus,
            asked: None,
        };
        Self::build(ErrorKind::Truncated, op, None, detail)
    }

    /// [`ErrorKind::Truncated`]: `len` bytes at `offset` reach past `limit`,
    /// where the handle found the file truncated earlier.
    pub(crate) fn past_truncation(
        op: &'static str,
        offset: usize,
        len: usize,
        limit: usize,
    ) -> Self {
        let detail = Detail::Cut {
            offset,
            len,
            cut: limit,
            by: CutBy::Seen,
            asked: None,
        };
        Self::build(ErrorKind::Truncated, op, None, detail)
    }

    /// Records, in a truncation error about a part of a larger access, the
    /// `len` bytes at `offset` the caller asked for (nothing changes for
    /// other errors, or when the part is the whole).
    pub(crate) fn within(mut self, offset: usize, len: usize) -> Self {
        if let Detail::Cut {
            offset: at,
            len: n,
            asked,
            ..
        } = &mut self.inner.detail
        {
            if (*at, *n) != (offset, len) {
                *asked = Some((offset, len));
            }
        }
        self
    }

    /// [`ErrorKind::OutOfBounds`]: `len` bytes at `offset` are not within
    /// `accessible` bytes.
    pub(crate) fn out_of_bounds(
        op: &'static str,
        offset: usize,
        len: usize,
        accessible: usize,
    ) -> Self {
        let detail = Detail::Bounds {
            offset,
            len,
            accessible,
        };
        Self::build(ErrorKind::OutOfBounds, op, None, detail)
    }

    /// [`ErrorKind::Misaligned`]: `offset` is not a multiple of `align`.
    pub(crate) fn misaligned(op: &'static str, offset: usize, align: usize) -> Self {
        let detail = Detail::Align { offset, align };
        Self::build(ErrorKind::Misaligned, op, None, detail)
    }

    /// [`ErrorKind::NotFound`] for a path whose directory does not exist.
    pub(crate) fn missing_parent(op: &'static str, errno: rustix::io::Errno) -> Self {
        let code = Some(errno.raw_os_error());
        Self::build(ErrorKind::NotFound, op, code, Detail::MissingParent)
    }

    /// [`ErrorKind::ReadOnly`]: a descriptor open read-only was to be mapped
    /// writable (`mmap` said `errno`).
    pub(crate) fn read_only_descriptor(op: &'static str, errno: rustix::io::Errno) -> Self {
        let code = Some(errno.raw_os_error());
        Self::build(ErrorKind::ReadOnly, op, code, Detail::ReadOnlyDescriptor)
    }

    /// [`ErrorKind::InvalidOrdering`]: `order` was asked of a load.
    pub(crate) fn invalid_ordering(op: &'static str, order: Ordering) -> Self {
        let detail = Detail::Ordering(order);
        Self::build(ErrorKind::InvalidOrdering, op, None, detail)
    }

    /// [`ErrorKind::LockLimit`]: `len` bytes could not be locked (`mlock`
    /// said `errno`).
    /// `NotSealed`: the file lacks the seals `missing`, which `what` (the
    /// option or operation) requires.
    pub(crate) fn missing_seals(op: &'static str, missing: u32, what: &'static str) -> Self {
        Self::build(
            ErrorKind::NotSealed,
            op,
            None,
            Detail::MissingSeals { missing, what },
        )
    }

    /// [`ErrorKind::Unsupported`]: the sealed file of `size` bytes has a
    /// hole at `offset` (`Frozen` refuses sparse files).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(crate) fn holes(op: &'static str, offset: u64, size: u64) -> Self {
        Self::build(
            ErrorKind::Unsupported,
            op,
            None,
            Detail::Holes { offset, size },
        )
    }

    /// `Sealed`: `reason`, with the file's seals.
    pub(crate) fn sealed(op: &'static str, reason: &'static str, seals: u32) -> Self {
        Self::build(
            ErrorKind::Sealed,
            op,
            None,
            Detail::SealedBy { reason, seals },
        )
    }

    pub(crate) fn lock_limit(op: &'static str, len: usize, errno: rustix::io::Errno) -> Self {
        let code = Some(errno.raw_os_error());
        Self::build(ErrorKind::LockLimit, op, code, Detail::Lock { len })
    }

    /// [`ErrorKind::OutOfMemory`]: the memory for an in-memory region of
    /// `len` bytes (and its capacity) could not be had: `mmap` said `errno` (`ENOMEM`, kept as the OS error), or
    /// `len` rounded to pages is past `isize::MAX` (`EINVAL`, no OS error).
    pub(crate) fn out_of_memory(op: &'static str, len: usize, errno: rustix::io::Errno) -> Self {
        let code = (errno != rustix::io::Errno::INVAL).then(|| errno.raw_os_error());
        Self::build(ErrorKind::OutOfMemory, op, code, Detail::Memory { len })
    }

    /// [`ErrorKind::SigbusRegistry`]: the registry, now of `slots` slots,
    /// could not grow for a mapping of `size` bytes.
    pub(crate) fn sigbus_registry(op: &'static str, size: usize, slots: usize) -> Self {
        Self::build(
            ErrorKind::SigbusRegistry,
            op,
            None,
            Detail::Registry { size, slots },
        )
    }

    /// [`ErrorKind::ExtraDescriptors`]: `received` descriptors arrived
    /// (more than that if `cut`, the control message being truncated) where
    /// at most `max` were asked for.
    pub(crate) fn extra_descriptors(
        op: &'static str,
        received: usize,
        cut: bool,
        max: usize,
    ) -> Self {
        let detail = Detail::Descriptors { received, cut, max };
        Self::build(ErrorKind::ExtraDescriptors, op, None, detail)
    }

    /// [`ErrorKind::Os`] (`EMFILE`): `MSG_CTRUNC` although the control
    /// buffer had room for more than the `received` descriptors: the kernel
    /// stopped installing them (no free descriptor under `RLIMIT_NOFILE`,
    /// or a security module refused one) and closed the rest.
    pub(crate) fn descriptors_not_installed(op: &'static str, received: usize) -> Self {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        Self::build(
            ErrorKind::Os,
            op,
            Some(rustix::io::Errno::MFILE.raw_os_error()),
            Detail::NotInstalled { received, limit },
        )
    }

    /// [`ErrorKind::MessageTruncated`]: a message did not fit in `buf`
    /// bytes.
    pub(crate) fn message_truncated(op: &'static str, buf: usize) -> Self {
        Self::build(
            ErrorKind::MessageTruncated,
            op,
            None,
            Detail::Message { buf },
        )
    }

    /// [`ErrorKind::UnexpectedEof`]: the input ended after `done` of the
    /// `len` bytes asked for.
    pub(crate) fn unexpected_eof(op: &'static str, done: usize, len: usize) -> Self {
        Self::build(
            ErrorKind::UnexpectedEof,
            op,
            None,
            Detail::Eof { done, len },
        )
    }

    /// [`ErrorKind::NotEventfd`]: descriptor `fd` is `found` (`"a pipe or
    /// FIFO"`, `"a socket"`, ...) instead.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(crate) fn not_eventfd(op: &'static str, fd: i32, found: &'static str) -> Self {
        let detail = Detail::NotEventfd { fd, found };
        Self::build(ErrorKind::NotEventfd, op, None, detail)
    }

    /// [`ErrorKind::NotEventfd`]: descriptor `fd` is an eventfd in
    /// semaphore mode.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(crate) fn semaphore_eventfd(op: &'static str, fd: i32) -> Self {
        let detail = Detail::SemaphoreEventfd { fd };
        Self::build(ErrorKind::NotEventfd, op, None, detail)
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The [`std::io::ErrorKind`] this error converts to. For
    /// [`ErrorKind::Os`] it is the kind the OS error code maps to.
    #[must_use]
    pub fn io_kind(&self) -> io::ErrorKind {
        match (self.inner.kind, &self.inner.os) {
            (ErrorKind::Os, Some(os)) => os.error.kind(),
            (kind, _) => kind.io_kind(),
        }
    }

    /// The OS error code behind this error, if a system call failed.
    #[must_use]
    pub fn raw_os_error(&self) -> Option<i32> {
        self.inner.os.as_ref().map(|os| os.code)
    }

    /// The operation that failed, for messages (for example `"create"`).
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.inner.op
    }

    /// The path the failed operation was given: `Some` for the operations
    /// that take one (`create`, `stage`, `attach`, `attach_read_only`, on
    /// [`MmapRegion`](crate::MmapRegion) and
    /// [`MmapOptions`](crate::MmapOptions)) and for
    /// [`Staged::publish`](crate::Staged::publish) and
    /// [`publish_replace`](crate::Staged::publish_replace) (the path
    /// published at); `None` for every other operation, which works on a
    /// descriptor, a mapping or process memory.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }
}

/// The part of the message after the operation and path.
struct Describe<'a>(&'a Inner);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.detail {
            Detail::None => f.write_str(self.0.kind.describe()),
            Detail::Reason(reason) => f.write_str(reason),
            Detail::Size { requested: 0 } => f.write_str("size 0 is invalid: a region is never empty"),
            Detail::Size { requested } => write!(
                f,
                "size {requested} is too large to map (over isize::MAX or the largest file offset)"
            ),
            Detail::TooLarge { size, limit } => match limit {
                Limit::MaxSize(max) => write!(f, "size {size} is past max_size {max}"),
                Limit::Mappable => write!(
                    f,
                    "size {size} is past isize::MAX ({}), the most a mapping can hold",
                    isize::MAX
                ),
                Limit::FileSize(limit) => write!(
                    f,
                    "size {size} is past the file-size limit {limit} (RLIMIT_FSIZE)"
                ),
                Limit::AddressSpace => write!(
                    f,
                    "no address space or mapping slots left to map {size} bytes"
                ),
                Limit::AddressSpaceShare(left) => write!(
                    f,
                    "size {size} is past a quarter of the {left} bytes of address space left"
                ),
                Limit::GrownPast(len) => write!(
                    f,
                    "the file is {size} bytes, past the region's {len}: a holder grew it, and \
                     freezing it would allocate every page of that"
                ),
                Limit::UnboundedShare { cap, origin } => {
                    use crate::map::Origin;
                    let (what, part) = match origin {
                        Origin::Created => ("regions this process created", "a quarter"),
                        Origin::Named => ("files attached by path or name", "an eighth"),
                        Origin::Received => ("files received by descriptor", "an eighth"),
                    };
                    write!(
                        f,
                        "mapping {size} bytes would take the mappings of {what} made without a \
                         max_size past {cap} bytes, {part} of the address space, together"
                    )
                }
            },
            Detail::FileType(what) => write!(f, "not a regular file: {what}"),
            Detail::Owner { uid, euid } => write!(
                f,
                "file is owned by uid {uid}, not {euid} (our effective uid)"
            ),
            Detail::Mode { mode } => write!(
                f,
                "file is writable by group or others (mode {mode:04o})"
            ),
            Detail::Links { count } => write!(f, "file has {count} hard links, not 1"),
            Detail::Shrink { current, requested } => write!(
                f,
                "cannot shrink from {current} to {requested} bytes: a region can only grow"
            ),
            Detail::Truncated { mapped, file } => write!(
                f,
                "file was truncated below the mapped length {mapped} (it is {file} bytes now)"
            ),
            Detail::Cut {
                offset,
                len,
                cut,
                by,
                asked,
            } => {
                write!(f, "{len} bytes at offset {offset}")?;
                if let Some((asked_offset, asked_len)) = asked {
                    write!(
                        f,
                        " (of the {asked_len} bytes at offset {asked_offset} asked for)"
                    )?;
                }
                match by {
                    CutBy::Sigbus => write!(
                        f,
                        " reach pages the file lost under the mapping (a contained SIGBUS; gone from offset {cut})"
                    ),
                    CutBy::Seen => write!(
                        f,
                        " reach past offset {cut}, where this handle found the file truncated"
                    ),
                }
            }
            Detail::Bounds {
                offset,
                len,
                accessible,
            } => write!(
                f,
                "access out of bounds: {len} bytes at offset {offset}, accessible length {accessible}"
            ),
            Detail::Align { offset, align } => write!(
                f,
                "misaligned atomic access: offset {offset} is not a multiple of {align}"
            ),
            Detail::MissingParent => f.write_str("parent directory does not exist"),
            Detail::ReadOnlyDescriptor => f.write_str("descriptor is open read-only, not read-write"),
            Detail::Ordering(order) => write!(f, "{order:?} is not an ordering a load can use"),
            Detail::Lock { len } => write!(
                f,
                "cannot lock {len} bytes in memory (RLIMIT_MEMLOCK, or no privilege to lock)"
            ),
            Detail::Descriptors {
                received,
                cut: false,
                max,
            } => write!(
                f,
                "message carried {received} descriptors, more than the {max} asked for (all closed)"
            ),
            Detail::Descriptors {
                received,
                cut: true,
                max,
            } => write!(
                f,
                "message carried more than {received} descriptors (control message truncated), more than the {max} asked for (all closed)"
            ),
            Detail::NotInstalled { received, limit } => {
                write!(
                    f,
                    "the kernel installed only {received} of the message's descriptors and closed the rest, with room for more in the buffer: no free descriptor under the limit (RLIMIT_NOFILE "
                )?;
                match limit {
                    Some(n) => write!(f, "{n}")?,
                    None => f.write_str("unlimited")?,
                }
                f.write_str("), or a security module refused one (all received closed)")
            }
            Detail::Message { buf } => write!(
                f,
                "message was longer than the {buf}-byte buffer and was cut (its descriptors were closed)"
            ),
            Detail::MissingSeals { missing, what } => write!(
                f,
                "descriptor is not sealed with {} ({what})",
                SealNames(missing)
            ),
            Detail::SealedBy { reason, seals } => {
                write!(f, "{reason} (the file's seals: {})", SealNames(seals))
            }
            Detail::Holes { offset, size } => write!(
                f,
                "the sealed file of {size} bytes has a hole at offset {offset} (reading a hole allocates memory, and raises SIGBUS if that is refused): write every page (or read it once through a shared mapping, after fallocate) before sealing the file"
            ),
            Detail::Eof { done, len } => write!(
                f,
                "end of input after {done} of {len} bytes"
            ),
            Detail::Memory { len } => write!(
                f,
                "cannot get the memory for an in-memory region of {len} bytes and its capacity (more than the address space, RLIMIT_AS, RLIMIT_DATA or the commit limit allow); ask for a smaller size or capacity"
            ),
            Detail::NotEventfd { fd, found } => write!(
                f,
                "descriptor {fd} is not an eventfd: it is {found} (closed)"
            ),
            Detail::SemaphoreEventfd { fd } => write!(
                f,
                "descriptor {fd} is an eventfd in semaphore mode (EFD_SEMAPHORE): each read takes one ring, so rings would not coalesce (closed)"
            ),
            Detail::Registry { size, slots } => write!(
                f,
                "the SIGBUS registry ({slots} slots, all in use) cannot grow: no memory for more slots, so {size} bytes cannot be mapped with containment (drop mappings first)"
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &*self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &e.kind).field("op", &e.op);
        if let Some(path) = &e.path {
            d.field("path", path);
        }
        match e.detail {
            // The message says what these say.
            Detail::None
            | Detail::Reason(_)
            | Detail::MissingParent
            | Detail::ReadOnlyDescriptor => {}
            Detail::FileType(what) => {
                d.field("file_type", &what);
            }
            Detail::Size { requested } => {
                d.field("requested", &requested);
            }
            Detail::TooLarge { size, limit } => {
                d.field("size", &size);
                match limit {
                    Limit::MaxSize(max) => d.field("max_size", &max),
                    Limit::Mappable => d.field("limit", &isize::MAX),
                    Limit::AddressSpaceShare(left) => d.field("address_space_left", &left),
                    Limit::UnboundedShare { cap, origin } => {
                        d.field("unbounded_share", &cap).field("origin", &origin)
                    }
                    Limit::FileSize(limit) => d.field("rlimit_fsize", &limit),
                    Limit::AddressSpace => &mut d,
                    Limit::GrownPast(len) => d.field("region_len", &len),
                };
            }
            Detail::Owner { uid, euid } => {
                d.field("uid", &uid).field("euid", &euid);
            }
            Detail::Mode { mode } => {
                d.field("mode", &format_args!("{mode:#o}"));
            }
            Detail::Links { count } => {
                d.field("links", &count);
            }
            Detail::Shrink { current, requested } => {
                d.field("current", &current).field("requested", &requested);
            }
            Detail::Truncated { mapped, file } => {
                d.field("mapped", &mapped).field("file_len", &file);
            }
            Detail::Cut {
                offset,
                len,
                cut,
                by,
                asked,
            } => {
                d.field("offset", &offset).field("len", &len);
                match by {
                    CutBy::Sigbus => d.field("cut", &cut),
                    CutBy::Seen => d.field("truncated_at", &cut),
                };
                if let Some((asked_offset, asked_len)) = asked {
                    d.field("asked_offset", &asked_offset)
                        .field("asked_len", &asked_len);
                }
            }
            Detail::Bounds {
                offset,
                len,
                accessible,
            } => {
                d.field("offset", &offset)
                    .field("len", &len)
                    .field("accessible_len", &accessible);
            }
            Detail::Align { offset, align } => {
                d.field("offset", &offset).field("align", &align);
            }
            Detail::Ordering(order) => {
                d.field("ordering", &order);
            }
            Detail::Lock { len } | Detail::Memory { len } => {
                d.field("len", &len);
            }
            Detail::Descriptors { received, cut, max } => {
                d.field("received", &received)
                    .field("control_truncated", &cut)
                    .field("max_fds", &max);
            }
            Detail::Message { buf } => {
                d.field("buf_len", &buf);
            }
            Detail::NotInstalled { received, limit } => {
                d.field("received", &received)
                    .field("rlimit_nofile", &limit);
            }
            Detail::MissingSeals { missing, .. } => {
                d.field("missing_seals", &format_args!("{}", SealNames(missing)));
            }
            Detail::SealedBy { seals, .. } => {
                d.field("seals", &format_args!("{}", SealNames(seals)));
            }
            Detail::Eof { done, len } => {
                d.field("done", &done).field("len", &len);
            }
            Detail::Holes { offset, size } => {
                d.field("hole_at", &offset).field("size", &size);
            }
            Detail::Registry { size, slots } => {
                d.field("size", &size).field("slots", &slots);
            }
            Detail::NotEventfd { fd, found } => {
                d.field("fd", &fd).field("found", &found);
            }
            Detail::SemaphoreEventfd { fd } => {
                d.field("fd", &fd)
                    .field("reason", &format_args!("{}", Describe(e)));
            }
        }
        if let Some(os) = &e.os {
            d.field("os", &*os.error);
        }
        // The one-line message, hint included, as `std::io::Error`'s `Debug`
        // carries its message: `fn main() -> Result<(), Box<dyn Error>>`
        // prints `Debug`.
        d.field("message", &self.to_string());
        d.finish()
    }
}

/// The operation name of [`Frozen::attach_fd`](crate::Frozen::attach_fd).
pub(crate) const FROZEN_ATTACH: &str = "Frozen::attach_fd";

/// The call or option that would allow what was refused, for the end of
/// the message: every refusal an option can lift names it.
fn way_out(op: &str, detail: &Detail) -> Option<&'static str> {
    match detail {
        // A `Frozen` made by `Frozen::attach_fd` takes no options.
        Detail::TooLarge {
            limit: Limit::AddressSpaceShare(_) | Limit::UnboundedShare { .. },
            ..
        } if op == FROZEN_ATTACH => Some(
            "Frozen::attach_fd takes no max_size: MmapOptions::max_size with \
             attach_fd_read_only maps it as a region",
        ),
        Detail::ReadOnlyDescriptor => Some("use attach_fd_read_only to map it read-only"),
        Detail::TooLarge {
            limit: Limit::GrownPast(_),
            ..
        } => Some(
            "check_and_remap follows the growth (within MmapOptions::max_size), then freeze \
             freezes the file at its new size",
        ),
        Detail::Owner { .. } => Some("MmapOptions::allow_other_owner(true) accepts it"),
        Detail::Mode { .. } => Some("MmapOptions::allow_group_or_other_write(true) accepts it"),
        Detail::Links { .. } => Some("MmapOptions::allow_hard_links(true) accepts it"),
        Detail::TooLarge {
            limit: Limit::MaxSize(_),
            ..
        } => Some("a larger MmapOptions::max_size allows it"),
        Detail::TooLarge {
            limit: Limit::AddressSpaceShare(_) | Limit::UnboundedShare { .. },
            ..
        } => Some("an explicit MmapOptions::max_size allows it"),
        _ => None,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &*self.inner;
        f.write_str(e.op)?;
        if let Some(path) = &e.path {
            write!(f, " {}", path.display())?;
        }
        write!(f, ": {}", Describe(e))?;
        if let Some(os) = &e.os {
            write!(f, " ({})", *os.error)?;
        }
        if let Some(way_out) = way_out(e.op, &e.detail) {
            write!(f, "; {way_out}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    /// The [`std::io::Error`] of the OS error code, if a system call failed.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .os
            .as_ref()
            .map(|os| &*os.error as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(e.io_kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    #[test]
    fn errno_classification_gives_matchable_kinds() {
        assert_eq!(
            Error::os("x", Errno::EXIST).kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(Error::os("x", Errno::NOENT).kind(), ErrorKind::NotFound);
        assert_eq!(Error::os("x", Errno::NOSPC).kind(), ErrorKind::StorageFull);
        assert_eq!(Error::os("x", Errno::DQUOT).kind(), ErrorKind::StorageFull);
        let other = Error::os("x", Errno::ACCESS);
        assert_eq!(other.kind(), ErrorKind::Os);
        assert_eq!(other.io_kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(other.raw_os_error(), Some(Errno::ACCESS.raw_os_error()));
    }

    #[test]
    fn conversion_into_io_error_keeps_kind_and_inner_error() {
        let cases = [
            (ErrorKind::InvalidSize, io::ErrorKind::InvalidInput),
            (ErrorKind::AlreadyExists, io::ErrorKind::AlreadyExists),
            (ErrorKind::NotFound, io::ErrorKind::NotFound),
            (ErrorKind::EmptyFile, io::ErrorKind::InvalidData),
            (ErrorKind::Truncated, io::ErrorKind::InvalidData),
            (ErrorKind::UntrustedOwner, io::ErrorKind::PermissionDenied),
            (ErrorKind::InsecureMode, io::ErrorKind::PermissionDenied),
            (ErrorKind::HardLinked, io::ErrorKind::PermissionDenied),
            (ErrorKind::OutOfBounds, io::ErrorKind::InvalidInput),
            (ErrorKind::Misaligned, io::ErrorKind::InvalidInput),
            (ErrorKind::ShrinkRefused, io::ErrorKind::InvalidInput),
            (ErrorKind::StorageFull, io::ErrorKind::StorageFull),
            (ErrorKind::Unsupported, io::ErrorKind::Unsupported),
            (ErrorKind::NotSealed, io::ErrorKind::PermissionDenied),
            (ErrorKind::ReadOnly, io::ErrorKind::PermissionDenied),
            (ErrorKind::MissingDescriptor, io::ErrorKind::InvalidData),
            (ErrorKind::ExtraDescriptors, io::ErrorKind::InvalidData),
            (ErrorKind::MessageTruncated, io::ErrorKind::InvalidData),
            (ErrorKind::InvalidOrdering, io::ErrorKind::InvalidInput),
            (ErrorKind::LockLimit, io::ErrorKind::OutOfMemory),
            (ErrorKind::Sealed, io::ErrorKind::PermissionDenied),
            (ErrorKind::Busy, io::ErrorKind::ResourceBusy),
            (ErrorKind::UnexpectedEof, io::ErrorKind::UnexpectedEof),
            (ErrorKind::OutOfMemory, io::ErrorKind::OutOfMemory),
            (ErrorKind::SigbusRegistry, io::ErrorKind::OutOfMemory),
            (ErrorKind::NotEventfd, io::ErrorKind::InvalidInput),
            (ErrorKind::NotConnected, io::ErrorKind::NotConnected),
        ];
        for (kind, io_kind) in cases {
            let e: io::Error = Error::new(kind, "op").into();
            assert_eq!(e.kind(), io_kind, "{kind:?}");
            let inner = e.get_ref().unwrap().downcast_ref::<Error>().unwrap();
            assert_eq!(inner.kind(), kind);
        }
    }

    #[test]
    fn seal_messages_name_each_seal_and_unknown_bits() {
        assert_eq!(
            Error::missing_seals("op", 0x8 | 0x4, "needed").to_string(),
            "op: descriptor is not sealed with F_SEAL_GROW | F_SEAL_WRITE (needed)"
        );
        assert_eq!(
            Error::sealed("op", "why", 0x3f | 0x40).to_string(),
            "op: why (the file's seals: F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC | 0x40)"
        );
        assert_eq!(
            Error::sealed("op", "why", 0).to_string(),
            "op: why (the file's seals: none)"
        );
        let e = Error::sealed("op", "why", 0x40);
        assert_eq!(e.kind(), ErrorKind::Sealed);
        assert_eq!(e.to_string(), "op: why (the file's seals: 0x40)");
        assert!(format!("{e:?}").contains("seals: 0x40"));
    }

    #[test]
    fn display_names_operation_kind_and_os_error() {
        assert_eq!(
            Error::os("resize", Errno::NOSPC).to_string(),
            format!(
                "resize: no space left for the region ({})",
                io::Error::from_raw_os_error(Errno::NOSPC.raw_os_error())
            )
        );
        let e = Error::os("resize", Errno::NOSPC);
        let s = e.to_string();
        assert!(
            s.starts_with("resize: no space left for the region ("),
            "{s}"
        );
        assert_eq!(
            Error::new(ErrorKind::EmptyFile, "attach").to_string(),
            "attach: file is empty"
        );
    }

    #[test]
    fn error_and_unit_result_are_one_pointer_wide_and_at_most_16_bytes() {
        use std::mem::size_of;
        assert_eq!(size_of::<Error>(), size_of::<usize>());
        assert_eq!(size_of::<Result<()>>(), size_of::<usize>());
        assert!(size_of::<Error>() <= 16);
        assert!(size_of::<Result<()>>() <= 16);
    }

    #[test]
    fn error_is_send_sync_unwind_safe_and_static() {
        fn check<T: Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe + 'static>() {}
        check::<Error>();
    }

    #[test]
    fn display_gives_each_detail_with_its_numbers() {
        use rustix::fs::FileType;
        let nomem = io::Error::from_raw_os_error(Errno::NOMEM.raw_os_error());
        let perm = io::Error::from_raw_os_error(Errno::PERM.raw_os_error());
        let cases = [
            (Error::invalid_size("create", 0), "create: size 0 is invalid: a region is never empty".to_owned()),
            (
                Error::invalid_size("create", usize::MAX),
                format!("create: size {} is too large to map (over isize::MAX or the largest file offset)", usize::MAX),
            ),
            (
                Error::too_large("resize", 9000_u64, Limit::MaxSize(8192)),
                "resize: size 9000 is past max_size 8192; a larger MmapOptions::max_size allows it".to_owned(),
            ),
            (
                Error::too_large("attach_fd", 1_u64 << 46, Limit::AddressSpaceShare(1 << 47)),
                "attach_fd: size 70368744177664 is past a quarter of the 140737488355328 bytes of \
                 address space left; an explicit MmapOptions::max_size allows it"
                    .to_owned(),
            ),
            (
                Error::too_large(
                    "attach_fd",
                    1_u64 << 40,
                    Limit::UnboundedShare { cap: 1 << 44, origin: crate::map::Origin::Received },
                ),
                "attach_fd: mapping 1099511627776 bytes would take the mappings of files \
                 received by descriptor made without a max_size past 17592186044416 bytes, an \
                 eighth of the address space, together; an explicit MmapOptions::max_size \
                 allows it"
                    .to_owned(),
            ),
            (
                Error::too_large(
                    "create",
                    1_u64 << 40,
                    Limit::UnboundedShare { cap: 1 << 45, origin: crate::map::Origin::Created },
                ),
                "create: mapping 1099511627776 bytes would take the mappings of regions this \
                 process created made without a max_size past 35184372088832 bytes, a quarter \
                 of the address space, together; an explicit MmapOptions::max_size allows it"
                    .to_owned(),
            ),
            (
                Error::too_large(
                    "attach",
                    1_u64 << 40,
                    Limit::UnboundedShare { cap: 1 << 44, origin: crate::map::Origin::Named },
                ),
                "attach: mapping 1099511627776 bytes would take the mappings of files attached \
                 by path or name made without a max_size past 17592186044416 bytes, an eighth \
                 of the address space, together; an explicit MmapOptions::max_size allows it"
                    .to_owned(),
            ),
            (
                Error::too_large(
                    FROZEN_ATTACH,
                    1_u64 << 40,
                    Limit::UnboundedShare { cap: 1 << 44, origin: crate::map::Origin::Received },
                ),
                "Frozen::attach_fd: mapping 1099511627776 bytes would take the mappings of files \
                 received by descriptor made without a max_size past 17592186044416 bytes, an \
                 eighth of the address space, together; Frozen::attach_fd takes no max_size: \
                 MmapOptions::max_size with attach_fd_read_only maps it as a region"
                    .to_owned(),
            ),
            (
                Error::too_large(FROZEN_ATTACH, 1_u64 << 46, Limit::AddressSpaceShare(1 << 47)),
                "Frozen::attach_fd: size 70368744177664 is past a quarter of the \
                 140737488355328 bytes of address space left; Frozen::attach_fd takes no \
                 max_size: MmapOptions::max_size with attach_fd_read_only maps it as a region"
                    .to_owned(),
            ),
            (
                Error::too_large("attach", u64::MAX, Limit::Mappable),
                format!(
                    "attach: size {} is past isize::MAX ({}), the most a mapping can hold",
                    u64::MAX,
                    isize::MAX
                ),
            ),
            (
                Error::too_large("resize", 1_usize << 20, Limit::FileSize(65536)),
                "resize: size 1048576 is past the file-size limit 65536 (RLIMIT_FSIZE)".to_owned(),
            ),
            (
                Error::too_large("resize", 1_u64 << 40, Limit::AddressSpace).with_errno_of(Errno::NOMEM),
                format!("resize: no address space or mapping slots left to map 1099511627776 bytes ({nomem})"),
            ),
            (
                Error::untrusted_owner("attach_fd", 1000, 0),
                "attach_fd: file is owned by uid 1000, not 0 (our effective uid); MmapOptions::allow_other_owner(true) accepts it".to_owned(),
            ),
            (
                Error::insecure_mode("attach_fd", 0o100_666_u32),
                "attach_fd: file is writable by group or others (mode 0666); MmapOptions::allow_group_or_other_write(true) accepts it".to_owned(),
            ),
            (
                Error::insecure_mode("attach_fd", 0o102_022_u32),
                "attach_fd: file is writable by group or others (mode 2022); MmapOptions::allow_group_or_other_write(true) accepts it".to_owned(),
            ),
            (Error::hard_linked("peer", 3_u64), "peer: file has 3 hard links, not 1; MmapOptions::allow_hard_links(true) accepts it".to_owned()),
            (
                Error::shrink_refused("resize", 8192, 0),
                "resize: cannot shrink from 8192 to 0 bytes: a region can only grow".to_owned(),
            ),
            (
                Error::truncated("check_and_remap", 8192, 0),
                "check_and_remap: file was truncated below the mapped length 8192 (it is 0 bytes now)".to_owned(),
            ),
            (
                Error::out_of_bounds("read_at", 1, 2, 3),
                "read_at: access out of bounds: 2 bytes at offset 1, accessible length 3".to_owned(),
            ),
            (
                Error::misaligned("atomic_u32", 6, 4),
                "atomic_u32: misaligned atomic access: offset 6 is not a multiple of 4".to_owned(),
            ),
            (
                Error::invalid_ordering("load_u32", Ordering::AcqRel),
                "load_u32: AcqRel is not an ordering a load can use".to_owned(),
            ),
            (
                Error::lock_limit("resize", 65536, Errno::PERM),
                format!("resize: cannot lock 65536 bytes in memory (RLIMIT_MEMLOCK, or no privilege to lock) ({perm})"),
            ),
            (
                Error::new(ErrorKind::Unsupported, "attach").because("file is on hugetlbfs"),
                "attach: file is on hugetlbfs".to_owned(),
            ),
            (
                Error::not_regular("attach_fd", FileType::Socket.as_raw_mode()),
                "attach_fd: not a regular file: a socket".to_owned(),
            ),
            (
                Error::not_regular("attach_fd", FileType::CharacterDevice.as_raw_mode()),
                "attach_fd: not a regular file: a character device".to_owned(),
            ),
            (
                Error::not_regular("attach_fd", FileType::BlockDevice.as_raw_mode()),
                "attach_fd: not a regular file: a block device".to_owned(),
            ),
            (
                Error::not_regular("fdpass::recv", FileType::Directory.as_raw_mode()),
                "fdpass::recv: not a regular file: a directory".to_owned(),
            ),
            (
                Error::not_regular("attach_fd", FileType::Symlink.as_raw_mode()),
                "attach_fd: not a regular file: a symbolic link".to_owned(),
            ),
            (
                Error::not_regular("attach_fd", FileType::Fifo.as_raw_mode()),
                "attach_fd: not a regular file: a FIFO".to_owned(),
            ),
            (Error::not_regular("attach_fd", 0), "attach_fd: not a regular file: of an unknown type".to_owned()),
            (
                Error::unexpected_eof("read_exact_from_fd", 4096, 65536),
                "read_exact_from_fd: end of input after 4096 of 65536 bytes".to_owned(),
            ),
            (
                Error::new(ErrorKind::ExtraDescriptors, "fdpass::recv"),
                "fdpass::recv: message carried more than one descriptor".to_owned(),
            ),
            (
                Error::extra_descriptors("fdpass::recv_with", 3, false, 2),
                "fdpass::recv_with: message carried 3 descriptors, more than the 2 asked for (all closed)".to_owned(),
            ),
            (
                Error::extra_descriptors("fdpass::recv_with", 4, true, 3),
                "fdpass::recv_with: message carried more than 4 descriptors (control message truncated), more than the 3 asked for (all closed)".to_owned(),
            ),
            (
                Error::message_truncated("fdpass::recv_with", 4),
                "fdpass::recv_with: message was longer than the 4-byte buffer and was cut (its descriptors were closed)".to_owned(),
            ),
        ];
        for (e, expected) in cases {
            assert_eq!(e.to_string(), expected, "{e:?}");
        }
    }

    #[test]
    fn debug_names_the_kind_operation_path_numbers_os_error_and_message() {
        assert_eq!(
            format!("{:?}", Error::new(ErrorKind::EmptyFile, "attach")),
            r#"Error { kind: EmptyFile, op: "attach", message: "attach: file is empty" }"#
        );
        assert_eq!(
            format!(
                "{:?}",
                Error::too_large("create", 10_u64, Limit::MaxSize(5)).with_path(Path::new("/x"))
            ),
            r#"Error { kind: FileTooLarge, op: "create", path: "/x", size: 10, max_size: 5, message: "create /x: size 10 is past max_size 5; a larger MmapOptions::max_size allows it" }"#
        );
        assert_eq!(
            format!(
                "{:?}",
                Error::too_large("attach", 10_u64, Limit::AddressSpaceShare(20))
            ),
            r#"Error { kind: FileTooLarge, op: "attach", size: 10, address_space_left: 20, message: "attach: size 10 is past a quarter of the 20 bytes of address space left; an explicit MmapOptions::max_size allows it" }"#
        );
        assert_eq!(
            format!("{:?}", Error::too_large("attach", 10_u64, Limit::Mappable)),
            format!(
                r#"Error {{ kind: FileTooLarge, op: "attach", size: 10, limit: {m}, message: "attach: size 10 is past isize::MAX ({m}), the most a mapping can hold" }}"#,
                m = isize::MAX
            )
        );
        assert_eq!(
            format!(
                "{:?}",
                Error::too_large("resize", 10_u64, Limit::FileSize(5))
            ),
            r#"Error { kind: FileTooLarge, op: "resize", size: 10, rlimit_fsize: 5, message: "resize: size 10 is past the file-size limit 5 (RLIMIT_FSIZE)" }"#
        );
        let nomem = io::Error::from_raw_os_error(Errno::NOMEM.raw_os_error());
        assert_eq!(
            format!(
                "{:?}",
                Error::too_large("resize", 10_u64, Limit::AddressSpace).with_errno_of(Errno::NOMEM)
            ),
            format!(
                r#"Error {{ kind: FileTooLarge, op: "resize", size: 10, os: {nomem:?}, message: "resize: no address space or mapping slots left to map 10 bytes ({nomem})" }}"#,
            )
        );
        assert_eq!(
            format!("{:?}", Error::untrusted_owner("attach_fd", 1000, 0)),
            r#"Error { kind: UntrustedOwner, op: "attach_fd", uid: 1000, euid: 0, message: "attach_fd: file is owned by uid 1000, not 0 (our effective uid); MmapOptions::allow_other_owner(true) accepts it" }"#
        );
        assert_eq!(
            format!(
                "{:?}",
                Error::insecure_mode("attach_shm", 0o100_666_u32)
                    .with_path(Path::new("/dev/shm/seg"))
            ),
            r#"Error { kind: InsecureMode, op: "attach_shm", path: "/dev/shm/seg", mode: 0o666, message: "attach_shm /dev/shm/seg: file is writable by group or others (mode 0666); MmapOptions::allow_group_or_other_write(true) accepts it" }"#
        );
        assert_eq!(
            format!("{:?}", Error::hard_linked("attach_fd", 2_u64)),
            r#"Error { kind: HardLinked, op: "attach_fd", links: 2, message: "attach_fd: file has 2 hard links, not 1; MmapOptions::allow_hard_links(true) accepts it" }"#
        );
        let perm = io::Error::from_raw_os_error(Errno::PERM.raw_os_error());
        assert_eq!(
            format!("{:?}", Error::lock_limit("create", 4096, Errno::PERM)),
            format!(
                r#"Error {{ kind: LockLimit, op: "create", len: 4096, os: {perm:?}, message: "create: cannot lock 4096 bytes in memory (RLIMIT_MEMLOCK, or no privilege to lock) ({perm})" }}"#,
            )
        );
        assert_eq!(
            format!(
                "{:?}",
                Error::new(ErrorKind::Unsupported, "x").because("why \"quoted\"")
            ),
            r#"Error { kind: Unsupported, op: "x", message: "x: why \"quoted\"" }"#
        );
        assert_eq!(
            format!(
                "{:?}",
                Error::cut("for_each_chunk", 16384, 16384, 20000).within(0, 65536)
            ),
            r#"Error { kind: Truncated, op: "for_each_chunk", offset: 16384, len: 16384, cut: 20000, asked_offset: 0, asked_len: 65536, message: "for_each_chunk: 16384 bytes at offset 16384 (of the 65536 bytes at offset 0 asked for) reach pages the file lost under the mapping (a contained SIGBUS; gone from offset 20000)" }"#
        );
        assert_eq!(
            format!("{:?}", Error::past_truncation("read_at", 8192, 8, 4096)),
            r#"Error { kind: Truncated, op: "read_at", offset: 8192, len: 8, truncated_at: 4096, message: "read_at: 8 bytes at offset 8192 reach past offset 4096, where this handle found the file truncated" }"#
        );
    }

    #[test]
    fn source_is_the_os_error_and_none_without_one() {
        let e = Error::os("attach", Errno::ACCESS);
        let source = std::error::Error::source(&e).unwrap();
        let io = source.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.raw_os_error(), Some(Errno::ACCESS.raw_os_error()));
        let e = Error::too_large("x", 1_u64, Limit::AddressSpace).with_errno_of(Errno::NOMEM);
        assert_eq!(e.raw_os_error(), Some(Errno::NOMEM.raw_os_error()));
        let source = std::error::Error::source(&e).unwrap();
        assert_eq!(
            source.downcast_ref::<io::Error>().unwrap().raw_os_error(),
            Some(Errno::NOMEM.raw_os_error())
        );
        assert!(std::error::Error::source(&Error::new(ErrorKind::EmptyFile, "x")).is_none());
        assert!(std::error::Error::source(&Error::out_of_bounds("x", 1, 1, 1)).is_none());
    }

    #[test]
    fn clones_are_equal_and_any_difference_is_unequal() {
        let base = Error::os("attach", Errno::ACCESS).with_path(Path::new("/a"));
        assert_eq!(base.clone(), base);
        assert_eq!(
            base.clone().raw_os_error(),
            Some(Errno::ACCESS.raw_os_error())
        );
        assert_eq!(base.clone().to_string(), base.to_string());
        assert_ne!(
            base,
            Error::os("attach", Errno::PERM).with_path(Path::new("/a"))
        );
        assert_ne!(
            base,
            Error::os("attach", Errno::ACCESS).with_path(Path::new("/b"))
        );
        assert_ne!(base, Error::os("attach", Errno::ACCESS));
        assert_ne!(
            base,
            Error::os("create", Errno::ACCESS).with_path(Path::new("/a"))
        );
        assert_ne!(Error::misaligned("x", 4, 8), Error::misaligned("x", 2, 8));
        assert_ne!(
            Error::new(ErrorKind::Unsupported, "x").because("a"),
            Error::new(ErrorKind::Unsupported, "x")
        );
    }

    #[test]
    fn too_large_to_map_names_isize_max_or_max_size() {
        let over = u64::try_from(isize::MAX).unwrap() + 1;
        assert_eq!(
            Error::too_large_to_map("attach", over, Some(4096)),
            Error::too_large("attach", over, Limit::Mappable)
        );
        assert_eq!(
            Error::too_large_to_map("attach", 8192, Some(4096)),
            Error::too_large("attach", 8192_u64, Limit::MaxSize(4096))
        );
        assert_eq!(
            Error::too_large_to_map("attach", 8192, None),
            Error::too_large("attach", 8192_u64, Limit::Mappable)
        );
    }

    #[test]
    fn with_path_puts_the_path_after_the_operation() {
        let e = Error::new(ErrorKind::EmptyFile, "attach").with_path(Path::new("/dev/shm/x"));
        assert_eq!(e.path(), Some(Path::new("/dev/shm/x")));
        assert_eq!(e.to_string(), "attach /dev/shm/x: file is empty");
        assert_eq!(Error::new(ErrorKind::EmptyFile, "attach").path(), None);
    }
}
