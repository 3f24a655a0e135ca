//! Files by path on Windows: exclusive creation, the checks `attach` makes
//! of what it opened, sizes, and removal through the handle. The system
//! calls are in `sys/windows/file.rs` and `security.rs`; the portable code
//! calls [`file_len`] and [`is_open_read_only`] by the names it uses on
//! Unix (`map.rs`).

use std::os::windows::io::{AsHandle, BorrowedHandle, OwnedHandle};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::options::MmapOptions;
use crate::sys::windows::file::{self, FileFacts};
use crate::sys::windows::security::{self, ObjectKind};
use crate::sys::Errno;

/// A length as a file size: every `usize` fits a `u64` on Windows targets.
pub(crate) fn file_len(len: usize, op: &'static str) -> Result<u64> {
    u64::try_from(len).map_err(|_| Error::invalid_size(op, len))
}

/// Whether the handle was opened without write access. The crate opens
/// every file it maps writable with write access, so a writable mapping
/// of a read-only handle never happens: `false`.
pub(crate) fn is_open_read_only(_file: crate::sys::BorrowedFile<'_>) -> bool {
    false
}

/// The error of a failed call on `path`, by its Win32 code.
fn path_error(op: &'static str, path: &Path, e: &std::io::Error) -> Error {
    let errno = Errno::of(e);
    let err = match errno {
        Errno::EXIST | Errno::ALREADY_EXISTS => {
            Error::with_errno(ErrorKind::AlreadyExists, op, errno)
        }
        Errno::NOENT => Error::with_errno(ErrorKind::NotFound, op, errno),
        Errno::NOPATH => Error::missing_parent(op, errno),
        Errno::ACCESS if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) => {
            Error::not_regular_file(op, "a directory")
        }
        _ => Error::os(op, errno),
    };
    err.with_path(path)
}

/// Creates `path` exclusively (`CREATE_NEW`: an existing name, a
/// reparse point included, is `AlreadyExists`), with a security
/// descriptor that gives the current user (and SYSTEM) alone access.
pub(crate) fn create_new(path: &Path, op: &'static str) -> Result<OwnedHandle> {
    file::create_new_file(path, true).map_err(|e| path_error(op, path, &e))
}

/// Opens `path` without following a final reparse point.
pub(crate) fn open_existing(path: &Path, writable: bool, op: &'static str) -> Result<OwnedHandle> {
    file::open_existing_file(path, writable).map_err(|e| path_error(op, path, &e))
}

/// A handle with `DELETE` access to the file at `path`, if that is the
/// file `ours` is open on (same volume and file identifier): how a region
/// that attached a file takes ownership of it. `None` if the name now
/// holds another file, or cannot be opened so.
pub(crate) fn reopen_for_removal(path: &Path, ours: BorrowedHandle<'_>) -> Option<OwnedHandle> {
    let h = file::open_for_removal(path).ok()?;
    let (a, b) = (
        file::file_facts(ours).ok()?,
        file::file_facts(h.as_handle()).ok()?,
    );
    ((a.volume_serial, a.file_index) == (b.volume_serial, b.file_index)).then_some(h)
}

/// The facts of the open file.
fn facts(h: BorrowedHandle<'_>, op: &'static str) -> Result<FileFacts> {
    file::file_facts(h).map_err(|e| Error::os(op, Errno::of(&e)))
}

/// The file's size.
pub(crate) fn size_of(h: BorrowedHandle<'_>, op: &'static str) -> Result<u64> {
    facts(h, op).map(|f| f.size)
}

/// What `attach` checks of a file it opened, as on Unix: a disk file (not
/// a directory, a reparse point, a device or a pipe), not empty, not
/// marked for deletion, one name (unless `allow_hard_links`), owned by
/// the current user (unless `allow_other_owner`), and not writable by
/// others according to its DACL (unless `allow_group_or_other_write`).
/// Returns its size.
pub(crate) fn validate(
    options: &MmapOptions,
    h: BorrowedHandle<'_>,
    op: &'static str,
) -> Result<u64> {
    checks(options, h, true, op)
}

/// As [`validate`], for a handle this process already holds on its own
/// region (`peer`): a file marked for deletion (`FileCleanup::Auto`) is
/// accepted, as a Unix file with no name is.
pub(crate) fn validate_own(
    options: &MmapOptions,
    h: BorrowedHandle<'_>,
    op: &'static str,
) -> Result<u64> {
    checks(options, h, false, op)
}

fn checks(
    options: &MmapOptions,
    h: BorrowedHandle<'_>,
    refuse_delete_pending: bool,
    op: &'static str,
) -> Result<u64> {
    // First: a device or a pipe answers no further query as a file does.
    if !file::is_disk_file(h) {
        return Err(Error::not_regular_file(op, "a device or a pipe"));
    }
    let f = facts(h, op)?;
    if f.is_reparse_point {
        return Err(Error::not_regular_file(
            op,
            "a reparse point (a symbolic link or junction)",
        ));
    }
    if f.is_directory {
        return Err(Error::not_regular_file(op, "a directory"));
    }
    if !f.is_disk_file {
        return Err(Error::not_regular_file(op, "a device or a pipe"));
    }
    if refuse_delete_pending && f.delete_pending {
        return Err(Error::new(ErrorKind::NotFound, op).because("the file is marked for deletion"));
    }
    if !options.trust.allow_hard_links && f.links > 1 {
        return Err(Error::hard_linked(op, f.links));
    }
    check_trust(options, h, ObjectKind::File, op)?;
    if f.size == 0 {
        return Err(Error::new(ErrorKind::EmptyFile, op));
    }
    Ok(f.size)
}

/// Refuses an object another user owns (unless `allow_other_owner`) or
/// whose DACL lets others write it (unless `allow_group_or_other_write`).
pub(crate) fn check_trust(
    options: &MmapOptions,
    object: BorrowedHandle<'_>,
    kind: ObjectKind,
    op: &'static str,
) -> Result<()> {
    let os = |e: std::io::Error| Error::os(op, Errno::of(&e));
    if !options.trust.allow_other_owner
        && !security::owner_is_current_user(object, kind).map_err(os)?
    {
        return Err(Error::new(ErrorKind::UntrustedOwner, op)
            .because("another user owns it (MmapOptions::allow_other_owner allows that)"));
    }
    if !options.trust.allow_group_or_other_write
        && security::others_may_write(object, kind).map_err(os)?
    {
        return Err(Error::new(ErrorKind::InsecureMode, op).because(
            "its DACL lets users other than its owner and the system write it \
             (MmapOptions::allow_group_or_other_write allows that)",
        ));
    }
    Ok(())
}

/// Reserves disk for `len` bytes (the file's allocation size), so that a
/// full disk is an error now; the length does not change. Where the file
/// system takes no allocation size (`ERROR_CALL_NOT_IMPLEMENTED` or
/// `ERROR_INVALID_FUNCTION`: Wine 8, FAT), nothing is reserved here: the
/// end-of-file extension that follows ([`set_len`]) allocates the clusters
/// of a file that is not sparse (the crate never makes one sparse) on NTFS
/// and fails with `ERROR_DISK_FULL` when they are not there.
pub(crate) fn reserve(h: BorrowedHandle<'_>, len: u64, op: &'static str) -> Result<()> {
    match file::reserve_file(h, len).map_err(|e| Errno::of(&e)) {
        Ok(()) | Err(Errno::NOT_IMPLEMENTED | Errno::INVALID_FUNCTION) => Ok(()),
        Err(e @ (Errno::NOSPC | Errno::DQUOT)) => {
            Err(Error::with_errno(ErrorKind::StorageFull, op, e))
        }
        Err(e) => Err(Error::os(op, e)),
    }
}

/// Sets the file's length (end of file).
pub(crate) fn set_len(h: BorrowedHandle<'_>, len: u64, op: &'static str) -> Result<()> {
    file::set_file_len(h, len).map_err(|e| match Errno::of(&e) {
        e @ (Errno::NOSPC | Errno::DQUOT) => Error::with_errno(ErrorKind::StorageFull, op, e),
        e => Error::os(op, e),
    })
}

/// Marks the file open through `h` for deletion: it is the file this
/// handle created (never a name looked up again), and it disappears when
/// its last handle and view close.
pub(crate) fn remove(h: BorrowedHandle<'_>) -> std::io::Result<()> {
    file::delete_by_handle(h)
}
