//! Files by path: exclusive creation with an owner-only descriptor,
//! opening without following a final reparse point, facts, length,
//! reservation and deletion through the handle (invariants W1-W3, W9).

use std::ffi::OsString;
use std::io;
use std::mem::size_of;
use std::os::windows::ffi::OsStringExt;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::ptr;

use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FileAllocationInfo, FileDispositionInfo, FileEndOfFileInfo, FileIdInfo,
    FileStandardInfo, FlushFileBuffers, GetFileInformationByHandle, GetFileInformationByHandleEx,
    GetFileType, GetFinalPathNameByHandleW, SetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION,
    CREATE_NEW, DELETE, FILE_ALLOCATION_INFO, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_NORMAL,
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_DISPOSITION_INFO, FILE_END_OF_FILE_INFO,
    FILE_FLAG_OPEN_REPARSE_POINT, FILE_ID_INFO, FILE_INFO_BY_HANDLE_CLASS, FILE_SHARE_DELETE,
    FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_STANDARD_INFO, FILE_TYPE_DISK, OPEN_EXISTING,
    SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
};

use super::handle::{check, owned, wide};
use super::security::{ObjectKind, OwnerOnly};

/// Every handle shares reading, writing and deletion: peers open the file
/// while the creator holds it, and the creator deletes it through its
/// handle while peers hold theirs.
const SHARE: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

fn access(writable: bool, delete: bool) -> u32 {
    // GENERIC_READ includes READ_CONTROL (for the owner and DACL checks)
    // and FILE_READ_ATTRIBUTES (for `file_facts`).
    let mut a = GENERIC_READ;
    if writable {
        a |= GENERIC_WRITE;
    }
    if delete {
        a |= DELETE;
    }
    a
}

/// The flags of every open: the name's final reparse point is opened as
/// itself, and a named pipe the path may lead to may identify this process
/// but not impersonate it (`SECURITY_SQOS_PRESENT |
/// SECURITY_IDENTIFICATION`: without them a pipe's server gets
/// impersonation rights over the client).
const OPEN_FLAGS: u32 = FILE_ATTRIBUTE_NORMAL
    | FILE_FLAG_OPEN_REPARSE_POINT
    | SECURITY_SQOS_PRESENT
    | SECURITY_IDENTIFICATION;

/// Creates a new file at `path`, failing if any entry exists there
/// (`CREATE_NEW`: `ERROR_FILE_EXISTS`, 80, also for a symbolic link,
/// junction or other reparse point at the name, which is never followed).
///
/// The handle has `GENERIC_READ`, `DELETE` (for [`delete_by_handle`]) and,
/// if `writable`, `GENERIC_WRITE`; sharing is read, write and delete. The
/// file gets an owner-only security descriptor ([`OwnerOnly`]): owner the
/// current user; a protected DACL granting `FILE_ALL_ACCESS` to the
/// current user and to SYSTEM, nothing inherited from the folder.
///
/// Reparse points in the *parent* folders of `path` are followed, as
/// every Win32 path is resolved (the Unix counterpart, `O_NOFOLLOW`,
/// likewise guards only the last component). A caller that must know
/// where the file landed compares [`final_path`] of the handle with the
/// folder it meant.
///
/// # Errors
///
/// `InvalidInput` for a path with a NUL; otherwise the error of building
/// the descriptor or of `CreateFileW`, with its code.
pub fn create_new_file(path: &Path, writable: bool) -> io::Result<OwnedHandle> {
    let name = wide(path.as_os_str())?;
    let sd = OwnerOnly::new(ObjectKind::File)?;
    let sa = sd.attributes();
    // SAFETY: W2/W3/W5: `name` is NUL-terminated; `sa` points to the
    // descriptor `sd` keeps alive until after the call; no template handle.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            access(writable, true),
            SHARE,
            &sa,
            CREATE_NEW,
            OPEN_FLAGS,
            ptr::null_mut(),
        )
    };
    // SAFETY: W1/W9: `h` is what `CreateFileW` just returned.
    unsafe { owned(h) }
}

/// Opens an existing file at `path` (`OPEN_EXISTING`) with `GENERIC_READ`
/// and, if `writable`, `GENERIC_WRITE`; sharing read, write and delete.
///
/// `FILE_FLAG_OPEN_REPARSE_POINT`: a reparse point at the name (symbolic
/// link, junction) is opened as itself, not followed; its attributes then
/// say `FILE_ATTRIBUTE_REPARSE_POINT` ([`FileFacts::is_reparse_point`]),
/// and the caller refuses it. `FILE_FLAG_BACKUP_SEMANTICS` is not set, so
/// a directory fails to open (`ERROR_ACCESS_DENIED`, 5);
/// [`FileFacts::is_directory`] is the second guard. The caller also
/// refuses what is not a disk file ([`FileFacts::is_disk_file`]: a device
/// or pipe opened by a name such as `\\.\pipe\x`).
///
/// # Errors
///
/// `InvalidInput` for a path with a NUL; otherwise the error of
/// `CreateFileW`, with its code.
pub fn open_existing_file(path: &Path, writable: bool) -> io::Result<OwnedHandle> {
    open_with(path, access(writable, false))
}

/// Opens the existing file at `path` as [`open_existing_file`] does
/// (never following a final reparse point), with `GENERIC_READ` and
/// `DELETE`: the handle a region that takes ownership of a file it
/// attached removes it through, once [`file_facts`] showed it is the same
/// file.
///
/// # Errors
///
/// As [`open_existing_file`] (`ERROR_ACCESS_DENIED` if the file's DACL
/// does not grant `DELETE`).
pub fn open_for_removal(path: &Path) -> io::Result<OwnedHandle> {
    open_with(path, access(false, true))
}

fn open_with(path: &Path, access: u32) -> io::Result<OwnedHandle> {
    let name = wide(path.as_os_str())?;
    // SAFETY: W2/W3: `name` is NUL-terminated; default security (none is
    // created), no template handle.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            SHARE,
            ptr::null(),
            OPEN_EXISTING,
            OPEN_FLAGS,
            ptr::null_mut(),
        )
    };
    // SAFETY: W1/W9: `h` is what `CreateFileW` just returned.
    unsafe { owned(h) }
}

/// What the system says about an open file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// The file's length in bytes (end of file).
    pub size: u64,
    /// `FILE_ATTRIBUTE_*` bits.
    pub attributes: u32,
    /// `FILE_ATTRIBUTE_DIRECTORY` is set.
    pub is_directory: bool,
    /// `FILE_ATTRIBUTE_REPARSE_POINT` is set (a symbolic link, junction or
    /// other reparse point opened as itself).
    pub is_reparse_point: bool,
    /// `GetFileType` says `FILE_TYPE_DISK` (not a character device, pipe
    /// or unknown).
    pub is_disk_file: bool,
    /// Number of hard links.
    pub links: u32,
    /// The volume's serial number.
    pub volume_serial: u64,
    /// The file's identifier on its volume: the 128-bit `FILE_ID_INFO`
    /// identifier where the file system gives one, else the 64-bit index
    /// of `BY_HANDLE_FILE_INFORMATION`. With `volume_serial` it names the
    /// file.
    pub file_index: u128,
    /// The file is marked for deletion (it disappears when the last handle
    /// closes).
    pub delete_pending: bool,
}

/// Reads a fixed-size `GetFileInformationByHandleEx` class into `T`.
///
/// # Safety
///
/// `T` is the structure the system writes for `class`, and all-zero bytes
/// are a valid `T`.
unsafe fn info_ex<T>(h: BorrowedHandle<'_>, class: FILE_INFO_BY_HANDLE_CLASS) -> io::Result<T> {
    // SAFETY: all-zero bytes are a valid `T` (this function's contract).
    let mut out: T = unsafe { std::mem::zeroed() };
    let len = u32::try_from(size_of::<T>()).map_err(io::Error::other)?;
    let p: *mut T = &mut out;
    // SAFETY: W1/W2: the handle is borrowed, so open; `p` is a live local
    // of `len` bytes, of the type the class writes (this function's
    // contract).
    check(unsafe { GetFileInformationByHandleEx(h.as_raw_handle(), class, p.cast(), len) })?;
    Ok(out)
}

/// Whether the open handle is a disk file (`GetFileType` says
/// `FILE_TYPE_DISK`), asked before anything else of a handle `attach`
/// opened: a device or a pipe answers no further query as a file does.
pub fn is_disk_file(h: BorrowedHandle<'_>) -> bool {
    file_type(h) == FILE_TYPE_DISK
}

fn file_type(h: BorrowedHandle<'_>) -> u32 {
    // SAFETY: W1: open borrowed handle; `GetFileType` only reads it.
    unsafe { GetFileType(h.as_raw_handle()) }
}

/// The facts of an open file.
///
/// # Errors
///
/// The error of `GetFileInformationByHandle` or of
/// `GetFileInformationByHandleEx(FileStandardInfo)`, with its code (the
/// handle needs `FILE_READ_ATTRIBUTES`, which `GENERIC_READ` includes).
pub fn file_facts(h: BorrowedHandle<'_>) -> io::Result<FileFacts> {
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: W1/W2: open borrowed handle; `info` a live local of the type
    // the call writes.
    check(unsafe { GetFileInformationByHandle(h.as_raw_handle(), &mut info) })?;
    // SAFETY: `FILE_STANDARD_INFO` is what `FileStandardInfo` writes;
    // all-zero is a valid one (integers and `false`).
    let standard: FILE_STANDARD_INFO = unsafe { info_ex(h, FileStandardInfo) }?;
    // SAFETY: `FILE_ID_INFO` is what `FileIdInfo` writes; all-zero is a
    // valid one (integers and a byte array).
    let id: io::Result<FILE_ID_INFO> = unsafe { info_ex(h, FileIdInfo) };
    let file_type = file_type(h);
    let index64 = (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow);
    let (volume_serial, file_index) = match id {
        Ok(id) if id.FileId.Identifier != [0; 16] => (
            id.VolumeSerialNumber,
            u128::from_le_bytes(id.FileId.Identifier),
        ),
        _ => (u64::from(info.dwVolumeSerialNumber), u128::from(index64)),
    };
    let size = u64::try_from(standard.EndOfFile).map_err(io::Error::other)?;
    let attributes = info.dwFileAttributes;
    Ok(FileFacts {
        size,
        attributes,
        is_directory: attributes & FILE_ATTRIBUTE_DIRECTORY != 0 || standard.Directory,
        is_reparse_point: attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0,
        is_disk_file: file_type == FILE_TYPE_DISK,
        links: info.nNumberOfLinks,
        volume_serial,
        file_index,
        delete_pending: standard.DeletePending,
    })
}

/// Sets a fixed-size `SetFileInformationByHandle` class from `value`.
///
/// # Safety
///
/// `T` is the structure the system reads for `class`.
unsafe fn set_info<T>(
    h: BorrowedHandle<'_>,
    class: FILE_INFO_BY_HANDLE_CLASS,
    value: &T,
) -> io::Result<()> {
    let len = u32::try_from(size_of::<T>()).map_err(io::Error::other)?;
    let p: *const T = value;
    // SAFETY: W1/W2: open borrowed handle; `p` points to a live `T` of
    // `len` bytes, the type the class reads (this function's contract).
    check(unsafe { SetFileInformationByHandle(h.as_raw_handle(), class, p.cast(), len) })
}

/// Sets the file's length (end of file) to `len`, growing with zeros or
/// shrinking. Shrinking below a part of the file some process has mapped
/// fails with `ERROR_USER_MAPPED_FILE` (1224) on Windows.
///
/// # Errors
///
/// `InvalidInput` if `len` exceeds `i64::MAX`; the error of
/// `SetFileInformationByHandle(FileEndOfFileInfo)`, with its code (the
/// handle needs `FILE_WRITE_DATA`).
pub fn set_file_len(h: BorrowedHandle<'_>, len: u64) -> io::Result<()> {
    let info = FILE_END_OF_FILE_INFO {
        EndOfFile: i64::try_from(len).map_err(|_| too_long(len))?,
    };
    // SAFETY: `FILE_END_OF_FILE_INFO` is what `FileEndOfFileInfo` reads.
    unsafe { set_info(h, FileEndOfFileInfo, &info) }
}

/// Reserves `len` bytes of disk for the file (its allocation size), so
/// that a full disk is an error now rather than when a page is written
/// back. Does not change the file's length.
///
/// # Errors
///
/// `InvalidInput` if `len` exceeds `i64::MAX`; the error of
/// `SetFileInformationByHandle(FileAllocationInfo)`, with its code
/// (`ERROR_DISK_FULL`, 112, when the volume lacks the space).
pub fn reserve_file(h: BorrowedHandle<'_>, len: u64) -> io::Result<()> {
    let info = FILE_ALLOCATION_INFO {
        AllocationSize: i64::try_from(len).map_err(|_| too_long(len))?,
    };
    // SAFETY: `FILE_ALLOCATION_INFO` is what `FileAllocationInfo` reads.
    unsafe { set_info(h, FileAllocationInfo, &info) }
}

/// Marks the file open through `h` for deletion: its name disappears when
/// the last handle to it closes (until then new opens fail with
/// `ERROR_ACCESS_DENIED`). It acts on the file the handle refers to,
/// whatever now lies at its former path.
///
/// # Errors
///
/// The error of `SetFileInformationByHandle(FileDispositionInfo)`, with
/// its code (the handle needs `DELETE`, which [`create_new_file`] asks
/// for).
pub fn delete_by_handle(h: BorrowedHandle<'_>) -> io::Result<()> {
    let info = FILE_DISPOSITION_INFO { DeleteFile: true };
    // SAFETY: `FILE_DISPOSITION_INFO` is what `FileDispositionInfo` reads.
    unsafe { set_info(h, FileDispositionInfo, &info) }
}

/// Writes the file's cached data and metadata to the disk
/// (`FlushFileBuffers`).
///
/// # Errors
///
/// The error of `FlushFileBuffers`, with its code (the handle needs
/// `GENERIC_WRITE`).
pub fn flush_file(h: BorrowedHandle<'_>) -> io::Result<()> {
    // SAFETY: W1: open borrowed handle.
    check(unsafe { FlushFileBuffers(h.as_raw_handle()) })
}

#[cfg_attr(
    not(test),
    allow(dead_code, reason = "used by the tests of `sys::windows`")
)]
/// The normalised path of the open file, as `GetFinalPathNameByHandleW`
/// gives it (`\\?\C:\...`): where the file is, after every reparse point
/// in its folders was followed.
///
/// # Errors
///
/// The error of `GetFinalPathNameByHandleW`, with its code.
pub fn final_path(h: BorrowedHandle<'_>) -> io::Result<PathBuf> {
    let mut buf = vec![0u16; 512];
    loop {
        let cap = u32::try_from(buf.len()).map_err(io::Error::other)?;
        // SAFETY: W1/W2: open borrowed handle; `buf` holds `cap` `u16`s.
        let n = unsafe { GetFinalPathNameByHandleW(h.as_raw_handle(), buf.as_mut_ptr(), cap, 0) };
        let n = usize::try_from(n).map_err(io::Error::other)?;
        if n == 0 {
            return Err(io::Error::last_os_error());
        }
        if n < buf.len() {
            buf.truncate(n);
            return Ok(PathBuf::from(OsString::from_wide(&buf)));
        }
        // Too small: `n` is the length needed, terminating NUL included.
        buf.resize(n + 1, 0);
    }
}

fn too_long(len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a file length of {len} bytes exceeds Windows' limit of i64::MAX"),
    )
}
