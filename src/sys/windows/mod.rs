//! The Windows part of the audited module.
//!
//! # Safety
//!
//! The invariants of the parent module hold on Windows with these
//! changes, referred to as W1 to W5 in the `SAFETY:` comments here:
//!
//! - **W1. Ownership.** A `Mapping` exclusively owns its range from
//!   construction until `Drop`: a view returned by `MapViewOfFile` with no
//!   address asked (so the system chose a free range and replaced
//!   nothing), released with `UnmapViewOfFile` exactly once, in `Drop`; or
//!   a private reservation returned by `VirtualAlloc(MEM_RESERVE)` with no
//!   address asked, released with `VirtualFree(MEM_RELEASE)` exactly once,
//!   in `Drop`. Every handle a call returns is owned by one `OwnedHandle`
//!   at once (closed exactly once); a view keeps its section alive after
//!   the section's handle is closed.
//! - **W2. Committed prefix.** Invariant 2 ("whole range mapped") becomes:
//!   `[base, base + c)` is committed and readable (writable when
//!   `writable`), where `c` is the committed prefix; pages past it are
//!   reserved and fault if touched. Every access the crate makes is
//!   bounded by a published length, and a length is published only after
//!   it was committed by this process ([`Mapping::commit`]) or seen
//!   committed by `VirtualQuery` ([`Mapping::committed`], the kernel's
//!   record, which no peer can make say more than is committed). Pages of
//!   a section once committed stay committed while any view or handle of
//!   the section lives: the system offers no call that decommits pages
//!   of a mapped view (`VirtualFree(MEM_DECOMMIT)` fails on one), and
//!   another process can change our view only with a handle on our
//!   process that grants `PROCESS_VM_OPERATION`, with which it could
//!   change any of our memory. A view of a file is as long as the file
//!   (rounded up to pages) when it is made, and a file cannot be cut
//!   below a mapped view (`SetEndOfFile` fails with
//!   `ERROR_USER_MAPPED_FILE`), so no access to a file's view faults:
//!   there is no `SIGBUS` to contain on Windows (`Registration` is the
//!   stub, and the cut offset stays `usize::MAX`).
//! - **W3. Foreign memory.** Invariant 3 unchanged: bytes move only
//!   through the copies of `copy.rs` (the same `asm!` on x86_64; the
//!   portable per-byte atomic copy on aarch64) and through atomics.
//! - **W4. Strings and buffers passed to the system** are NUL-terminated
//!   UTF-16 owned by the caller for the whole call, and every output
//!   buffer is a local of the size passed.
//! - **W5. Queries and write-back** (`VirtualQuery`, `FlushViewOfFile`,
//!   `FlushFileBuffers`, `GlobalMemoryStatusEx`, `GetSystemInfo`) read
//!   the system's records or write dirty pages back; they change no
//!   mapping and no byte.

mod errno;
pub(crate) mod file;
pub(crate) mod handle;
mod mapping;
pub(crate) mod memory;
mod owned_file;
pub(crate) mod section;
pub(crate) mod security;

use std::os::windows::io::{FromRawHandle, OwnedHandle};

pub(crate) use errno::Errno;
pub(crate) use mapping::anonymous;
pub(crate) use owned_file::OwnedFile;

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::SystemInformation::{
    GetSystemInfo, GlobalMemoryStatusEx, MEMORYSTATUSEX, SYSTEM_INFO,
};

/// Takes ownership of a handle a creating or opening call just returned
/// (W1): both failure values (`NULL`, `INVALID_HANDLE_VALUE`) give the
/// thread's last error instead.
///
/// # Safety
///
/// `h` is the return value of the call just made on this thread, with no
/// other system call in between; if it is a handle, nothing else owns or
/// closes it.
pub(crate) unsafe fn owned(h: HANDLE) -> std::io::Result<OwnedHandle> {
    if h.is_null() || h == INVALID_HANDLE_VALUE {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: W1: `h` is a fresh handle that nothing else owns (this
    // function's contract); the `OwnedHandle` closes it exactly once.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// The system's facts (`GetSystemInfo`), read once.
fn system_info() -> &'static (usize, usize) {
    static INFO: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
    INFO.get_or_init(|| {
        // SAFETY: W5: `GetSystemInfo` fills the local it is given, which is
        // valid for writes of its type (zeroed first: a plain C struct).
        let info: SYSTEM_INFO = unsafe {
            let mut info = std::mem::zeroed::<SYSTEM_INFO>();
            GetSystemInfo(&mut info);
            info
        };
        let page = usize::try_from(info.dwPageSize).unwrap_or(4096);
        let top = info.lpMaximumApplicationAddress as usize;
        (page, top)
    })
}

/// The system page size in bytes (4 KiB on x86_64 and aarch64 Windows).
pub(crate) fn page_size() -> usize {
    system_info().0
}

/// Windows has no `RLIMIT_AS`: `None`.
pub(crate) fn address_space_limit() -> Option<usize> {
    None
}

/// This process's address-space use in bytes: the user address space
/// less what `GlobalMemoryStatusEx` says is free of it.
pub(crate) fn address_space_used() -> Option<usize> {
    let mut status = MEMORYSTATUSEX {
        dwLength: u32::try_from(std::mem::size_of::<MEMORYSTATUSEX>()).ok()?,
        dwMemoryLoad: 0,
        ullTotalPhys: 0,
        ullAvailPhys: 0,
        ullTotalPageFile: 0,
        ullAvailPageFile: 0,
        ullTotalVirtual: 0,
        ullAvailVirtual: 0,
        ullAvailExtendedVirtual: 0,
    };
    // SAFETY: W5: `status` is a local with `dwLength` set to its size, as
    // the call requires; the call only writes it.
    if unsafe { GlobalMemoryStatusEx(&mut status) } == 0 {
        return None;
    }
    let used = status.ullTotalVirtual.checked_sub(status.ullAvailVirtual)?;
    usize::try_from(used).ok()
}
