//! [`MmapRegion`] on Windows: the owning handle over a file, a named,
//! pagefile-backed section or in-process memory, its growth and the
//! following of a peer's growth. Its constructors are in `open.rs`; its
//! views are the portable [`Region`].

use std::fmt;
use std::os::windows::io::{AsHandle, BorrowedHandle, OwnedHandle};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Limit, Result};
use crate::fs;
use crate::map::{self, FileArc, Origin};
use crate::options::{Advice, MmapOptions};
use crate::protocol::{Follow, Publisher};
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::sys::{self, Errno, Mapping};
use crate::view::Region;

/// What backs a region on Windows.
pub(super) enum Backing {
    /// A file, open at this handle; its length is the region's. Every
    /// growth maps it anew (a section of a file cannot be longer than the
    /// file).
    File(FileArc),
    /// A named section created with `SEC_RESERVE`: its length is its
    /// committed prefix, which only grows.
    Section(Arc<OwnedHandle>),
    /// Process memory shared by every handle, and the length they
    /// published.
    Memory(Arc<AtomicUsize>),
}

/// A shared memory region that one process creates and grows and others
/// attach to and follow.
///
/// On Windows the same type and the same promises as on Unix where
/// Windows can keep them (the crate documentation's platform table lists
/// what differs):
///
/// - [`create`](Self::create) makes a file exclusively (`CREATE_NEW`,
///   never through a reparse point at the name) with a security
///   descriptor that gives the creating user (and the system) alone
///   access, and reserves its blocks; [`attach`](Self::attach) refuses
///   directories, devices, pipes, reparse points, files with more than one
///   name, files another user owns and files whose DACL lets others write
///   them (each unless an option allows it). A file cannot be cut below a
///   mapped view on Windows (`SetEndOfFile` fails), so no peer can make an
///   access fault. A file grows into a new mapping (a new generation):
///   the section of a file cannot be longer than the file, which is also
///   why [`MmapOptions::address_space`] is refused (`Unsupported`) for
///   files there. Neither attaching nor following ever changes the file's
///   size.
/// - [`create_shm`](Self::create_shm) makes a named section in the
///   `Local\` namespace (this session's), pagefile-backed, owner-only,
///   and refuses a name that exists (the existing object is closed,
///   never used); [`attach_shm`](Self::attach_shm) checks the section's
///   owner and DACL as `attach` checks a file's. A named region's length
///   is a whole number of pages: the section's committed prefix, which
///   the kernel reports to every process that maps it (`VirtualQuery`),
///   so no peer can make this process touch a page that is not there;
///   `create_shm(name, 5000, ..)` makes a region of 8192 bytes on x86_64,
///   as Python's `SharedMemory` sees it. It grows in place, committing
///   pages of the section reserved at creation ([`MmapOptions::address_space`],
///   by default the reservation Unix uses); growth past that reservation
///   is refused (`FileTooLarge`), since a section's size is fixed when it
///   is created.
/// - [`FileCleanup`](crate::FileCleanup): a named section lives while any
///   handle or view of it does, in any process, and its name goes with
///   the last of them, whatever the cleanup. For a file, `Manual` removes
///   it through its own handle (so only the file it created) once the
///   owning handle and its last view are gone; Windows refuses to delete a
///   file that another handle, in this process or another, still maps,
///   and then the file stays. `Auto` marks the file for deletion before it
///   is mapped: `attach` by path then fails on Windows, and the file
///   disappears with its last handle and view.
/// - [`Region::wait_u32`] between processes polls (see its
///   documentation for the latency).
/// - A view of a file whose storage fails (a network or removable
///   volume) can raise `EXCEPTION_IN_PAGE_ERROR`, the counterpart of
///   `SIGBUS`, which the crate does not contain on Windows: map files on
///   local volumes. Named regions must be pagefile-backed: `attach_shm`
///   refuses a section backed by a file (`Unsupported`).
/// - Descriptor passing, seals, `Frozen`, `Doorbell`, `stage`, the
///   `SIGBUS` guard and advice do not exist on Windows; `advise` is
///   `Unsupported`.
pub struct MmapRegion {
    pub(super) backing: Backing,
    pub(super) publisher: Publisher<Mapping>,
    pub(super) path: PathBuf,
    pub(super) name: Option<String>,
    pub(super) owner: bool,
    pub(super) writable: bool,
    pub(super) options: MmapOptions,
    pub(super) origin: Origin,
}

impl MmapRegion {
    /// A handle on `backing` with `map` published as generation 0 holding
    /// `len` bytes; no path, no name, not owning.
    pub(super) fn with(
        backing: Backing,
        map: Arc<Mapping>,
        len: usize,
        writable: bool,
        options: &MmapOptions,
        origin: Origin,
    ) -> Self {
        Self {
            backing,
            publisher: Publisher::new(map, len),
            path: PathBuf::new(),
            name: None,
            owner: false,
            writable,
            options: options.clone(),
            origin,
        }
    }

    /// A view of the newest mapping. Views stay valid after this handle
    /// grows or is dropped; see [`Region`].
    #[must_use]
    pub fn region(&self) -> Region {
        Region::new(self.publisher.current().clone())
    }

    /// The mapped length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.publisher.current().len()
    }

    /// Whether the mapped length is zero (never true: regions are never
    /// empty; provided for API symmetry).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The generation of the newest mapping: 0 after create or attach, and
    /// one more for each growth this handle published or followed.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.publisher.current().generation()
    }

    /// Whether this handle maps the region read-only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        !self.writable
    }

    /// The path given at creation or attach; empty for named and
    /// in-memory regions.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The handle of the file behind the region, or `None` for a named or
    /// in-memory region (the Windows counterpart of Unix's `fd`).
    #[must_use]
    pub fn handle(&self) -> Option<BorrowedHandle<'_>> {
        match &self.backing {
            Backing::File(file) => Some(file.as_handle()),
            Backing::Section(_) | Backing::Memory(_) => None,
        }
    }

    /// Makes this handle remove the file when dropped (a file region;
    /// nothing for named and in-memory regions), through a handle to the
    /// file it mapped, never by name alone: a created handle has one; an
    /// attached handle opens the file at its [`path`](Self::path) again now
    /// with `DELETE` access and keeps that handle if it is the same file
    /// (same volume and file identifier). If it is not, or it cannot be
    /// opened so, dropping the handle removes nothing. Windows refuses to
    /// delete a file any process maps: the removal waits for this handle's
    /// last view, and if another process still maps the file then, it
    /// stays.
    pub fn take_ownership(&mut self) {
        let Backing::File(file) = &self.backing else {
            return;
        };
        if !file.can_remove() {
            if let Some(h) = fs::reopen_for_removal(&self.path, file.as_handle()) {
                file.remove_through(h);
            }
        }
        self.owner = true;
    }

    /// Makes this handle leave the file in place when dropped.
    pub fn release_ownership(&mut self) {
        self.owner = false;
    }

    /// The size of what backs the region now: the file's, the section's
    /// committed prefix, or the length an in-memory region's handles
    /// published.
    fn source_len(&self, op: &'static str) -> Result<u64> {
        match &self.backing {
            Backing::File(file) => fs::size_of(file.as_handle(), op),
            Backing::Section(_) => Ok(len64(self.publisher.current().map().committed())),
            Backing::Memory(published) => Ok(len64(published.load(Ordering::Acquire))),
        }
    }

    /// Grows the region to `new_size` bytes and publishes the new length
    /// (generation + 1); views taken before keep theirs.
    ///
    /// A file's blocks are reserved (unless
    /// [`MmapOptions::reserve_blocks`] is off), then its length is raised
    /// (never lowered: a peer may have grown it further), then a new
    /// mapping of the new length is made; if that mapping cannot be made,
    /// the error is returned and the file keeps its new length (setting it
    /// back could cut a peer's growth). Two handles growing one file at
    /// once are not serialised: one may set a length below the other's
    /// before either maps it; then the other's mapping fails (an error,
    /// never a fault: a length below a mapped view is refused). A named or
    /// in-memory region commits the pages in place (same base address),
    /// a named one in whole pages.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::ReadOnly`] for a read-only handle;
    /// - [`ErrorKind::ShrinkRefused`] if `new_size < len()`
    ///   (`new_size == len()` is a no-op);
    /// - [`ErrorKind::InvalidSize`] if `new_size` is over `isize::MAX`;
    /// - [`ErrorKind::FileTooLarge`] past [`MmapOptions::max_size`], past
    ///   a named section's reservation, or (without `max_size`) past the
    ///   address-space share of the handle's origin;
    /// - [`ErrorKind::Unsupported`] for an in-memory region past its
    ///   capacity;
    /// - [`ErrorKind::StorageFull`] if the blocks cannot be reserved or
    ///   the pages committed (the system's commit limit);
    /// - [`ErrorKind::Os`] for other failures.
    ///
    /// After an error the handle keeps its length, mapping and contents.
    pub fn resize(&mut self, new_size: usize) -> Result<()> {
        const OP: &str = "resize";
        if !self.writable {
            return Err(Error::new(ErrorKind::ReadOnly, OP));
        }
        let cur = self.len();
        if new_size < cur {
            return Err(Error::shrink_refused(OP, cur, new_size));
        }
        if new_size == cur {
            return Ok(());
        }
        let to = map::checked_size(&self.options, new_size, OP)?;
        let current = Arc::clone(self.publisher.current().map_arc());
        let (map, len) = match &self.backing {
            Backing::File(file) => {
                let h = file.as_handle();
                // A peer may have grown the file further: never shrink it.
                let now = fs::size_of(h, OP)?;
                // A handle that saw a truncation never resizes again.
                if self
                    .publisher
                    .refuses_growth(usize::try_from(now).unwrap_or(usize::MAX))
                {
                    return Err(Error::truncated(OP, cur, now));
                }
                if self.options.reserve_blocks {
                    fs::reserve(h, to.max(now), OP)?;
                }
                if to > now {
                    fs::set_len(h, to, OP)?;
                }
                // If the new mapping cannot be made, the file keeps its new
                // length: setting it back could cut a growth a peer made
                // meanwhile.
                let map = map::map_len(&self.options, self.origin, file, None, new_size, true, OP)?;
                (map, new_size)
            }
            Backing::Section(_) => {
                let len = sys::round_up_to_page(new_size)
                    .ok_or_else(|| Error::invalid_size(OP, new_size))?;
                if !current.covers(len) {
                    return Err(Error::too_large(
                        OP,
                        new_size,
                        Limit::Reservation(current.mapped_len()),
                    ));
                }
                current.commit(len).map_err(|e| commit_error(OP, e))?;
                (current, len)
            }
            Backing::Memory(published) => {
                map::within_capacity(&current, new_size, OP)?;
                current.commit(new_size).map_err(|e| commit_error(OP, e))?;
                published.fetch_max(new_size, Ordering::Release);
                (current, new_size)
            }
        };
        self.publisher.publish(map, len);
        Ok(())
    }

    /// Checks the size of what backs the region and follows a growth made
    /// by another handle: a file is mapped anew, a named or in-memory
    /// region is followed in place. If it grew, the generation goes up by
    /// one and `Ok(true)` is returned; if not, `Ok(false)`.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Truncated`] if the file is now shorter than the
    ///   mapped length (Windows refuses that while a view is mapped, so
    ///   only a file system that does not enforce it can cause it), sticky
    ///   as on Unix;
    /// - [`ErrorKind::FileTooLarge`] if the length grew past what this
    ///   process can map or past [`MmapOptions::max_size`] (without it, past
    ///   the quarter of the address space left or the origin's share);
    /// - [`ErrorKind::Os`] if a query or the mapping fails.
    pub fn check_and_remap(&mut self) -> Result<bool> {
        const OP: &str = "check_and_remap";
        let size = self.source_len(OP)?;
        let cur = self.len();
        let (options, backing, writable, origin) =
            (&self.options, &self.backing, self.writable, self.origin);
        let file_len = usize::try_from(size).unwrap_or(usize::MAX);
        let followed = self.publisher.follow(file_len, |map, _| match backing {
            Backing::File(file) => {
                let len = map::file_mappable(options, size, OP)?;
                map::map_len(options, origin, file, None, len, writable, OP)
            }
            Backing::Section(_) | Backing::Memory(_) => {
                let len = map::mappable(options, size, OP)?;
                map::within_capacity(map, len, OP)
            }
        })?;
        match followed {
            Follow::Unchanged => Ok(false),
            Follow::Grew => Ok(true),
            Follow::Truncated => Err(Error::truncated(OP, cur, size)),
        }
    }

    /// Makes sure at least `min` bytes are mapped, calling
    /// [`check_and_remap`](Self::check_and_remap) only when they are not
    /// (one atomic load otherwise), as on Unix.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] if fewer than `min` bytes are mapped
    /// after following, and the errors of `check_and_remap`.
    pub fn ensure_len(&mut self, min: usize) -> Result<bool> {
        if self.publisher.current().accessible_len() >= min {
            return Ok(false);
        }
        self.check_and_remap()?;
        if self.len() >= min {
            Ok(true)
        } else {
            Err(Error::out_of_bounds(
                "ensure_len",
                0,
                min,
                self.publisher.current().accessible_len(),
            ))
        }
    }

    /// Writes the mapping's dirty pages back to the file and waits until
    /// the file's buffers are on disk (`FlushViewOfFile`, then
    /// `FlushFileBuffers`), up to the accessible length. Nothing to write
    /// for named and in-memory regions.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`] if a call fails.
    pub fn flush(&self) -> Result<()> {
        let len = self.publisher.current().accessible_len();
        self.sync_range(0, len, true, "flush")
    }

    /// Starts writing the mapping's dirty pages back to the file
    /// (`FlushViewOfFile`) without waiting for the disk.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`] if the call fails.
    pub fn flush_async(&self) -> Result<()> {
        let len = self.publisher.current().accessible_len();
        self.sync_range(0, len, false, "flush_async")
    }

    /// Writes back the pages covering `len` bytes at `offset` and waits.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] if the range is not within
    /// [`len`](Self::len); [`ErrorKind::Os`] if a call fails.
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<()> {
        self.sync_range(offset, len, true, "flush_range")
    }

    fn sync_range(&self, offset: usize, len: usize, wait: bool, op: &'static str) -> Result<()> {
        let view = self.publisher.current();
        if !view.check(offset, len) {
            return Err(Error::out_of_bounds(op, offset, len, view.accessible_len()));
        }
        view.map()
            .sync(offset, len, wait)
            .map_err(|e| Error::os(op, e))
    }

    /// Access-pattern advice: Windows has no `madvise`, and the crate
    /// offers none there.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`], always.
    pub fn advise(&self, advice: Advice) -> Result<()> {
        let len = self.publisher.current().accessible_len();
        self.advise_range(0, len, advice)
    }

    /// As [`advise`](Self::advise), for `len` bytes at `offset`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] if the range is not within
    /// [`len`](Self::len), otherwise [`ErrorKind::Unsupported`].
    pub fn advise_range(&self, offset: usize, len: usize, advice: Advice) -> Result<()> {
        const OP: &str = "advise";
        let view = self.publisher.current();
        if !view.check(offset, len) {
            return Err(Error::out_of_bounds(OP, offset, len, view.accessible_len()));
        }
        view.map()
            .advise(offset, len, advice.hint())
            .map_err(|e| match e {
                Errno::NOTSUP => Error::with_errno(ErrorKind::Unsupported, OP, e)
                    .because("Windows has no madvise: the crate offers no advice there"),
                e => Error::os(OP, e),
            })
    }
}

/// A length as a `u64` (every `usize` fits on Windows targets).
fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The error of a failed commit: the system's commit limit (or memory)
/// is `StorageFull`, as a full disk is for a file.
pub(super) fn commit_error(op: &'static str, e: Errno) -> Error {
    match e {
        Errno::COMMIT | Errno::NOMEM => Error::with_errno(ErrorKind::StorageFull, op, e),
        e => Error::os(op, e),
    }
}

impl Drop for MmapRegion {
    fn drop(&mut self) {
        if let (true, Backing::File(file)) = (self.owner, &self.backing) {
            // Windows refuses to delete a mapped file: the removal is made
            // by the last holder of the handle, once every view of this
            // handle's mappings is unmapped (`OwnedFile`).
            file.remove_on_drop();
        }
    }
}

impl fmt::Debug for MmapRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapRegion")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("len", &self.len())
            .field("generation", &self.generation())
            .field("owner", &self.owner)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}
