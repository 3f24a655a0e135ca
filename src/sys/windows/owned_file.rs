//! [`OwnedFile`]: the handle of a mapped file, shared by a region's handle
//! and its mappings, which can remove the file when the last of them is
//! gone (safe code: the removal is `file::delete_by_handle`).

use std::os::windows::io::{AsHandle, BorrowedHandle, OwnedHandle};
use std::sync::atomic::{AtomicBool, Ordering};

/// A file's handle that, once [`remove_on_drop`](Self::remove_on_drop) was
/// called, marks the file for deletion through itself when dropped.
///
/// Windows refuses to delete a file while any process maps it
/// (`ERROR_ACCESS_DENIED`), so a region's owner cannot remove its file
/// when its handle drops if views of it remain: the removal waits for the
/// last holder of this handle (the owning `MmapRegion` and every mapping
/// it made, which its views keep), after their views are unmapped. If
/// another process still maps the file then, Windows refuses and the file
/// stays.
#[derive(Debug)]
pub(crate) struct OwnedFile {
    handle: OwnedHandle,
    remove: AtomicBool,
}

impl OwnedFile {
    /// `handle`, not removing its file.
    pub(crate) fn new(handle: OwnedHandle) -> Self {
        Self {
            handle,
            remove: AtomicBool::new(false),
        }
    }

    /// Makes the drop of the last holder mark the file for deletion.
    pub(crate) fn remove_on_drop(&self) {
        self.remove.store(true, Ordering::Relaxed);
    }

    /// A second handle to the same file (`DuplicateHandle`), not removing.
    pub(crate) fn try_clone(&self) -> std::io::Result<Self> {
        self.handle.try_clone().map(Self::new)
    }
}

impl AsHandle for OwnedFile {
    fn as_handle(&self) -> BorrowedHandle<'_> {
        self.handle.as_handle()
    }
}

impl Drop for OwnedFile {
    fn drop(&mut self) {
        if self.remove.load(Ordering::Relaxed) {
            // Through this handle: only the file it was opened on.
            let _ = super::file::delete_by_handle(self.handle.as_handle());
        }
    }
}
