//! Handles, wide strings, errors and memory the system allocates
//! (invariants W1, W3, W4, W9).

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{FromRawHandle, OwnedHandle};

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{LocalFree, HANDLE, HLOCAL, INVALID_HANDLE_VALUE};

/// `s` as a NUL-terminated UTF-16 string (invariant W3).
///
/// # Errors
///
/// `InvalidInput` if `s` contains a NUL, which would cut the name short.
pub fn wide(s: &OsStr) -> io::Result<Vec<u16>> {
    let mut w: Vec<u16> = s.encode_wide().collect();
    if w.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a name or path passed to Windows contains a NUL character",
        ));
    }
    w.push(0);
    Ok(w)
}

/// `Ok(())` if a `BOOL`-returning call succeeded, otherwise the thread's
/// last error, read at once (invariant W9).
pub(super) fn check(ok: BOOL) -> io::Result<()> {
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Takes ownership of a handle a creating or opening call returned
/// (invariant W1): both failure values (`NULL` for
/// `CreateFileMappingW`/`OpenFileMappingW`, `INVALID_HANDLE_VALUE` for
/// `CreateFileW`) give the thread's last error instead, read at once
/// (invariant W9).
///
/// # Safety
///
/// `h` is the return value of the call just made on this thread, with no
/// other system call in between; if it is a handle, nothing else owns or
/// closes it.
pub(super) unsafe fn owned(h: HANDLE) -> io::Result<OwnedHandle> {
    if h.is_null() || h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: W1: `h` is a fresh handle the caller's call returned and
    // nothing else owns (this function's contract); the `OwnedHandle`
    // closes it exactly once.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// Memory a system call allocated for us with `LocalAlloc` (a security
/// descriptor, a string): freed with `LocalFree` exactly once, on drop
/// (invariant W4).
pub(super) struct LocalBox(HLOCAL);

impl LocalBox {
    /// Takes ownership of `p`.
    ///
    /// # Safety
    ///
    /// `p` is null or was allocated with `LocalAlloc` by a system call that
    /// handed it to the caller to free, and nothing else frees it.
    pub(super) unsafe fn new(p: HLOCAL) -> Self {
        LocalBox(p)
    }
}

impl Drop for LocalBox {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: W4: the pointer came from `LocalAlloc` through a
            // system call that handed it to us (`new`'s contract) and is
            // freed here only, once. `LocalFree` returns null on success;
            // a failure leaks the block, which is all that can be done.
            unsafe { LocalFree(self.0) };
        }
    }
}
