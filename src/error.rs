//! The crate's error type.

use std::fmt;
use std::io;

/// What went wrong, precisely enough to match on.
///
/// Each kind maps to one [`std::io::ErrorKind`] (see [`ErrorKind::io_kind`]),
/// which is what an [`Error`] becomes when converted into [`std::io::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The requested size is zero or larger than the platform can map
    /// (over `isize::MAX` or the largest file offset).
    InvalidSize,
    /// The path has no file name (`/`, `..`, empty).
    InvalidPath,
    /// Something already exists at the path; it was left untouched.
    AlreadyExists,
    /// Nothing exists at the path.
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
    /// left for it).
    ///
    /// [`MmapOptions::max_size`]: crate::MmapOptions::max_size
    FileTooLarge,
    /// The file belongs to another user (compared with the effective uid).
    UntrustedOwner,
    /// The file is writable by its group or by others.
    InsecureMode,
    /// The file has more than one name (hard link count above 1): someone
    /// who can write the directory may have linked a file of ours that was
    /// never meant to be shared.
    HardLinked,
    /// `resize` was asked to shrink the region.
    ShrinkRefused,
    /// The file is shorter than the mapped length: a peer truncated it.
    Truncated,
    /// An access reaches past the accessible length, or its offset overflows.
    OutOfBounds,
    /// An atomic access at an offset not aligned to its size.
    Misaligned,
    /// The region is mapped read-only.
    ReadOnly,
    /// The file system has no room (or the quota is exhausted).
    StorageFull,
    /// The operation is not available on this platform (for example sealed
    /// memfd regions off Linux, or atomic loads of read-only memory on a
    /// target where std does not guarantee them).
    Unsupported,
    /// A descriptor without `F_SEAL_SHRINK` where the options require it.
    NotSealed,
    /// A descriptor-passing message carried no descriptor.
    MissingDescriptor,
    /// A descriptor-passing message carried more than one descriptor (all
    /// were closed).
    ExtraDescriptors,
    /// A load was asked for with `Release` or `AcqRel` ordering.
    InvalidOrdering,
    /// `mlock` failed: the locked-memory limit (`RLIMIT_MEMLOCK`) or the
    /// privilege to lock was missing.
    LockLimit,
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
            | Self::InvalidOrdering => io::ErrorKind::InvalidInput,
            Self::AlreadyExists => io::ErrorKind::AlreadyExists,
            Self::NotFound => io::ErrorKind::NotFound,
            Self::EmptyFile
            | Self::FileTooLarge
            | Self::Truncated
            | Self::MissingDescriptor
            | Self::ExtraDescriptors => io::ErrorKind::InvalidData,
            Self::UntrustedOwner
            | Self::InsecureMode
            | Self::HardLinked
            | Self::ReadOnly
            | Self::NotSealed => io::ErrorKind::PermissionDenied,
            Self::StorageFull => io::ErrorKind::StorageFull,
            Self::Unsupported => io::ErrorKind::Unsupported,
            Self::LockLimit => io::ErrorKind::OutOfMemory,
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
            Self::MissingDescriptor => "message carried no descriptor",
            Self::ExtraDescriptors => "message carried more than one descriptor",
            Self::InvalidOrdering => "not an ordering a load can use",
            Self::LockLimit => "cannot lock the region in memory",
            Self::Os => "operating-system error",
        }
    }
}

/// An error from this crate: a [`kind`](Error::kind) to match on, the
/// operation that failed, and the OS error code where there was one.
///
/// Converts into [`std::io::Error`] with [`ErrorKind::io_kind`]; the original
/// is recoverable from it with `get_ref()` and `downcast_ref::<Error>()`.
///
/// ```
/// # #[cfg(miri)] fn main() {} // Miri cannot open files.
/// # #[cfg(not(miri))] fn main() {
/// use shm_region::{Error, ErrorKind, MmapRegion};
/// let err = MmapRegion::attach("/dev/null".as_ref()).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotRegularFile);
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
/// let back = io.get_ref().unwrap().downcast_ref::<Error>().unwrap();
/// assert_eq!(back.kind(), ErrorKind::NotRegularFile);
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    op: &'static str,
    errno: Option<i32>,
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: ErrorKind, op: &'static str) -> Self {
        Self {
            kind,
            op,
            errno: None,
        }
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
        Self {
            kind,
            op,
            errno: Some(errno.raw_os_error()),
        }
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The [`std::io::ErrorKind`] this error converts to. For
    /// [`ErrorKind::Os`] it is the kind the OS error code maps to.
    #[must_use]
    pub fn io_kind(&self) -> io::ErrorKind {
        match (self.kind, self.errno) {
            (ErrorKind::Os, Some(code)) => io::Error::from_raw_os_error(code).kind(),
            (kind, _) => kind.io_kind(),
        }
    }

    /// The OS error code behind this error, if a system call failed.
    #[must_use]
    pub fn raw_os_error(&self) -> Option<i32> {
        self.errno
    }

    /// The operation that failed, for messages (for example `"create"`).
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.op
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("op", &self.op);
        if let Some(code) = self.errno {
            d.field("os", &io::Error::from_raw_os_error(code));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.kind.describe())?;
        if let Some(code) = self.errno {
            write!(f, " ({})", io::Error::from_raw_os_error(code))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

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
            (ErrorKind::InvalidOrdering, io::ErrorKind::InvalidInput),
            (ErrorKind::LockLimit, io::ErrorKind::OutOfMemory),
        ];
        for (kind, io_kind) in cases {
            let e: io::Error = Error::new(kind, "op").into();
            assert_eq!(e.kind(), io_kind, "{kind:?}");
            let inner = e.get_ref().unwrap().downcast_ref::<Error>().unwrap();
            assert_eq!(inner.kind(), kind);
        }
    }

    #[test]
    fn display_names_operation_kind_and_os_error() {
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
}
