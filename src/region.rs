//! `MmapRegion`, the owning handle, and `Region`, its generation-tagged views.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::error::{Error, ErrorKind, Result};
use crate::fs::{self, Location, Reserved, TrustPolicy};
use crate::protocol::{Follow, Publisher, View};
use crate::sync::Arc;
use crate::sys::Mapping;

/// What happens to the backing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileCleanup {
    /// The file stays at its path so that peers can attach by path. The
    /// creator owns it and removes it when dropped, unless
    /// [`MmapRegion::release_ownership`] was called; an attached handle
    /// removes it only after [`MmapRegion::take_ownership`].
    Manual,
    /// The file is unlinked as soon as it is mapped; peers attach through the
    /// descriptor ([`AsFd`] and [`MmapRegion::attach_fd`]), and
    /// [`MmapRegion::attach`] by path finds nothing.
    Auto,
}

/// One gibibyte: the smallest default address-space reservation.
const MIN_DEFAULT_RESERVATION: usize = 1 << 30;
/// The default reservation is this many times the mapped size, if larger.
const RESERVATION_FACTOR: usize = 64;

/// Options for the policies that the plain constructors fix to their
/// hardened defaults.
///
/// ```
/// # #[cfg(miri)] fn main() {} // Miri cannot map files.
/// # #[cfg(not(miri))]
/// # fn main() -> Result<(), shm_region::Error> {
/// use shm_region::{FileCleanup, MmapOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let region = MmapOptions::new()
///     .reserve_blocks(false)          // sparse: faster, but a full disk means SIGBUS later
///     .address_space(64 << 20)        // room to grow in place up to 64 MiB
///     .create(&dir.path().join("seg"), 4096, FileCleanup::Manual)?;
/// assert_eq!(region.len(), 4096);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmapOptions {
    reserve_blocks: bool,
    address_space: Option<usize>,
    trust: TrustPolicy,
}

impl Default for MmapOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl MmapOptions {
    /// The hardened defaults: blocks reserved on create and grow, an
    /// address-space reservation of at least 1 GiB or 64 × the size, and
    /// attach only to files owned by the effective user and not writable by
    /// group or others.
    #[must_use]
    pub fn new() -> Self {
        Self {
            reserve_blocks: true,
            address_space: None,
            trust: TrustPolicy {
                allow_other_owner: false,
                allow_group_or_other_write: false,
            },
        }
    }

    /// Whether `create` and `resize` reserve the file's blocks (`fallocate`,
    /// or writing zeros where that is not available) before the new size
    /// becomes visible. On (the default), a full file system is an error
    /// from the call. Off, growth is sparse and cheaper, but a full file
    /// system (tmpfs in particular) kills whoever first touches an unbacked
    /// page with `SIGBUS`.
    pub fn reserve_blocks(&mut self, yes: bool) -> &mut Self {
        self.reserve_blocks = yes;
        self
    }

    /// Bytes of address space to reserve for each mapping, so that growth
    /// up to that size keeps the base address and the pages already faulted
    /// in. The default is the larger of 1 GiB and 64 × the mapped size.
    /// `0` maps exactly, so every growth moves the base (as the reference
    /// implementation did). Reserved address space costs no memory.
    pub fn address_space(&mut self, bytes: usize) -> &mut Self {
        self.address_space = Some(bytes);
        self
    }

    /// Whether `attach` accepts a file owned by a user other than the
    /// effective user. Off by default: another user's file can be truncated
    /// or rewritten by that user at any time.
    pub fn allow_other_owner(&mut self, yes: bool) -> &mut Self {
        self.trust.allow_other_owner = yes;
        self
    }

    /// Whether `attach` accepts a file writable by its group or by others.
    /// Off by default: anyone with write permission can truncate the file
    /// under every peer.
    pub fn allow_group_or_other_write(&mut self, yes: bool) -> &mut Self {
        self.trust.allow_group_or_other_write = yes;
        self
    }

    /// The address space to reserve for a mapping of `len` bytes.
    fn reservation_for(&self, len: usize) -> usize {
        match self.address_space {
            Some(bytes) => bytes.max(len),
            None => MIN_DEFAULT_RESERVATION.max(len.saturating_mul(RESERVATION_FACTOR)),
        }
    }

    /// Creates a region with these options; see [`MmapRegion::create`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::create`].
    pub fn create(&self, path: &Path, size: usize, cleanup: FileCleanup) -> Result<MmapRegion> {
        MmapRegion::create_with(self, path, size, cleanup)
    }

    /// Attaches to the file at `path` with these options; see
    /// [`MmapRegion::attach`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach`].
    pub fn attach(&self, path: &Path) -> Result<MmapRegion> {
        let loc = fs::locate(path, "attach")?;
        let fd = fs::open_existing(&loc, true)?;
        MmapRegion::from_fd(self, fd, Some(loc), path.to_path_buf(), "attach")
    }

    /// Attaches to an open file with these options; see
    /// [`MmapRegion::attach_fd`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach_fd`].
    pub fn attach_fd(&self, fd: OwnedFd) -> Result<MmapRegion> {
        MmapRegion::from_fd(self, fd, None, PathBuf::new(), "attach_fd")
    }
}

/// A file-backed, `MAP_SHARED` memory region that one process creates and
/// grows and others attach to and follow.
///
/// The handle owns the descriptor and publishes mappings; the memory is
/// reached through [`Region`] views taken with [`MmapRegion::region`], which
/// keep their mapping alive for as long as they live.
///
/// ```
/// # #[cfg(miri)] fn main() {} // Miri cannot map files.
/// # #[cfg(not(miri))]
/// # fn main() -> Result<(), shm_region::Error> {
/// use shm_region::{FileCleanup, MmapRegion};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("segment");
///
/// let mut host = MmapRegion::create(&path, 4096, FileCleanup::Manual)?;
/// let mut guest = MmapRegion::attach(&path)?;      // usually another process
///
/// host.region().write_at(0, b"hello")?;
/// host.resize(8192)?;                               // grows in place
/// host.region().write_at(8000, b"tail")?;
///
/// assert!(guest.check_and_remap()?);               // follows the growth
/// let mut buf = [0u8; 4];
/// guest.region().read_at(8000, &mut buf)?;
/// assert_eq!(&buf, b"tail");
/// # Ok(()) }
/// ```
pub struct MmapRegion {
    fd: OwnedFd,
    publisher: Publisher<Mapping>,
    path: PathBuf,
    /// Where the file is linked, while it may still be ours to remove.
    location: Option<Location>,
    dev: rustix::fs::Dev,
    ino: u64,
    owner: bool,
    options: MmapOptions,
}

/// Refuses sizes that cannot be mapped or stored as a file length.
fn checked_size(size: usize, op: &'static str) -> Result<u64> {
    if size == 0 || isize::try_from(size).is_err() {
        return Err(Error::new(ErrorKind::InvalidSize, op));
    }
    fs::file_len(size, op)
}

impl MmapRegion {
    /// Creates a new file at `path` of `size` zero bytes and maps it.
    ///
    /// The file is created with `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` and mode
    /// `0600` applied at creation, so an existing file, directory or symbolic
    /// link (even a dangling one) at `path` is never opened, truncated or
    /// re-permissioned. Blocks for the whole size are reserved before the
    /// size is set, so a full file system is reported here rather than by
    /// `SIGBUS` later. If any step fails, the file is removed again.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::InvalidSize`] if `size` is 0 or cannot be mapped;
    /// - [`ErrorKind::InvalidPath`] if `path` has no file name;
    /// - [`ErrorKind::AlreadyExists`] if anything exists at `path`;
    /// - [`ErrorKind::StorageFull`] if the file system has no room;
    /// - [`ErrorKind::NotFound`] if the parent directory does not exist;
    /// - [`ErrorKind::Os`] for other failures of the system calls.
    pub fn create(path: &Path, size: usize, cleanup: FileCleanup) -> Result<Self> {
        Self::create_with(&MmapOptions::new(), path, size, cleanup)
    }

    fn create_with(
        options: &MmapOptions,
        path: &Path,
        size: usize,
        cleanup: FileCleanup,
    ) -> Result<Self> {
        const OP: &str = "create";
        let file_len = checked_size(size, OP)?;
        let loc = fs::locate(path, OP)?;
        let fd = fs::create_exclusive(&loc, rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR)?;
        let made = fs::identity(fd.as_fd(), OP).and_then(|id| {
            let mapped = Self::grow_and_map(options, fd.as_fd(), None, 0, size, file_len, OP);
            mapped.map(|map| (id, map))
        });
        let (id, map) = match made {
            Ok(v) => v,
            Err(e) => {
                // We created the file; remove it, whatever is now at the
                // name. Nothing may be left at the path after a failure.
                let _ = rustix::fs::unlinkat(&loc.dir, &*loc.name, rustix::fs::AtFlags::empty());
                return Err(e);
            }
        };
        let location = match cleanup {
            FileCleanup::Manual => Some(loc),
            FileCleanup::Auto => {
                fs::remove_if_same(&loc, id.dev, id.ino).map_err(|e| Error::os(OP, e))?;
                None
            }
        };
        Ok(Self {
            fd,
            publisher: Publisher::new(map, size),
            path: path.to_path_buf(),
            location,
            dev: id.dev,
            ino: id.ino,
            owner: cleanup == FileCleanup::Manual,
            options: options.clone(),
        })
    }

    /// Attaches to an existing region file at `path`.
    ///
    /// Before anything is opened, the final path component must be a regular
    /// file (not a symbolic link, directory, FIFO, socket or device); it is
    /// then opened `O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC` and checked again on the
    /// descriptor, as [`attach_fd`](Self::attach_fd) does. The whole file
    /// is mapped. The attached handle does not own the file.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::NotFound`] if nothing is at `path`;
    /// - [`ErrorKind::NotRegularFile`] for anything but a regular file;
    /// - [`ErrorKind::EmptyFile`] for a file of length 0;
    /// - [`ErrorKind::FileTooLarge`] for a file larger than `isize::MAX`;
    /// - [`ErrorKind::UntrustedOwner`] for a file owned by another user, and
    ///   [`ErrorKind::InsecureMode`] for one writable by group or others
    ///   (see [`MmapOptions`] to widen this);
    /// - [`ErrorKind::Os`] for other failures (for example permission).
    pub fn attach(path: &Path) -> Result<Self> {
        MmapOptions::new().attach(path)
    }

    /// Attaches to the region file open at `fd`, which must be open for
    /// reading and writing. The checks are those of [`attach`](Self::attach)
    /// after opening: a regular, non-empty file of mappable size, owned by
    /// the effective user and not writable by group or others. The size
    /// comes from `fstat`, never from the sender of the descriptor.
    /// [`path`](Self::path) is empty for such a handle.
    ///
    /// # Errors
    ///
    /// As [`attach`](Self::attach), except `NotFound`; a descriptor not open
    /// for writing fails with [`ErrorKind::Os`] (`EACCES`).
    pub fn attach_fd(fd: OwnedFd) -> Result<Self> {
        MmapOptions::new().attach_fd(fd)
    }

    fn from_fd(
        options: &MmapOptions,
        fd: OwnedFd,
        location: Option<Location>,
        path: PathBuf,
        op: &'static str,
    ) -> Result<Self> {
        let info = fs::validate(fd.as_fd(), options.trust, op)?;
        let len = Self::mappable(info.size, op)?;
        let map = Mapping::new(fd.as_fd(), len, options.reservation_for(len), true)
            .map_err(|e| Error::os(op, e))?;
        Ok(Self {
            fd,
            publisher: Publisher::new(Arc::new(map), len),
            path,
            location,
            dev: info.dev,
            ino: info.ino,
            owner: false,
            options: options.clone(),
        })
    }

    /// A file size as a mappable length.
    fn mappable(size: u64, op: &'static str) -> Result<usize> {
        usize::try_from(size)
            .ok()
            .filter(|&n| isize::try_from(n).is_ok())
            .ok_or_else(|| Error::new(ErrorKind::FileTooLarge, op))
    }

    /// Reserves blocks for `[from, to)`, maps `len` bytes (extending
    /// `current` in place when it has room), then raises the file size to
    /// `to`. The size changes last, so a failure before it leaves the file as
    /// it was; a failure of the size change itself leaves the new mapping
    /// unpublished.
    fn grow_and_map(
        options: &MmapOptions,
        fd: BorrowedFd<'_>,
        current: Option<&Arc<Mapping>>,
        from: u64,
        len: usize,
        to: u64,
        op: &'static str,
    ) -> Result<Arc<Mapping>> {
        let how = if options.reserve_blocks {
            fs::reserve(fd, from, to, op)?
        } else {
            Reserved::Sparse
        };
        let map = Self::map_len(options, fd, current, len, op)?;
        fs::extend(fd, to, how, op)?;
        Ok(map)
    }

    /// A mapping covering `len` bytes: `current` extended in place if it has
    /// room, otherwise a new one.
    fn map_len(
        options: &MmapOptions,
        fd: BorrowedFd<'_>,
        current: Option<&Arc<Mapping>>,
        len: usize,
        op: &'static str,
    ) -> Result<Arc<Mapping>> {
        if let Some(cur) = current {
            if cur.extend(fd, len).map_err(|e| Error::os(op, e))? {
                return Ok(Arc::clone(cur));
            }
        }
        let map = Mapping::new(fd, len, options.reservation_for(len), true)
            .map_err(|e| Error::os(op, e))?;
        Ok(Arc::new(map))
    }

    /// A view of the newest mapping. Views stay valid after this handle
    /// grows or is dropped; see [`Region`].
    #[must_use]
    pub fn region(&self) -> Region {
        Region {
            view: self.publisher.current().clone(),
        }
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

    /// The path given at creation or attach; empty for
    /// [`attach_fd`](Self::attach_fd). With [`FileCleanup::Auto`] nothing is
    /// linked there any more.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes this handle remove the file when dropped (if it still is the
    /// file this handle mapped). Has no effect on a handle without a path
    /// (attached by descriptor, or created with [`FileCleanup::Auto`]).
    pub fn take_ownership(&mut self) {
        self.owner = true;
    }

    /// Makes this handle leave the file in place when dropped.
    pub fn release_ownership(&mut self) {
        self.owner = false;
    }

    /// The generation of the newest mapping: 0 after create or attach, and
    /// one more for each growth this handle mapped.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.publisher.current().generation()
    }

    /// Grows the file and the mapping to `new_size` bytes.
    ///
    /// Blocks are reserved before the new size becomes visible to peers
    /// (unless [`MmapOptions::reserve_blocks`] is off). While the new size
    /// fits the address-space reservation the base address stays the same
    /// and pages already faulted in stay mapped; beyond it a new mapping is
    /// made. Either way the generation goes up by exactly one, and views
    /// taken before keep their own, still valid, mapping.
    ///
    /// The file is never shrunk: if a peer grew it further meanwhile, that
    /// size is kept.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::ShrinkRefused`] if `new_size < len()`
    ///   (`new_size == len()` is a no-op);
    /// - [`ErrorKind::InvalidSize`] if `new_size` cannot be mapped;
    /// - [`ErrorKind::Truncated`] if a peer truncated the file below the
    ///   mapped length, detected now (as by
    ///   [`check_and_remap`](Self::check_and_remap)) or earlier: a handle that
    ///   saw a truncation never grows again; attach anew to recover;
    /// - [`ErrorKind::StorageFull`] if the blocks cannot be reserved;
    /// - [`ErrorKind::Os`] for other failures.
    ///
    /// After an error the handle keeps its length, mapping and contents, and
    /// stays fully usable.
    pub fn resize(&mut self, new_size: usize) -> Result<()> {
        const OP: &str = "resize";
        let cur = self.len();
        if new_size < cur {
            return Err(Error::new(ErrorKind::ShrinkRefused, OP));
        }
        if new_size == cur {
            return Ok(());
        }
        let to = checked_size(new_size, OP)?;
        let from = fs::file_len(cur, OP)?;
        let now = fs::size_of(self.fd.as_fd(), OP)?;
        if now < from {
            self.publisher.truncate(Self::mappable(now, OP)?);
            return Err(Error::new(ErrorKind::Truncated, OP));
        }
        if self.publisher.current().truncation_limit() < cur {
            return Err(Error::new(ErrorKind::Truncated, OP));
        }
        let map = Self::grow_and_map(
            &self.options,
            self.fd.as_fd(),
            Some(self.publisher.current().map_arc()),
            from,
            new_size,
            to,
            OP,
        )?;
        self.publisher.publish(map, new_size);
        Ok(())
    }

    /// Checks the file's size and follows a growth made by another handle.
    ///
    /// One `fstat`. If the file grew, the new length is mapped (in place
    /// while it fits the reservation), the generation goes up by one and
    /// `Ok(true)` is returned; if it is unchanged, `Ok(false)`. The file's
    /// size is never changed by this call.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Truncated`] if the file is now shorter than the mapped
    ///   length. From then on every checked access of every [`Region`] of
    ///   this handle refuses offsets past the new end, and this call keeps
    ///   returning the error while the file stays short;
    /// - [`ErrorKind::FileTooLarge`] if the file grew past what can be mapped;
    /// - [`ErrorKind::Os`] if `fstat` or `mmap` fails.
    pub fn check_and_remap(&mut self) -> Result<bool> {
        const OP: &str = "check_and_remap";
        let size = fs::size_of(self.fd.as_fd(), OP)?;
        let len = Self::mappable(size, OP)?;
        let (options, fd) = (&self.options, self.fd.as_fd());
        match self.publisher.follow(len, |cur, len| {
            Self::map_len(options, fd, Some(cur), len, OP)
        })? {
            Follow::Unchanged => Ok(false),
            Follow::Grew => Ok(true),
            Follow::Truncated => Err(Error::new(ErrorKind::Truncated, OP)),
        }
    }
}

impl Drop for MmapRegion {
    fn drop(&mut self) {
        if self.owner {
            if let Some(loc) = &self.location {
                // Only our own file: a different file at the name is kept.
                let _ = fs::remove_if_same(loc, self.dev, self.ino);
            }
        }
    }
}

impl AsFd for MmapRegion {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl fmt::Debug for MmapRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapRegion")
            .field("path", &self.path)
            .field("fd", &self.fd)
            .field("len", &self.len())
            .field("generation", &self.generation())
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// A view of one generation of a region's mapping.
///
/// A `Region` keeps its mapping alive: it stays valid memory after the
/// region grows (the view is then *stale*: [`is_current`](Self::is_current)
/// is false and [`refresh`](Self::refresh) moves it to the newest mapping)
/// and after its [`MmapRegion`] is dropped. The mapping is released when the
/// last view of it is dropped.
///
/// The memory is shared with other processes, which may write it at any
/// time, so a `Region` never hands out `&[u8]`: bytes are copied in and out
/// with [`read_at`](Self::read_at) and [`write_at`](Self::write_at), shared
/// words are used through [`atomic_u32`](Self::atomic_u32) and
/// [`atomic_u64`](Self::atomic_u64), and [`as_ptr`](Self::as_ptr) gives the
/// raw base for code that takes responsibility itself. Every checked access
/// is bounded by the view's length and, after a truncation was detected, by
/// the file's new end.
#[derive(Clone)]
pub struct Region {
    view: View<Mapping>,
}

impl Region {
    /// The base address of this view's mapping. It is valid for
    /// [`len`](Self::len) bytes for as long as this view (or a clone) lives,
    /// unless a peer truncates the file, in which case touching pages past
    /// the new end raises `SIGBUS`.
    #[must_use]
    pub fn as_ptr(&self) -> *mut u8 {
        self.view.map().base()
    }

    /// The length of this view's generation.
    #[must_use]
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether the view is empty (never true; provided for API symmetry).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.view.len() == 0
    }

    /// The generation this view shows.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.view.generation()
    }

    /// Whether this view shows the newest mapping its [`MmapRegion`]
    /// published. One atomic load (`Acquire`); no system call.
    ///
    /// When it returns `false`, everything the publishing thread did before
    /// the growth (for example bytes it wrote through its own view) is
    /// visible to this thread.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.view.is_current()
    }

    /// Moves this view to the newest mapping; returns whether it changed.
    /// It does not look at the file: call
    /// [`MmapRegion::check_and_remap`] to follow a peer's growth first.
    pub fn refresh(&mut self) -> bool {
        self.view.refresh()
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] if the range (computed without overflow)
    /// is not within the view's length and the truncation limit.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        if self.view.check(offset, buf.len()) && self.view.map().read(offset, buf) {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::OutOfBounds, "read_at"))
        }
    }

    /// Copies `data` into the region at `offset`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ReadOnly`] for a read-only mapping, and
    /// [`ErrorKind::OutOfBounds`] as for [`read_at`](Self::read_at).
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        const OP: &str = "write_at";
        let map = self.view.map();
        if !map.is_writable() {
            return Err(Error::new(ErrorKind::ReadOnly, OP));
        }
        if self.view.check(offset, data.len()) && map.write(offset, data) {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::OutOfBounds, OP))
        }
    }

    /// The 4-byte word at `offset` as an atomic shared with every process
    /// mapping the file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Misaligned`] if `offset` is not a multiple of 4,
    /// [`ErrorKind::OutOfBounds`] if the word is not within the accessible
    /// length, [`ErrorKind::ReadOnly`] for a read-only mapping.
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        self.check_atomic(offset, 4, "atomic_u32")?;
        self.view
            .map()
            .atomic_u32(offset)
            .ok_or_else(|| Error::new(ErrorKind::OutOfBounds, "atomic_u32"))
    }

    /// The 8-byte word at `offset` as an atomic shared with every process
    /// mapping the file.
    ///
    /// # Errors
    ///
    /// As [`atomic_u32`](Self::atomic_u32), with a multiple of 8.
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        self.check_atomic(offset, 8, "atomic_u64")?;
        self.view
            .map()
            .atomic_u64(offset)
            .ok_or_else(|| Error::new(ErrorKind::OutOfBounds, "atomic_u64"))
    }

    fn check_atomic(&self, offset: usize, size: usize, op: &'static str) -> Result<()> {
        if offset % size != 0 {
            return Err(Error::new(ErrorKind::Misaligned, op));
        }
        if !self.view.check(offset, size) {
            return Err(Error::new(ErrorKind::OutOfBounds, op));
        }
        if !self.view.map().is_writable() {
            return Err(Error::new(ErrorKind::ReadOnly, op));
        }
        Ok(())
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("ptr", &self.as_ptr())
            .field("len", &self.len())
            .field("generation", &self.generation())
            .field("current", &self.is_current())
            .finish()
    }
}
