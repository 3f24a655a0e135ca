//! Sections (file mapping objects) and views of them: creation that
//! never hands out a squatter's object, opening by name, views owned
//! until drop, commitment of `SEC_RESERVE` pages, flushing (invariants
//! W1-W3, W5, W7, W9).

use std::ffi::OsStr;
use std::io;
use std::mem::size_of;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, OwnedHandle};
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;

use crate::sys::mapping::UNMAP_FAILURES;

use windows_sys::Win32::Foundation::{
    GetLastError, SetLastError, ERROR_ALREADY_EXISTS, ERROR_SUCCESS, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::READ_CONTROL;
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FlushViewOfFile, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile,
    VirtualAlloc, VirtualQuery, FILE_MAP_READ, FILE_MAP_WRITE, MEMORY_BASIC_INFORMATION,
    MEMORY_MAPPED_VIEW_ADDRESS, MEM_COMMIT, PAGE_GUARD, PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE,
    SEC_RESERVE,
};

use super::file::flush_file;
use super::handle::{check, owned, wide};
use super::memory::page_size;
use super::security::{ObjectKind, OwnerOnly};

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// Creates a section of `max_size` bytes.
///
/// `file`: `None` for a pagefile-backed section (`INVALID_HANDLE_VALUE`),
/// or the file to map (its handle must allow what `writable` asks: read,
/// or read and write; with `max_size` 0 the section is the file's current
/// size, and a larger `max_size` grows the file). `reserve_only` (only
/// without a file, else `InvalidInput`): `SEC_RESERVE`, the section's
/// pages are reserved, none committed; [`commit`] commits them page range
/// by page range, and every view of the section sees them.
///
/// `name`: the full object name, namespace included (for example
/// `Local\\my-region`), or `None` for an unnamed section. The section
/// gets an owner-only security descriptor (the current user and SYSTEM;
/// [`OwnerOnly`]). If an object of that name already exists, the system
/// hands back a handle to *it* (`ERROR_ALREADY_EXISTS`); this function
/// closes that handle at once and fails with `ERROR_ALREADY_EXISTS` (183):
/// a squatter's object is never used. An existing object of another type,
/// or one whose descriptor refuses us, fails in the call itself
/// (`ERROR_INVALID_HANDLE`, 6, or `ERROR_ACCESS_DENIED`, 5).
///
/// # Errors
///
/// `InvalidInput` for `reserve_only` with a file or a name with a NUL;
/// `ERROR_INVALID_PARAMETER` (87) for a pagefile-backed section of size 0;
/// `ERROR_ALREADY_EXISTS` as above; otherwise the error of building the
/// descriptor or of `CreateFileMappingW`, with its code.
pub fn create_section(
    file: Option<BorrowedHandle<'_>>,
    max_size: u64,
    writable: bool,
    name: Option<&str>,
    reserve_only: bool,
) -> io::Result<OwnedHandle> {
    if reserve_only && file.is_some() {
        return Err(invalid(
            "SEC_RESERVE applies only to pagefile-backed sections, not to a file's".to_string(),
        ));
    }
    let mut protect = if writable {
        PAGE_READWRITE
    } else {
        PAGE_READONLY
    };
    if reserve_only {
        protect |= SEC_RESERVE;
    }
    let wname = name.map(|n| wide(OsStr::new(n))).transpose()?;
    let pname = wname.as_ref().map_or(ptr::null(), |w| w.as_ptr());
    let sd = OwnerOnly::new(ObjectKind::Section)?;
    let sa = sd.attributes();
    let high = u32::try_from(max_size >> 32).map_err(io::Error::other)?;
    let low = u32::try_from(max_size & 0xFFFF_FFFF).map_err(io::Error::other)?;
    let raw_file = file.map_or(INVALID_HANDLE_VALUE, |f| f.as_raw_handle());
    // SAFETY: W9: only clears this thread's last error, so that a stale
    // `ERROR_ALREADY_EXISTS` cannot be read after the call below.
    unsafe { SetLastError(ERROR_SUCCESS) };
    // SAFETY: W1/W2/W3/W5: `raw_file` is `INVALID_HANDLE_VALUE` or a
    // borrowed, open handle; `sa` points to the descriptor `sd` keeps
    // alive; `pname` is null or NUL-terminated.
    let h = unsafe { CreateFileMappingW(raw_file, &sa, protect, high, low, pname) };
    // SAFETY: W9: read right after the call; changes nothing.
    let last = unsafe { GetLastError() };
    // SAFETY: W1/W9: `h` is what `CreateFileMappingW` returned; the only
    // call since, `GetLastError`, leaves the last error as it was.
    let section = unsafe { owned(h) }?;
    if last == ERROR_ALREADY_EXISTS {
        // Someone else's object: close our handle to it (drop) and refuse.
        drop(section);
        return Err(io::Error::from_raw_os_error(183));
    }
    Ok(section)
}

/// Opens the named section `name` (the full name, as given to
/// [`create_section`]) for reading, or reading and writing, plus
/// `READ_CONTROL` so that its owner and DACL can be checked
/// ([`owner_is_current_user`](super::security::owner_is_current_user),
/// [`others_may_write`](super::security::others_may_write) with
/// [`ObjectKind::Section`]).
///
/// A section whose DACL does not grant us `READ_CONTROL` (its owner
/// always has it) cannot be opened, since its owner could not be checked:
/// `ERROR_ACCESS_DENIED`.
///
/// # Errors
///
/// `InvalidInput` for a name with a NUL; the error of `OpenFileMappingW`,
/// with its code (`ERROR_FILE_NOT_FOUND`, 2, when no such object exists;
/// `ERROR_ACCESS_DENIED`, 5, when its DACL refuses an access asked for).
pub fn open_section(name: &str, writable: bool) -> io::Result<OwnedHandle> {
    let wname = wide(OsStr::new(name))?;
    let mut access = FILE_MAP_READ | READ_CONTROL;
    if writable {
        access |= FILE_MAP_WRITE;
    }
    // SAFETY: W3: `wname` is NUL-terminated; the handle is not inherited.
    let h = unsafe { OpenFileMappingW(access, 0, wname.as_ptr()) };
    // SAFETY: W1/W9: `h` is what `OpenFileMappingW` just returned.
    unsafe { owned(h) }
}

/// A view of a section: owns the address range `[base, base + len)`
/// rounded up to whole pages, from `MapViewOfFile` until `Drop` unmaps it
/// (invariant W7). Nothing here reads or writes its bytes: they are
/// foreign memory (W10), and for a `SEC_RESERVE` section only the
/// committed pages ([`committed_prefix`]) may be touched at all.
#[derive(Debug)]
pub struct View {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: W7: a `View` is an owned address range, not a reference to
// thread-bound data; `UnmapViewOfFile` may be called from any thread of
// the process, and the methods only query or commit the range.
unsafe impl Send for View {}
// SAFETY: W7: as above; `&View` methods make system calls on the range,
// which the system serialises.
unsafe impl Sync for View {}

impl View {
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "used by the tests of `sys::windows`")
    )]
    /// The first byte of the view.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "used by the tests of `sys::windows`")
    )]
    /// The length asked for when mapping (the range is mapped up to the
    /// next page boundary).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a view of 0 bytes is refused by [`map_view`].
    #[allow(dead_code, reason = "the pair of `len` (clippy::len_without_is_empty)")]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mapped_len(&self) -> usize {
        let page = page_size();
        // Cannot overflow: the system mapped this many bytes.
        self.len.div_ceil(page).saturating_mul(page)
    }

    /// Gives up the view without unmapping it: its base and its length
    /// (W7: the caller owns the range from now on and unmaps it, through
    /// [`View::from_raw`] and a drop, exactly once).
    pub(crate) fn into_raw(self) -> (NonNull<u8>, usize) {
        let this = std::mem::ManuallyDrop::new(self);
        (this.base, this.len)
    }

    /// The view of `len` bytes at `base` again, for the calls of this
    /// module (in a `ManuallyDrop` while the caller keeps owning it) or to
    /// unmap it (dropped).
    ///
    /// # Safety
    ///
    /// `[base, base + len)` (rounded up to pages) is a view (W7) or a
    /// private reservation (W8) this process owns, from [`View::into_raw`]
    /// or `memory::reserve_private`, for as long as the result lives; the
    /// result is dropped only for a view, and then only once, which
    /// unmaps it.
    pub(crate) unsafe fn from_raw(base: NonNull<u8>, len: usize) -> Self {
        View { base, len }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let addr = MEMORY_MAPPED_VIEW_ADDRESS {
            Value: self.base.as_ptr().cast(),
        };
        // SAFETY: W7: the view owns this range from `MapViewOfFile`, and it
        // is unmapped here only, once; nothing else refers to it after.
        if unsafe { UnmapViewOfFile(addr) } == 0 {
            // Counted with every mapping the crate could not release
            // (`shm_region::unmap_failures`).
            UNMAP_FAILURES.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Maps the first `len` bytes of `section` (read-only, or read-write
/// when `writable`: the section handle must allow it) at an address the
/// system chooses.
///
/// # Errors
///
/// `InvalidInput` for `len` 0 (which would map the whole section);
/// otherwise the error of `MapViewOfFile`, with its code (`len` past the
/// section's size: `ERROR_ACCESS_DENIED`, 5, on Windows).
pub fn map_view(section: BorrowedHandle<'_>, len: usize, writable: bool) -> io::Result<View> {
    if len == 0 {
        return Err(invalid("a view of 0 bytes".to_string()));
    }
    let access = if writable {
        FILE_MAP_WRITE
    } else {
        FILE_MAP_READ
    };
    // SAFETY: W1/W7: the section handle is borrowed, so open; no address
    // hint, so the system picks a free range, owned by the `View` below.
    let addr = unsafe { MapViewOfFile(section.as_raw_handle(), access, 0, 0, len) };
    match NonNull::new(addr.Value.cast::<u8>()) {
        Some(base) => Ok(View { base, len }),
        None => Err(io::Error::last_os_error()),
    }
}

/// Maps the whole of `section` (its size, as its maker reserved it) at an
/// address the system chooses; the view's length is that of the
/// allocation `VirtualQuery` reports at its base.
///
/// # Errors
///
/// The error of `MapViewOfFile`, with its code; `InvalidData` if the
/// system reports no allocation at the view's base.
pub(crate) fn map_whole(section: BorrowedHandle<'_>, writable: bool) -> io::Result<View> {
    let access = if writable {
        FILE_MAP_WRITE
    } else {
        FILE_MAP_READ
    };
    // SAFETY: W1/W7: the section handle is borrowed, so open; no address
    // hint, so the system picks a free range, owned by the `View` below;
    // size 0 maps the whole section.
    let addr = unsafe { MapViewOfFile(section.as_raw_handle(), access, 0, 0, 0) };
    let base = NonNull::new(addr.Value.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
    // Owned from here: dropped (unmapped) on the error below.
    let mut view = View { base, len: 0 };
    view.len = allocation_len(base);
    if view.len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "VirtualQuery reports no allocation at a view's base",
        ));
    }
    Ok(view)
}

/// Whether the view at `base` shows a file (`K32GetMappedFileNameW` names
/// one) rather than the pagefile: a view of a file can raise
/// `EXCEPTION_IN_PAGE_ERROR` when the file's storage fails (a network or
/// removable volume), which nothing contains on Windows, so a named
/// region must be pagefile-backed.
pub(crate) fn backed_by_file(base: NonNull<u8>) -> bool {
    let mut name = [0u16; 8];
    // SAFETY: `GetCurrentProcess` takes nothing and returns a pseudo
    // handle that needs no closing.
    let me = unsafe { windows_sys::Win32::System::Threading::GetCurrentProcess() };
    let cap = u32::try_from(name.len()).unwrap_or(0);
    // SAFETY: W2/W5: a query of this process's view at `base`; it writes
    // at most `cap` UTF-16 units into `name`, a live local of that size.
    let n = unsafe {
        windows_sys::Win32::System::ProcessStatus::K32GetMappedFileNameW(
            me,
            base.as_ptr().cast_const().cast(),
            name.as_mut_ptr(),
            cap,
        )
    };
    // A name (even cut short: `n` is then the buffer's length) means a file.
    n != 0
}

/// What `VirtualQuery` says of the pages at `at`, or `None` if it says
/// nothing (an address past the user address space).
fn query(at: *const u8) -> Option<MEMORY_BASIC_INFORMATION> {
    let mut info = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: W2: `VirtualQuery` only writes `info`, a live local of the
    // size passed; any address may be asked about.
    let n = unsafe { VirtualQuery(at.cast(), &mut info, size_of::<MEMORY_BASIC_INFORMATION>()) };
    (n != 0).then_some(info)
}

/// The length of the allocation (a view or a reservation) starting at
/// `base`: the consecutive runs `VirtualQuery` reports with that base.
fn allocation_len(base: NonNull<u8>) -> usize {
    let mut len = 0usize;
    loop {
        let Some(info) = query(base.as_ptr().wrapping_add(len)) else {
            return len;
        };
        if info.AllocationBase != base.as_ptr().cast() || info.RegionSize == 0 {
            return len;
        }
        len = len.saturating_add(info.RegionSize);
    }
}

/// Commits the pages of `view` covering `[offset, offset + len)` (whole
/// pages: the range is widened to page boundaries, which stay inside the
/// view), readable and, if `writable`, writable. For a `SEC_RESERVE`
/// section this commits the section's pages: every view of it, in every
/// process, may then touch them. Committing committed pages does nothing.
///
/// # Errors
///
/// `InvalidInput` if the range does not lie inside the view; otherwise
/// the error of `VirtualAlloc(MEM_COMMIT)`, with its code
/// (`ERROR_NOT_ENOUGH_MEMORY`, 8, or `ERROR_COMMITMENT_LIMIT`, 1455, when
/// the system cannot back them).
pub fn commit(view: &View, offset: usize, len: usize, writable: bool) -> io::Result<()> {
    let end = offset
        .checked_add(len)
        .filter(|&e| e <= view.len)
        .ok_or_else(|| {
            invalid(format!(
                "commit of {len} bytes at {offset} in a view of {}",
                view.len
            ))
        })?;
    if len == 0 {
        return Ok(());
    }
    let page = page_size();
    let start = offset - offset % page;
    let stop = end
        .div_ceil(page)
        .saturating_mul(page)
        .min(view.mapped_len());
    let protect = if writable {
        PAGE_READWRITE
    } else {
        PAGE_READONLY
    };
    let at = view.base.as_ptr().wrapping_add(start);
    // SAFETY: W7: `[at, at + stop - start)` is whole pages inside the
    // view's mapped range (checked above), which the view owns; committing
    // changes no byte already committed.
    let p = unsafe { VirtualAlloc(at.cast_const().cast(), stop - start, MEM_COMMIT, protect) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How many bytes from the start of `view` are committed: the length of
/// the run of `MEM_COMMIT` pages from its base, stopping at the first page
/// that is not committed, capped at the view's length. This is the
/// process's own view of the section, from the system, not from anything a
/// peer wrote.
pub fn committed_prefix(view: &View) -> usize {
    let base = view.base.as_ptr();
    let mapped = view.mapped_len();
    let mut done = 0usize;
    while done < mapped {
        let Some(info) = query(base.wrapping_add(done)) else {
            break;
        };
        // Committed and readable through this view: a page this view
        // cannot read (no access, a guard page) ends the prefix too.
        if info.State != MEM_COMMIT || info.Protect & (PAGE_NOACCESS | PAGE_GUARD) != 0 {
            break;
        }
        // The run of pages alike starts at `info.BaseAddress` (`at` rounded
        // down to its page) and is `RegionSize` long.
        let run_end = (info.BaseAddress as usize).saturating_add(info.RegionSize);
        let next = run_end.saturating_sub(base as usize);
        if next <= done {
            break;
        }
        done = next;
    }
    done.min(view.len)
}

/// Writes the view's dirty pages in `[offset, offset + len)` to the file
/// (`FlushViewOfFile`, which starts the writes) and, when `wait_on` is
/// given (the file's handle), waits until the file's data and metadata are
/// on disk (`FlushFileBuffers`). For a pagefile-backed section there is no
/// file and the call only validates the range.
///
/// # Errors
///
/// `InvalidInput` if the range does not lie inside the view; otherwise the
/// error of `FlushViewOfFile` or `FlushFileBuffers`, with its code.
pub fn flush(
    view: &View,
    offset: usize,
    len: usize,
    wait_on: Option<BorrowedHandle<'_>>,
) -> io::Result<()> {
    offset
        .checked_add(len)
        .filter(|&e| e <= view.len)
        .ok_or_else(|| {
            invalid(format!(
                "flush of {len} bytes at {offset} in a view of {}",
                view.len
            ))
        })?;
    if len > 0 {
        let at = view.base.as_ptr().wrapping_add(offset);
        // SAFETY: W7: `[at, at + len)` lies inside the view (checked
        // above); `FlushViewOfFile` reads no byte into Rust.
        check(unsafe { FlushViewOfFile(at.cast_const().cast(), len) })?;
    }
    match wait_on {
        Some(f) => flush_file(f),
        None => Ok(()),
    }
}
