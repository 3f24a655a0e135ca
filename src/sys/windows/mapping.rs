//! The Windows part of [`Mapping`]: views of sections (`MapViewOfFile`),
//! their commit and its query (`VirtualAlloc(MEM_COMMIT)`,
//! `VirtualQuery`), private memory for in-memory regions, write-back
//! (`FlushViewOfFile`) and the release (`UnmapViewOfFile`, `VirtualFree`);
//! invariants W1 to W5 of the parent module.

use std::ffi::c_void;
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle};
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Storage::FileSystem::FlushFileBuffers;
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FlushViewOfFile, MapViewOfFile, UnmapViewOfFile, VirtualAlloc, VirtualFree,
    VirtualQuery, FILE_MAP_READ, FILE_MAP_WRITE, MEMORY_BASIC_INFORMATION,
    MEMORY_MAPPED_VIEW_ADDRESS, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_READONLY,
    PAGE_READWRITE,
};

use super::Errno;
use crate::sys::mapping::{Hint, Mapping, Origin, UNMAP_FAILURES};
use crate::sys::round_up_to_page;
use crate::sys::sigbus::Registration;

/// The high and low halves of a section size, as `CreateFileMappingW`
/// takes them.
fn halves(n: u64) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = n.to_be_bytes();
    (
        u32::from_be_bytes([a, b, c, d]),
        u32::from_be_bytes([e, f, g, h]),
    )
}

/// A view of the whole of `section` (W1: returned by `MapViewOfFile` with
/// no address asked, so the system chose a free range), owned by the
/// `Mapping` built from it.
fn map_view(section: BorrowedHandle<'_>, writable: bool) -> Result<NonNull<u8>, Errno> {
    let access = if writable {
        FILE_MAP_READ | FILE_MAP_WRITE
    } else {
        FILE_MAP_READ
    };
    // SAFETY: W1: `section` is a valid section handle for this call; no
    // address is asked (`MapViewOfFile` picks a free range, replacing no
    // mapping), and the view returned is owned by the `Mapping` built from
    // it, unmapped once in `Drop`.
    let view: MEMORY_MAPPED_VIEW_ADDRESS =
        unsafe { MapViewOfFile(section.as_raw_handle(), access, 0, 0, 0) };
    NonNull::new(view.Value.cast::<u8>()).ok_or_else(Errno::last)
}

/// What `VirtualQuery` says of the range holding `p`.
fn query(p: *const u8) -> Option<MEMORY_BASIC_INFORMATION> {
    let mut info = MEMORY_BASIC_INFORMATION {
        BaseAddress: ptr::null_mut(),
        AllocationBase: ptr::null_mut(),
        AllocationProtect: 0,
        PartitionId: 0,
        RegionSize: 0,
        State: 0,
        Protect: 0,
        Type: 0,
    };
    let size = std::mem::size_of::<MEMORY_BASIC_INFORMATION>();
    // SAFETY: W5: `VirtualQuery` only reads the system's records of the
    // address space and writes `info`, a local of the size passed; any
    // address may be asked about.
    let got = unsafe { VirtualQuery(p.cast::<c_void>(), &mut info, size) };
    (got == size).then_some(info)
}

/// The length of the allocation (view or reservation) starting at `base`:
/// the sum of the consecutive ranges `VirtualQuery` reports with that
/// allocation base.
fn allocation_len(base: NonNull<u8>) -> usize {
    let mut len = 0usize;
    loop {
        let at = base.as_ptr().wrapping_add(len);
        match query(at) {
            Some(info) if info.AllocationBase == base.as_ptr().cast::<c_void>() => {
                if info.RegionSize == 0 {
                    return len;
                }
                len = len.saturating_add(info.RegionSize);
            }
            _ => return len,
        }
    }
}

impl Mapping {
    /// Maps `file` whole (a new section of exactly `len` bytes, so the file
    /// is at least that long: a writable section longer than its file
    /// lengthens the file) and returns the view, rounded up to pages. No
    /// reservation past `len`: a section of a file cannot be longer than
    /// the file without making the file that long, so on Windows a file
    /// grows into a new mapping (a new generation). `reserve` is ignored
    /// for that reason.
    pub(crate) fn new(
        file: BorrowedHandle<'_>,
        len: usize,
        _reserve: usize,
        writable: bool,
    ) -> Result<Self, Errno> {
        if len == 0 {
            return Err(Errno::INVAL);
        }
        let rounded = round_up_to_page(len).ok_or(Errno::INVAL)?;
        let (high, low) = halves(u64::try_from(len).map_err(|_| Errno::INVAL)?);
        let protect = if writable {
            PAGE_READWRITE
        } else {
            PAGE_READONLY
        };
        // SAFETY: W1: `file` is a valid file handle; the section handle
        // returned is owned by the `OwnedHandle` below (closed once, after
        // the view is mapped: a view keeps its section alive). No name and
        // no security attributes: the section is this process's alone.
        let section = unsafe {
            CreateFileMappingW(
                file.as_raw_handle(),
                ptr::null(),
                protect,
                high,
                low,
                ptr::null(),
            )
        };
        // SAFETY: W1: `section` was just returned by `CreateFileMappingW`
        // on this thread with no call in between.
        let section = unsafe { super::owned(section) }.map_err(|e| Errno::of(&e))?;
        let base = map_view(section.as_handle(), writable)?;
        Ok(Self::of_view(base, rounded, writable))
    }

    /// Maps the whole of a named (pagefile-backed) `section`: the view is
    /// as long as the section's reservation; only its committed prefix
    /// ([`committed`](Self::committed)) may be accessed (W2).
    pub(crate) fn of_section(section: BorrowedHandle<'_>, writable: bool) -> Result<Self, Errno> {
        let base = map_view(section, writable)?;
        let len = allocation_len(base);
        let map = Self::of_view(base, len, writable);
        if len == 0 {
            return Err(Errno::INVAL);
        }
        Ok(map)
    }

    fn of_view(base: NonNull<u8>, len: usize, writable: bool) -> Self {
        Self {
            base,
            len,
            writable,
            origin: Origin::File,
            guard: Registration::none(),
            file: None,
            held: None,
        }
    }

    /// Commits the pages covering `[0, len)` (W2): a section made with
    /// `SEC_RESERVE` or private reserved memory gains them, zero-filled,
    /// for every view; committed pages stay committed while any view or
    /// handle of the section lives.
    pub(crate) fn commit(&self, len: usize) -> Result<(), Errno> {
        if len > self.len {
            return Err(Errno::INVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let protect = if self.writable {
            PAGE_READWRITE
        } else {
            PAGE_READONLY
        };
        // SAFETY: W2: `[base, base + len)` lies inside this mapping's own
        // view or reservation (checked above); `MEM_COMMIT` of pages
        // already committed leaves their contents, and of reserved ones
        // makes them zero pages. Nothing is unmapped or moved.
        let p = unsafe {
            VirtualAlloc(
                self.base.as_ptr().cast::<c_void>(),
                len,
                MEM_COMMIT,
                protect,
            )
        };
        if p.is_null() {
            Err(Errno::last())
        } else {
            Ok(())
        }
    }

    /// The committed prefix of this mapping in bytes (a multiple of the
    /// page size), as `VirtualQuery` reports it: the kernel's record,
    /// which no peer can make larger than what is really committed (W2).
    pub(crate) fn committed(&self) -> usize {
        let mut len = 0usize;
        while len < self.len {
            match query(self.base.as_ptr().wrapping_add(len)) {
                Some(info) if info.State == MEM_COMMIT && info.RegionSize > 0 => {
                    len = len.saturating_add(info.RegionSize);
                }
                _ => break,
            }
        }
        len.min(self.len)
    }

    /// This mapping, remembering `file` as the handle of the file it maps.
    #[must_use]
    pub(crate) fn with_file(mut self, file: Arc<super::OwnedFile>) -> Self {
        self.file = Some(file);
        self
    }

    /// The handle of the mapped file, if the maker attached it.
    pub(crate) fn file(&self) -> Option<BorrowedHandle<'_>> {
        self.file.as_deref().map(AsHandle::as_handle)
    }

    /// No advice on Windows: every hint is `NOTSUP` (the range is still
    /// checked first, `INVAL` outside the mapping).
    pub(crate) fn advise(&self, offset: usize, len: usize, _hint: Hint) -> Result<(), Errno> {
        self.page_range(offset, len).ok_or(Errno::INVAL)?;
        Err(Errno::NOTSUP)
    }

    /// Core dumps and `fork` do not exist as such on Windows: asking for
    /// either exclusion is `NOTSUP` (the options refuse it earlier).
    pub(crate) fn exclude(&self, from_dumps: bool, from_children: bool) -> Result<(), Errno> {
        if from_dumps || from_children {
            Err(Errno::NOTSUP)
        } else {
            Ok(())
        }
    }

    /// `FlushViewOfFile` over the pages covering `[offset, offset + len)`,
    /// then, if `wait` and the file is known, `FlushFileBuffers`.
    pub(crate) fn sync(&self, offset: usize, len: usize, wait: bool) -> Result<(), Errno> {
        if self.origin != Origin::File {
            return self.page_range(offset, len).map(drop).ok_or(Errno::INVAL);
        }
        self.on_pages(offset, len, |ptr, len| {
            // SAFETY: W5: the range lies inside our view (checked by
            // `page_range`); `FlushViewOfFile` only writes dirty pages back.
            let ok = unsafe { FlushViewOfFile(ptr, len) };
            if ok == 0 {
                Err(Errno::last())
            } else {
                Ok(())
            }
        })?;
        if let (true, Some(file)) = (wait, self.file()) {
            // SAFETY: W5: `file` is the valid handle this mapping keeps;
            // `FlushFileBuffers` only writes the file's buffers to disk.
            if unsafe { FlushFileBuffers(file.as_raw_handle()) } == 0 {
                return Err(Errno::last());
            }
        }
        Ok(())
    }

    /// Locking is not offered on Windows (`VirtualLock` counts against a
    /// small working-set quota): `NOTSUP`.
    pub(crate) fn lock(&self, offset: usize, len: usize) -> Result<(), Errno> {
        self.page_range(offset, len).ok_or(Errno::INVAL)?;
        Err(Errno::NOTSUP)
    }
}

/// `len` bytes of private memory, reserved, none committed (W2: the
/// in-memory region commits what it publishes, [`Mapping::commit`]).
pub(crate) fn anonymous(len: usize) -> Result<NonNull<u8>, Errno> {
    // SAFETY: W1: no address is asked, so the system picks a free range
    // and replaces nothing; the range is owned by the `Mapping` built
    // from it and released once, in `Drop` (`Origin::Anon`).
    let p = unsafe { VirtualAlloc(ptr::null(), len, MEM_RESERVE, PAGE_READWRITE) };
    NonNull::new(p.cast::<u8>()).ok_or_else(Errno::last)
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Origin::Heap(layout) = self.origin {
            crate::sys::memory::release(self.base, layout);
            return;
        }
        let base = self.base.as_ptr().cast::<c_void>();
        let released = match self.origin {
            // SAFETY: W1: we own the view at `base` (returned by
            // `MapViewOfFile`), and `Drop` runs once, when no `&Mapping`
            // (and so no copy or atomic reference from one) exists.
            Origin::File => unsafe {
                UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: base }) != 0
            },
            // SAFETY: W1: we own the reservation at `base` (returned by
            // `VirtualAlloc(MEM_RESERVE)`), released once, here.
            _ => unsafe { VirtualFree(base, 0, MEM_RELEASE) != 0 },
        };
        if !released {
            // The range stays reserved, and the leak is counted.
            UNMAP_FAILURES.fetch_add(1, Ordering::Relaxed);
        }
    }
}
