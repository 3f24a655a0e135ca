//! [`OwnedFile`]: the handle of a mapped file, shared by a region's handle
//! and its mappings, which can remove the file when the last of them is
//! gone (safe code: the removal is `file::delete_by_handle`).

use std::os::windows::io::{AsHandle, BorrowedHandle, OwnedHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// A file's handle that, once [`remove_on_drop`](Self::remove_on_drop) was
/// called, marks the file for deletion when dropped: through itself if it
/// was opened with `DELETE` access (a file this process created), or
/// through the handle given to [`remove_through`](Self::remove_through)
/// (an attached file whose region took ownership); with neither, nothing
/// is removed.
///
/// Windows refuses to delete a file while any process maps it
/// (`ERROR_ACCESS_DENIED`), so a region's owner cannot remove its file
/// when its handle drops if views of it remain: the removal waits for the
/// last holder of this handle (the owning `MmapRegion` and every mapping
/// it made, which its views keep), after their views are unmapped. If
/// another handle still maps the file then, in this process or another,
/// Windows refuses and the file stays.
#[derive(Debug)]
pub(crate) struct OwnedFile {
    handle: OwnedHandle,
    /// `handle` was opened with `DELETE` access.
    deletable: bool,
    remove: AtomicBool,
    /// A second handle to the same file, with `DELETE` access.
    remover: OnceLock<OwnedHandle>,
}

impl OwnedFile {
    /// `handle` (opened without `DELETE`), not removing its file.
    pub(crate) fn new(handle: OwnedHandle) -> Self {
        Self {
            handle,
            deletable: false,
            remove: AtomicBool::new(false),
            remover: OnceLock::new(),
        }
    }

    /// `handle`, opened with `DELETE` access (a file this process
    /// created), not removing its file yet.
    pub(crate) fn deletable(handle: OwnedHandle) -> Self {
        let mut file = Self::new(handle);
        file.deletable = true;
        file
    }

    /// Whether a drop after [`remove_on_drop`](Self::remove_on_drop) can
    /// remove the file.
    pub(crate) fn can_remove(&self) -> bool {
        self.deletable || self.remover.get().is_some()
    }

    /// Removes the file through `remover` (a handle with `DELETE` access to
    /// the same file, which the caller checked) when the time comes; a
    /// second call keeps the first handle.
    pub(crate) fn remove_through(&self, remover: OwnedHandle) {
        let _ = self.remover.set(remover);
    }

    /// Makes the drop of the last holder mark the file for deletion.
    pub(crate) fn remove_on_drop(&self) {
        self.remove.store(true, Ordering::Relaxed);
    }

    /// A second handle to the same file (`DuplicateHandle`, same access),
    /// not removing.
    pub(crate) fn try_clone(&self) -> std::io::Result<Self> {
        let mut copy = self.handle.try_clone().map(Self::new)?;
        copy.deletable = self.deletable;
        Ok(copy)
    }
}

impl AsHandle for OwnedFile {
    fn as_handle(&self) -> BorrowedHandle<'_> {
        self.handle.as_handle()
    }
}

impl Drop for OwnedFile {
    fn drop(&mut self) {
        if !self.remove.load(Ordering::Relaxed) {
            return;
        }
        // Through a handle: only the file it was opened on.
        if let Some(remover) = self.remover.get() {
            let _ = super::file::delete_by_handle(remover.as_handle());
        } else if self.deletable {
            let _ = super::file::delete_by_handle(self.handle.as_handle());
        }
    }
}
