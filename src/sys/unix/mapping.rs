//! The Unix part of [`Mapping`]: `mmap` of a file, private anonymous
//! memory, `madvise`, `msync`, `mlock`, and the release with `munmap`
//! (invariants 1, 2, 5 and 6 of the parent module).

use std::ffi::c_void;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

use crate::sys::mapping::{Hint, Mapping, Origin, UNMAP_FAILURES};
use crate::sys::round_up_to_page;
use crate::sys::sigbus::Registration;

fn prot(writable: bool) -> ProtFlags {
    if writable {
        ProtFlags::READ | ProtFlags::WRITE
    } else {
        ProtFlags::READ
    }
}

impl Mapping {
    /// Maps `fd` shared from offset 0 over at least `len` bytes, and over
    /// `reserve` bytes when that is larger and the address space allows, so
    /// that the file can grow to `reserve` bytes in place.
    ///
    /// If the larger mapping cannot be made (address space, `RLIMIT_AS`, an
    /// offset the file system cannot map), exactly the page-rounded `len` is
    /// mapped. The file may be shorter than the mapping; callers must not
    /// publish bytes past the file's end (invariant 4).
    ///
    /// # Errors
    ///
    /// `EINVAL` for `len == 0` or a length that overflows when rounded to
    /// pages, and whatever `mmap` reports.
    pub(crate) fn new(
        fd: BorrowedFd<'_>,
        len: usize,
        reserve: usize,
        writable: bool,
    ) -> Result<Self, Errno> {
        if len == 0 {
            return Err(Errno::INVAL);
        }
        let exact = round_up_to_page(len).ok_or(Errno::INVAL)?;
        let want = round_up_to_page(reserve).unwrap_or(exact);
        if want > exact {
            if let Ok(m) = Self::map(fd, want, writable) {
                return Ok(m);
            }
        }
        Self::map(fd, exact, writable)
    }

    fn map(fd: BorrowedFd<'_>, len: usize, writable: bool) -> Result<Self, Errno> {
        // SAFETY: a null hint without `MAP_FIXED` lets the kernel choose a
        // free range, so no existing mapping is replaced; the range returned
        // is owned by the `Mapping` built below (invariant 1) and is mapped
        // shared to `fd` from offset 0 for `len` bytes (invariant 2).
        let base = unsafe {
            rustix::mm::mmap(
                ptr::null_mut(),
                len,
                prot(writable),
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let base = NonNull::new(base.cast::<u8>()).ok_or(Errno::NOMEM)?;
        let mut map = Self {
            base,
            len,
            writable,
            origin: Origin::File,
            #[cfg(all(feature = "arbitrary", not(loom)))]
            hostile: None,
            guard: Registration::none(),
            file: None,
            held: None,
        };
        // Registered before anyone else can reach the range (invariant 6);
        // on `ENOSPC` (registry full after `install`) the mapping is
        // dropped, and so unmapped, here.
        map.guard = Registration::register(base.as_ptr(), len, writable)?;
        Ok(map)
    }

    /// This mapping, remembering `file` as the descriptor of the file it
    /// maps (see [`file`](Self::file)).
    #[must_use]
    pub(crate) fn with_file(mut self, file: Arc<OwnedFd>) -> Self {
        self.file = Some(file);
        self
    }

    /// Makes `[0, len)` accessible: on Unix every page of a mapping already
    /// is (invariant 2), so this only checks `len` (`EINVAL` past the
    /// mapping). The Windows part commits the pages.
    #[cfg_attr(
        not(all(feature = "arbitrary", not(loom))),
        allow(dead_code, reason = "only the hostile backing calls it on Unix")
    )]
    pub(crate) fn commit(&self, len: usize) -> Result<(), Errno> {
        if len > self.len {
            return Err(Errno::INVAL);
        }
        Ok(())
    }

    /// The descriptor of the mapped file, if the handle that made the
    /// mapping attached it ([`with_file`](Self::with_file)); `None` for
    /// memory.
    pub(crate) fn file(&self) -> Option<BorrowedFd<'_>> {
        self.file.as_deref().map(AsFd::as_fd)
    }

    /// `madvise` over the pages covering `[offset, offset + len)`.
    pub(crate) fn advise(&self, offset: usize, len: usize, hint: Hint) -> Result<(), Errno> {
        use rustix::mm::Advice;
        if self.origin != Origin::File {
            // Private heap memory: `MADV_DONTNEED` would discard it, and the
            // other hints mean nothing for memory with no file behind it.
            return self.page_range(offset, len).map(drop).ok_or(Errno::INVAL);
        }
        let advice = match hint {
            Hint::Normal => Advice::Normal,
            Hint::Random => Advice::Random,
            Hint::Sequential => Advice::Sequential,
            Hint::WillNeed => Advice::WillNeed,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Hint::DontNeed => Advice::LinuxDontNeed,
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Hint::DontNeed => Advice::DontNeed,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Hint::Populate if self.writable => Advice::LinuxPopulateWrite,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Hint::Populate => Advice::LinuxPopulateRead,
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Hint::Populate => Advice::WillNeed,
        };
        self.on_pages(offset, len, |ptr, len| {
            // SAFETY: `[ptr, ptr + len)` lies inside our mapping (checked by
            // `page_range`). The advice values above are hints or, for
            // `DontNeed` on a `MAP_SHARED` file mapping, drop page-table
            // entries whose contents stay in the file; none discards shared
            // data or touches memory we do not own.
            unsafe { rustix::mm::madvise(ptr, len, advice) }
        })
    }

    /// Keeps the whole mapping, the reservation past the file's end
    /// included, out of this process's core dumps (`MADV_DONTDUMP`) and out
    /// of children made by `fork` (`MADV_DONTFORK`), as asked; with neither
    /// asked, no system call. The flags belong to the address range, so
    /// growth in place stays covered. Linux and Android only: elsewhere
    /// asking for either is `ENOTSUP` (the options refuse it earlier).
    /// Memory from the allocator (`Origin::Heap`, Miri only) is left as it
    /// is: it is not a mapping of its own that advice could mark.
    pub(crate) fn exclude(&self, from_dumps: bool, from_children: bool) -> Result<(), Errno> {
        if matches!(self.origin, Origin::Heap(_)) {
            return Ok(());
        }
        // Recorded first, so that a page the `SIGBUS` handler replaces is
        // advised too (invariant 6).
        self.guard.set_advice(from_dumps, from_children);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::mm::Advice;
            let wanted = [
                (from_dumps, Advice::LinuxDontDump),
                (from_children, Advice::LinuxDontFork),
            ];
            for (_, advice) in wanted.into_iter().filter(|&(on, _)| on) {
                self.on_pages(0, self.len, |ptr, len| {
                    // SAFETY: `[ptr, ptr + len)` is this mapping's whole
                    // range, which it owns (invariant 1; checked by
                    // `page_range`). `MADV_DONTDUMP` and `MADV_DONTFORK`
                    // change only flags of the range: whether a core dump
                    // writes it and whether a child made by `fork` gets it.
                    // In this process nothing is unmapped or changed
                    // (invariant 2 holds); for the child, see invariant 1.
                    unsafe { rustix::mm::madvise(ptr, len, advice) }
                })?;
            }
            Ok(())
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        if from_dumps || from_children {
            Err(Errno::NOTSUP)
        } else {
            Ok(())
        }
    }

    /// `msync` over the pages covering `[offset, offset + len)`.
    pub(crate) fn sync(&self, offset: usize, len: usize, wait: bool) -> Result<(), Errno> {
        use rustix::mm::MsyncFlags;
        if self.origin != Origin::File {
            // No file to write back to.
            return self.page_range(offset, len).map(drop).ok_or(Errno::INVAL);
        }
        let flags = if wait {
            MsyncFlags::SYNC
        } else {
            MsyncFlags::ASYNC
        };
        self.on_pages(offset, len, |ptr, len| {
            // SAFETY: the range lies inside our mapping (checked by
            // `page_range`); `msync` only writes dirty pages back to the
            // file.
            unsafe { rustix::mm::msync(ptr, len, flags) }
        })
    }

    /// `mlock` over the pages covering `[offset, offset + len)`. The
    /// pages are unlocked when the mapping is unmapped. Memory from the
    /// allocator (`Origin::Heap`, Miri only) is not locked: `dealloc` would
    /// not unlock it; the range is only checked.
    pub(crate) fn lock(&self, offset: usize, len: usize) -> Result<(), Errno> {
        if matches!(self.origin, Origin::Heap(_)) {
            return self.page_range(offset, len).map(drop).ok_or(Errno::INVAL);
        }
        self.on_pages(offset, len, |ptr, len| {
            // SAFETY: the range lies inside our mapping (checked by
            // `page_range`) and below the file's end (the caller passes a
            // published length); locking faults the pages in and keeps them
            // resident, changing no contents.
            unsafe { rustix::mm::mlock(ptr, len) }
        })
    }
}

/// `len` bytes of private anonymous memory, reserved without swap
/// accounting (`MAP_NORESERVE` where the system has it).
#[cfg(not(miri))]
pub(crate) fn anonymous(len: usize) -> Result<NonNull<u8>, Errno> {
    use rustix::mm::{MapFlags, ProtFlags};
    #[cfg(not(any(target_os = "freebsd", target_os = "dragonfly")))]
    let flags = MapFlags::PRIVATE | MapFlags::NORESERVE;
    #[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
    let flags = MapFlags::PRIVATE;
    // SAFETY: a null hint without `MAP_FIXED` lets the kernel choose a
    // free range, so no existing mapping is replaced. The range returned
    // is owned by the `Mapping` built from it (invariant 1: unmapped once,
    // in `Drop`, as `Origin::Anon`), and is private anonymous memory,
    // readable, writable and zero-filled (invariant 2), for `len` bytes.
    let ptr = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            flags,
        )?
    };
    NonNull::new(ptr.cast::<u8>()).ok_or(Errno::NOMEM)
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Origin::Heap(layout) = self.origin {
            crate::sys::memory::release(self.base, layout);
            return;
        }
        let base = self.base.as_ptr().cast::<c_void>();
        // Out of the handler's reach before the range is unmapped
        // (invariant 6).
        self.guard.retire();
        // SAFETY: we own `[base, base + len)` (invariant 1), obtained from
        // `mmap` (`Origin::File` or `Origin::Anon`), and `Drop` runs once,
        // when no `&Mapping`
        // (and so no copy or atomic reference derived from one) can exist
        // any more.
        let res = unsafe { rustix::mm::munmap(base, self.len) };
        if res.is_err() {
            // Invariant 5: the range stays mapped, and the leak is counted.
            UNMAP_FAILURES.fetch_add(1, Ordering::Relaxed);
        }
        self.guard.release();
    }
}
