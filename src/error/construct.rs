//! The constructors the crate's operations build an [`Error`] with: one
//! per refusal, each taking the numbers its message gives.
#![cfg_attr(
    windows,
    allow(dead_code, reason = "constructors of errors only the Unix paths make")
)]

use std::path::Path;
use std::sync::atomic::Ordering;

use super::detail::{CutBy, Detail, Limit};
use super::{Error, ErrorKind, Inner, OsError};

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
    pub(crate) fn os(op: &'static str, errno: crate::sys::Errno) -> Self {
        use crate::sys::Errno;
        let kind = match errno {
            Errno::EXIST => ErrorKind::AlreadyExists,
            Errno::NOENT => ErrorKind::NotFound,
            Errno::NOSPC | Errno::DQUOT => ErrorKind::StorageFull,
            _ => ErrorKind::Os,
        };
        Self::with_errno(kind, op, errno)
    }

    pub(crate) fn with_errno(kind: ErrorKind, op: &'static str, errno: crate::sys::Errno) -> Self {
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
    pub(crate) fn with_errno_of(mut self, errno: crate::sys::Errno) -> Self {
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
    #[cfg(unix)]
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
        Self::not_regular_file(op, what)
    }

    /// [`ErrorKind::NotRegularFile`] for a file that is `what` ("a
    /// directory", ...).
    pub(crate) fn not_regular_file(op: &'static str, what: &'static str) -> Self {
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
    pub(crate) fn missing_parent(op: &'static str, errno: crate::sys::Errno) -> Self {
        let code = Some(errno.raw_os_error());
        Self::build(ErrorKind::NotFound, op, code, Detail::MissingParent)
    }

    /// [`ErrorKind::ReadOnly`]: a descriptor open read-only was to be mapped
    /// writable (`mmap` said `errno`).
    pub(crate) fn read_only_descriptor(op: &'static str, errno: crate::sys::Errno) -> Self {
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

    pub(crate) fn lock_limit(op: &'static str, len: usize, errno: crate::sys::Errno) -> Self {
        let code = Some(errno.raw_os_error());
        Self::build(ErrorKind::LockLimit, op, code, Detail::Lock { len })
    }

    /// [`ErrorKind::OutOfMemory`]: the memory for an in-memory region of
    /// `len` bytes (and its capacity) could not be had: `mmap` said `errno` (`ENOMEM`, kept as the OS error), or
    /// `len` rounded to pages is past `isize::MAX` (`EINVAL`, no OS error).
    pub(crate) fn out_of_memory(op: &'static str, len: usize, errno: crate::sys::Errno) -> Self {
        let code = (errno != crate::sys::Errno::INVAL).then(|| errno.raw_os_error());
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
    #[cfg(unix)]
    pub(crate) fn descriptors_not_installed(op: &'static str, received: usize) -> Self {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        Self::build(
            ErrorKind::Os,
            op,
            Some(crate::sys::Errno::MFILE.raw_os_error()),
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
}
