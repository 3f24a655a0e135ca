//! Windows: the audited part of the crate for Windows, the counterpart of
//! the Unix modules beside it. Every `unsafe` operation on Windows lives
//! here, in its submodules `handle` (handles, wide strings, errors, memory
//! the system allocates for us), `file` (files by path: exclusive
//! creation, opening without following a final reparse point, facts,
//! length, reservation, deletion through the handle), `security` (SIDs,
//! the owner-only security descriptor, owner and DACL checks), `section`
//! (sections and their views, commitment of `SEC_RESERVE` pages),
//! `memory` (private memory behind in-memory regions; page size, CPU
//! count), `mapping` (the Windows part of the crate's `Mapping`, built on
//! `section` and `memory`), `owned_file` (a file's handle that removes the
//! file when its last holder drops) and `errno` (`Errno` as Win32 codes).
//! The bindings are `windows-sys`; nothing else is used.
//!
//! Every function is a safe wrapper returning `std::io::Result` whose
//! error keeps the system's code (`io::Error::last_os_error()` right
//! after the failing call, or `from_raw_os_error` for calls that return
//! it), so the crate maps it to its own `ErrorKind`s.
//!
//! # Safety
//!
//! The invariants, referred to by number in the `SAFETY:` comments below:
//!
//! W1. **Handles.** Every handle a creating or opening call returns is
//!     wrapped at once, before any other call, in an `OwnedHandle`
//!     (`handle::owned`), which closes it exactly once, in its `Drop`;
//!     both failure values (`NULL`, `INVALID_HANDLE_VALUE`) are turned
//!     into the error instead. Every handle passed to the system comes
//!     from a live `OwnedHandle` or `BorrowedHandle`, so it is open for
//!     the whole call. The process pseudo handle of `GetCurrentProcess`
//!     needs no closing and is never wrapped.
//! W2. **Buffers.** Every pointer passed to the system points to a live
//!     local or heap buffer of at least the size passed with it, aligned
//!     for the structure the system writes there (buffers for structures
//!     of variable length, `TOKEN_USER` and SIDs, are `u64` arrays, so
//!     8-byte aligned), and the system writes no more than that size.
//!     Structures read back are read only after the call succeeded.
//! W3. **Strings.** Every name or path passed to the system is
//!     NUL-terminated UTF-16 made by `handle::wide`, which refuses a NUL
//!     inside it (`InvalidInput`), so the system never sees a shorter name
//!     than the caller gave.
//! W4. **Memory the system allocates.** A security descriptor from
//!     `GetSecurityInfo` and a string from `ConvertSidToStringSidW` are
//!     `LocalAlloc`ed for us: each is owned by a `handle::LocalBox`, which
//!     frees it with `LocalFree` exactly once, and the pointers into it
//!     (owner SID, DACL, characters) are used only while that guard lives.
//! W5. **Security descriptors we build.** `security::OwnerOnly` is an
//!     absolute descriptor whose owner and DACL pointers point into heap
//!     buffers owned by the same value, so they stay valid (heap memory
//!     does not move when the value moves) while any
//!     `SECURITY_ATTRIBUTES` from `OwnerOnly::attributes` is used; every
//!     caller keeps the `OwnerOnly` alive until after the creating call.
//! W6. **ACL walks.** ACEs are reached only through `GetAce` with an index
//!     below the `AceCount` of a DACL the system returned (so each lies
//!     inside it); headers and masks are read with `read_unaligned`; a SID
//!     inside an allow ACE is passed to `IsValidSid` only after checking
//!     that its length (from its sub-authority count) fits in the ACE's
//!     `AceSize`, and to `EqualSid` only after `IsValidSid` accepted it.
//!     Anything that does not parse counts as "others may write".
//! W7. **Views.** A `section::View` exclusively owns the address range
//!     `MapViewOfFile` returned for it, chosen by the system (no address
//!     hint), from mapping until its `Drop`, which unmaps it exactly once
//!     (a failure is counted by `section::unmap_failures`). Commitment
//!     (`VirtualAlloc(MEM_COMMIT)`), queries (`VirtualQuery`) and flushes
//!     act only on whole pages inside that range.
//! W8. **Private memory.** `memory::alloc_private` returns a fresh range
//!     from `VirtualAlloc` with no address hint; `memory::free_private`'s
//!     caller promises the range came from it, is freed once, and is no
//!     longer used.
//! W9. **Last error.** `GetLastError` (through `io::Error::last_os_error`)
//!     is read right after the call that failed, with no call in between
//!     that could change it; where success must be told apart from "it
//!     already existed" (`CreateFileMappingW`), the last error is cleared
//!     before the call and read right after it.
//! W10. **Foreign memory.** As on Unix (invariant 3 of `src/sys/mod.rs`),
//!     the bytes of a view are memory other processes may write at any
//!     time: this module never forms a reference to them, and outside its
//!     tests (byte-wise volatile accesses to committed pages) never reads
//!     or writes them. Pages of a `SEC_RESERVE` section that are not
//!     committed are reserved only: touching them is an access violation,
//!     so the crate touches only the prefix `section::committed_prefix`
//!     reports (the system's answer for this process, not a length a peer
//!     wrote) and never a page past it.
//!
//! W11. **The crate's `Mapping` on Windows** owns a view (W7, taken over
//!     with `View::into_raw` and unmapped once in its `Drop`, through
//!     `View::from_raw`) or a private reservation (W8, freed once in its
//!     `Drop`). Invariant 2 of the parent module ("whole range mapped")
//!     becomes: the committed prefix is readable (and writable when
//!     `writable`); every access the crate makes is bounded by a published
//!     length, and a length is published only after this process
//!     committed it or `VirtualQuery` reported it committed (W10), and
//!     committed pages of a section stay committed while it is mapped
//!     (`CreateFileMappingW`'s documentation of `SEC_RESERVE`). A view of a
//!     file is as long as the file (rounded up to pages) when it is made,
//!     and a file cannot be cut below a mapped view (`SetEndOfFile` fails
//!     with `ERROR_USER_MAPPED_FILE`), so no truncation makes an access to
//!     a view fault: there is no `SIGBUS` to contain (the registration is
//!     the stub, the cut offset stays `usize::MAX`). A view of a file
//!     whose storage fails (a network or removable volume) can raise
//!     `EXCEPTION_IN_PAGE_ERROR`, which ends the process (a crash, not
//!     undefined behaviour, as in invariant 4); named regions refuse
//!     file-backed sections for that reason. Invariant 3 (foreign memory) is
//!     unchanged: the same `asm!` copies on x86_64, the portable
//!     per-byte atomic copy on aarch64.
//!
//! # What the system enforces and what these functions leave to the crate
//!
//! - `file::open_existing_file` opens a final reparse point as itself and
//!   cannot open a directory; the crate refuses what
//!   `file::file_facts` says is a reparse point, a directory or not a disk
//!   file. Reparse points in parent folders are followed (documented on
//!   `file::create_new_file`; `file::final_path` tells where the file is).
//! - `security::owner_is_current_user` and `security::others_may_write`
//!   read the owner and DACL; the crate refuses according to its options.
//! - Tested under Wine 8 (verify/wine): Wine runs every process as one
//!   user and does not check security descriptors against another user,
//!   so what the descriptors *prevent* is argued from Windows'
//!   documentation, not tested; what they *say* (owner, DACL entries) is
//!   read back and tested.

pub(crate) mod file;
pub(crate) mod handle;
mod mapping;
pub(crate) mod memory;
mod owned_file;
pub(crate) mod section;
pub(crate) mod security;

mod errno;

#[cfg(test)]
mod tests;

pub(crate) use errno::Errno;
pub(crate) use mapping::anonymous;
pub(crate) use memory::{cpu_count, page_size};
pub(crate) use owned_file::OwnedFile;

use windows_sys::Win32::System::SystemInformation::{GlobalMemoryStatusEx, MEMORYSTATUSEX};

/// Windows has no `RLIMIT_AS`: `None`.
pub(crate) fn address_space_limit() -> Option<usize> {
    None
}

/// This process's address-space use in bytes: the user address space less
/// what `GlobalMemoryStatusEx` says is free of it.
pub(crate) fn address_space_used() -> Option<usize> {
    let mut status = MEMORYSTATUSEX {
        dwLength: u32::try_from(std::mem::size_of::<MEMORYSTATUSEX>()).ok()?,
        ..MEMORYSTATUSEX::default()
    };
    // SAFETY: W2: `status` is a live local with `dwLength` set to its size,
    // as the call requires; the call only writes it.
    if unsafe { GlobalMemoryStatusEx(&mut status) } == 0 {
        return None;
    }
    let used = status.ullTotalVirtual.checked_sub(status.ullAvailVirtual)?;
    usize::try_from(used).ok()
}
