//! The crate's error type: [`Error`], [`ErrorKind`] and [`Result`], the
//! accessors a caller uses and the conversion into [`std::io::Error`].
//!
//! The rest is crate-internal, one concern a file: `detail` (what made an
//! operation fail, with its numbers, and the [`Limit`] a size is past),
//! `construct` (the constructors the crate's operations build errors
//! with), `message` (`Display` and `Debug`: the one-line message and the
//! option that would allow a refused thing) and `tests`.

use std::io;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

mod construct;
mod detail;
mod message;
// The messages of every kind, with Unix errno values and file types.
#[cfg(all(test, unix))]
mod tests;

use detail::Detail;
pub(crate) use detail::Limit;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use message::FROZEN_ATTACH;

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
/// # #[cfg(any(miri, windows))] fn main() {} // Miri cannot open files; no /dev/null on Windows.
/// # #[cfg(not(any(miri, windows)))] fn main() {
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

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
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
