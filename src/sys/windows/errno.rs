//! [`Errno`] on Windows: a Win32 error code, with the constant names the
//! portable code uses for the situations it tells apart (`EXIST`,
//! `NOENT`, `NOSPC`, `INVAL`, `NOMEM`, ...), each the Win32 code Windows
//! reports in that situation.

use windows_sys::Win32::Foundation as w;

/// A Win32 error code (`GetLastError`), kept as the OS error of an
/// [`Error`](crate::Error): `std::io::Error::from_raw_os_error` of it
/// gives Windows' own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Errno(u32);

#[allow(
    dead_code,
    reason = "the names the portable code matches on, not all used on Windows"
)]
impl Errno {
    /// `ERROR_FILE_EXISTS`: `CreateFileW` with `CREATE_NEW` found a file.
    pub(crate) const EXIST: Self = Self(w::ERROR_FILE_EXISTS);
    /// `ERROR_ALREADY_EXISTS`: a named object of that name exists.
    pub(crate) const ALREADY_EXISTS: Self = Self(w::ERROR_ALREADY_EXISTS);
    /// `ERROR_FILE_NOT_FOUND`.
    pub(crate) const NOENT: Self = Self(w::ERROR_FILE_NOT_FOUND);
    /// `ERROR_PATH_NOT_FOUND`: a folder of the path does not exist.
    pub(crate) const NOPATH: Self = Self(w::ERROR_PATH_NOT_FOUND);
    /// `ERROR_SHARING_VIOLATION`: another handle's sharing mode refuses.
    pub(crate) const SHARING: Self = Self(w::ERROR_SHARING_VIOLATION);
    /// `ERROR_CALL_NOT_IMPLEMENTED`.
    pub(crate) const NOT_IMPLEMENTED: Self = Self(w::ERROR_CALL_NOT_IMPLEMENTED);
    /// `ERROR_INVALID_FUNCTION`.
    pub(crate) const INVALID_FUNCTION: Self = Self(w::ERROR_INVALID_FUNCTION);
    /// `ERROR_DISK_FULL`.
    pub(crate) const NOSPC: Self = Self(w::ERROR_DISK_FULL);
    /// `ERROR_HANDLE_DISK_FULL` (a quota or a full volume).
    pub(crate) const DQUOT: Self = Self(w::ERROR_HANDLE_DISK_FULL);
    /// `ERROR_INVALID_PARAMETER`.
    pub(crate) const INVAL: Self = Self(w::ERROR_INVALID_PARAMETER);
    /// `ERROR_NOT_ENOUGH_MEMORY`.
    pub(crate) const NOMEM: Self = Self(w::ERROR_NOT_ENOUGH_MEMORY);
    /// `ERROR_COMMITMENT_LIMIT`: the system's commit charge is spent.
    pub(crate) const COMMIT: Self = Self(w::ERROR_COMMITMENT_LIMIT);
    /// `ERROR_INVALID_HANDLE`: also what opening or creating a section
    /// says when an object of another type holds the name.
    pub(crate) const BADF: Self = Self(w::ERROR_INVALID_HANDLE);
    /// `ERROR_ACCESS_DENIED`.
    pub(crate) const ACCESS: Self = Self(w::ERROR_ACCESS_DENIED);
    /// `ERROR_NOT_SUPPORTED`.
    pub(crate) const NOTSUP: Self = Self(w::ERROR_NOT_SUPPORTED);
    /// `ERROR_TOO_MANY_OPEN_FILES`.
    pub(crate) const MFILE: Self = Self(w::ERROR_TOO_MANY_OPEN_FILES);
    /// `ERROR_BUSY`.
    pub(crate) const BUSY: Self = Self(w::ERROR_BUSY);
    /// `ERROR_NOACCESS`: an invalid access to a memory location.
    pub(crate) const FAULT: Self = Self(w::ERROR_NOACCESS);
    /// `ERROR_USER_MAPPED_FILE`: a file cannot be cut below a mapped view.
    pub(crate) const USER_MAPPED: Self = Self(w::ERROR_USER_MAPPED_FILE);
    /// No Windows call fails with these; they exist so that the portable
    /// code's matches compile (they never match).
    pub(crate) const AGAIN: Self = Self(u32::MAX);
    /// As [`AGAIN`](Self::AGAIN).
    pub(crate) const PERM: Self = Self(u32::MAX - 1);

    /// The code as `std::io::Error::raw_os_error` holds it.
    pub(crate) fn raw_os_error(self) -> i32 {
        // Win32 codes are below 2^16; `std` keeps them as `i32` the same
        // way (a bit-for-bit reinterpretation of the DWORD).
        i32::from_ne_bytes(self.0.to_ne_bytes())
    }

    /// The code of an `std::io::Error` from a Windows call (`INVAL` if it
    /// has none).
    pub(crate) fn of(e: &std::io::Error) -> Self {
        e.raw_os_error()
            .map_or(Self::INVAL, |c| Self(u32::from_ne_bytes(c.to_ne_bytes())))
    }

    /// The calling thread's last error (`GetLastError`), read at once
    /// after the failed call.
    pub(crate) fn last() -> Self {
        Self::of(&std::io::Error::last_os_error())
    }
}
