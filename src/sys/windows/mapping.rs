//! The Windows part of [`Mapping`]: a view of a file's section or of a
//! named section, or a private reservation, taken over from `section.rs`
//! and `memory.rs`; its commit and the query of its committed prefix,
//! write-back and release (invariants W7, W8 and W10, and W11 below in
//! the parent module).

use std::mem::ManuallyDrop;
use std::os::windows::io::{AsHandle, BorrowedHandle};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{memory, section, Errno};
use crate::sys::mapping::{Hint, Mapping, Origin, UNMAP_FAILURES};
use crate::sys::round_up_to_page;
use crate::sys::sigbus::Registration;

impl Mapping {
    /// Maps the first `len` bytes of `file`: a new section of the file's
    /// size as it is now (size 0 asked: a section never lengthens the file,
    /// as a larger size asked would for a writable one) and a view of `len`
    /// bytes of it, rounded up to pages. If the file is now shorter than
    /// `len` (a peer cut it before any view mapped it), the view cannot be
    /// made and the call fails (`ERROR_ACCESS_DENIED` on Windows). No
    /// reservation past `len`: the section of a file cannot be longer than
    /// the file without making the file that long, so on Windows a file
    /// grows into a new mapping (a new generation), and `reserve` is not
    /// used.
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
        let made = section::create_section(Some(file), 0, writable, None, false);
        let sec = made.map_err(|e| Errno::of(&e))?;
        // The view keeps the section alive; its handle closes at the end.
        let view = section::map_view(sec.as_handle(), len, writable).map_err(|e| Errno::of(&e))?;
        let (base, _) = view.into_raw();
        Ok(Self::of_range(base, rounded, writable, Origin::File))
    }

    /// Maps the whole of a named (pagefile-backed) `section`: the view is
    /// as long as the section its maker reserved; only its committed
    /// prefix ([`committed`](Self::committed)) may be accessed (W10).
    pub(crate) fn of_section(section: BorrowedHandle<'_>, writable: bool) -> Result<Self, Errno> {
        let view = section::map_whole(section, writable).map_err(|e| Errno::of(&e))?;
        let (base, len) = view.into_raw();
        let rounded = round_up_to_page(len).ok_or(Errno::INVAL)?;
        Ok(Self::of_range(base, rounded, writable, Origin::File))
    }

    fn of_range(base: NonNull<u8>, len: usize, writable: bool, origin: Origin) -> Self {
        Self {
            base,
            len,
            writable,
            origin,
            #[cfg(all(feature = "arbitrary", not(loom)))]
            hostile: None,
            // No file can be cut below a view on Windows: nothing to guard.
            guard: Registration::none(),
            file: None,
            held: None,
        }
    }

    /// The range as a `section::View` for the calls of that module, never
    /// dropped (the `Mapping` keeps owning it).
    fn pages(&self) -> ManuallyDrop<section::View> {
        // SAFETY: W7/W8: `[base, base + len)` is the view or the private
        // reservation this mapping owns (from `View::into_raw` or
        // `memory::reserve_private`) until its `Drop`; the `View` is in a
        // `ManuallyDrop` and lives no longer than `&self`, so it unmaps
        // nothing.
        ManuallyDrop::new(unsafe { section::View::from_raw(self.base, self.len) })
    }

    /// Commits the pages covering `[0, len)` (W10): a `SEC_RESERVE`
    /// section or a private reservation gains them, zero-filled, for every
    /// view; committed pages of a section stay committed while any view or
    /// handle of it lives.
    pub(crate) fn commit(&self, len: usize) -> Result<(), Errno> {
        if len > self.len {
            return Err(Errno::INVAL);
        }
        section::commit(&self.pages(), 0, len, self.writable).map_err(|e| Errno::of(&e))
    }

    /// The committed prefix of this mapping in bytes (a multiple of the
    /// page size), as `VirtualQuery` reports it: the system's record,
    /// which no peer can make larger than what is committed (W10).
    pub(crate) fn committed(&self) -> usize {
        section::committed_prefix(&self.pages())
    }

    /// Whether this view shows a file rather than the pagefile
    /// (`section::backed_by_file`).
    pub(crate) fn backed_by_file(&self) -> bool {
        section::backed_by_file(self.base)
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

    /// No advice on Windows: every hint is `NOTSUP` (the range is checked
    /// first: `INVAL` outside the mapping).
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

    /// Writes the dirty pages covering `[offset, offset + len)` back to the
    /// file (`FlushViewOfFile`) and, if `wait` and the file is known,
    /// waits for the disk (`FlushFileBuffers`). Memory has nothing to
    /// write back: the range is only checked.
    pub(crate) fn sync(&self, offset: usize, len: usize, wait: bool) -> Result<(), Errno> {
        let (start, pages) = self.page_range(offset, len).ok_or(Errno::INVAL)?;
        if self.origin != Origin::File {
            return Ok(());
        }
        let start = (start as usize).saturating_sub(self.base.as_ptr() as usize);
        let wait_on = if wait { self.file() } else { None };
        section::flush(&self.pages(), start, pages, wait_on).map_err(|e| Errno::of(&e))
    }
}

/// `len` bytes of private address space, reserved, none committed.
pub(crate) fn anonymous(len: usize) -> Result<NonNull<u8>, Errno> {
    memory::reserve_private(len).map_err(|e| Errno::of(&e))
}

impl Drop for Mapping {
    fn drop(&mut self) {
        match self.origin {
            Origin::Heap(layout) => crate::sys::memory::release(self.base, layout),
            // SAFETY: W7: the view at `base` is this mapping's own (from
            // `View::into_raw`), and `Drop` runs once, when no `&Mapping`
            // (and so no copy or atomic reference from one) exists: the
            // `View` dropped here unmaps it, counting a failure.
            Origin::File => drop(unsafe { section::View::from_raw(self.base, self.len) }),
            Origin::Anon => {
                // SAFETY: W8: the reservation at `base` is this mapping's own
                // (from `memory::reserve_private`), released once, here,
                // when nothing uses it any more.
                if !unsafe { memory::free_private(self.base) } {
                    UNMAP_FAILURES.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
