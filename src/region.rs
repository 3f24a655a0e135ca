//! `MmapRegion`, the owning handle: creation, attach, growth and cleanup.
//! Its generation-tagged views, [`Region`], are in `view.rs`.

use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Limit, Result};
use crate::fs::{self, Location, Reserved};
use crate::options::{Advice, FileCleanup, MmapOptions};
use crate::protocol::{Follow, Publisher};
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::sys::{Hint, Mapping};
use crate::view::Region;

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
    source: Source,
    publisher: Publisher<Mapping>,
    path: PathBuf,
    /// Where the file is linked, while it may still be ours to remove.
    location: Option<Location>,
    dev: rustix::fs::Dev,
    ino: u64,
    owner: bool,
    writable: bool,
    shrink_sealed: bool,
    options: MmapOptions,
}

/// What backs a region.
enum Source {
    /// A file, open at this descriptor; its size is the published length.
    File(OwnedFd),
    /// Process memory ([`MmapRegion::in_memory`]): one allocation shared by
    /// every handle, and the length the handles published, which stands in
    /// for the file's size. It only ever grows.
    Memory(Arc<AtomicUsize>),
}

/// Refuses sizes that cannot be mapped or stored as a file length
/// (`InvalidSize`) and sizes past the options' `max_size` (`FileTooLarge`).
pub(crate) fn checked_size(options: &MmapOptions, size: usize, op: &'static str) -> Result<u64> {
    if size == 0 || isize::try_from(size).is_err() {
        return Err(Error::invalid_size(op, size));
    }
    if let Some(max) = options.max_size.filter(|&max| size > max) {
        return Err(Error::too_large(op, size, Limit::MaxSize(max)));
    }
    fs::file_len(size, op)
}

impl MmapRegion {
    /// Creates a new file at `path` of `size` zero bytes and maps it.
    /// `path`, here and in the other constructors that take one, is anything
    /// that converts to a [`Path`] (`&str`, `String`, `PathBuf`, ...), and
    /// their errors name it ([`Error::path`]).
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
    /// - [`ErrorKind::InvalidSize`] if `size` is 0 or over `isize::MAX`;
    /// - [`ErrorKind::FileTooLarge`] if `size` is past
    ///   [`MmapOptions::max_size`] or the file-size limit (`RLIMIT_FSIZE`),
    ///   or cannot be mapped (no address space or mapping slots left);
    /// - [`ErrorKind::InvalidPath`] if `path` has no file name, or its last
    ///   component is `.` or `..`;
    /// - [`ErrorKind::AlreadyExists`] if anything exists at `path`;
    /// - [`ErrorKind::StorageFull`] if the file system has no room;
    /// - [`ErrorKind::NotFound`] if the parent directory does not exist (the
    ///   message says so);
    /// - [`ErrorKind::Unsupported`] if the directory is on hugetlbfs (whose
    ///   pages a holder can punch out, making every peer's next access raise
    ///   `SIGBUS`); the file is removed again;
    /// - [`ErrorKind::Os`] for other failures of the system calls.
    pub fn create(path: impl AsRef<Path>, size: usize, cleanup: FileCleanup) -> Result<Self> {
        MmapOptions::new().create(path, size, cleanup)
    }

    /// Creates the file `loc` names (exclusively, with the options' mode),
    /// sizes and maps it; on any failure the file is removed again. With
    /// [`FileCleanup::Auto`] the file gets no name at all where the system
    /// allows (`O_TMPFILE`), and is otherwise unlinked once mapped.
    pub(crate) fn create_at(
        options: &MmapOptions,
        loc: Location,
        path: PathBuf,
        size: usize,
        cleanup: FileCleanup,
    ) -> Result<Self> {
        const OP: &str = "create";
        let file_len = checked_size(options, size, OP)?;
        if cleanup == FileCleanup::Auto {
            if let Some(fd) = fs::create_unnamed(&loc, options.creation_mode(), OP)? {
                return Self::init_created(options, None, fd, path, size, file_len);
            }
        }
        let fd = fs::create_exclusive(loc.dir.as_fd(), &loc.name, options.creation_mode())?;
        let mut region = Self::init_created(options, Some(loc), fd, path, size, file_len)?;
        if cleanup == FileCleanup::Auto {
            // No O_TMPFILE here: the name existed from the open until now.
            region.owner = false;
            if let Some(loc) = region.location.take() {
                fs::remove_if_same(&loc, region.dev, region.ino).map_err(|e| Error::os(OP, e))?;
            }
        }
        Ok(region)
    }

    /// Sizes and maps the file this process just created (open at `fd`,
    /// linked at `loc` if it has a name), giving a handle for `path` that
    /// owns the name. On any failure the name is removed again, if it still is the
    /// file's.
    pub(crate) fn init_created(
        options: &MmapOptions,
        loc: Option<Location>,
        fd: OwnedFd,
        path: PathBuf,
        size: usize,
        file_len: u64,
    ) -> Result<Self> {
        const OP: &str = "create";
        let id = match fs::identity(fd.as_fd(), OP) {
            Ok(id) => id,
            Err(e) => {
                // Without an identity to compare, remove the name we made
                // an instant ago: nothing may be left after a failure.
                if let Some(loc) = &loc {
                    let _ =
                        rustix::fs::unlinkat(&loc.dir, &*loc.name, rustix::fs::AtFlags::empty());
                }
                return Err(e);
            }
        };
        let map = fs::refuse_hugetlbfs(fd.as_fd(), OP)
            .and_then(|()| Self::map_new_file(options, fd.as_fd(), size, file_len, OP));
        let map = match map {
            Ok(map) => map,
            Err(e) => {
                if let Some(loc) = &loc {
                    let _ = fs::remove_if_same(loc, id.dev, id.ino);
                }
                return Err(e);
            }
        };
        // A file created at a path cannot carry F_SEAL_SHRINK.
        let mut region = Self::with_mapping(options, Source::File(fd), id, map, size, true, false);
        region.path = path;
        region.owner = loc.is_some();
        region.location = loc;
        Ok(region)
    }

    /// Grows a file this process just created (empty) to `size` bytes and
    /// maps it, applying the options' `populate` and `lock`.
    fn map_new_file(
        options: &MmapOptions,
        fd: BorrowedFd<'_>,
        size: usize,
        file_len: u64,
        op: &'static str,
    ) -> Result<Arc<Mapping>> {
        let map = Self::grow_and_map(options, fd, None, 0, size, file_len, op)?;
        Self::prepare(options, &map, 0, size, op)?;
        Ok(map)
    }

    /// A handle on `fd` with `map` published as generation 0 holding `len`
    /// bytes; no path, not owning.
    fn with_mapping(
        options: &MmapOptions,
        source: Source,
        info: fs::FileInfo,
        map: Arc<Mapping>,
        len: usize,
        writable: bool,
        shrink_sealed: bool,
    ) -> Self {
        Self {
            source,
            publisher: Publisher::new(map, len),
            path: PathBuf::new(),
            location: None,
            dev: info.dev,
            ino: info.ino,
            owner: false,
            writable,
            shrink_sealed,
            options: options.clone(),
        }
    }

    /// Creates an anonymous region of `size` zero bytes that no holder of
    /// its descriptor can shrink (Linux).
    ///
    /// The file is a `memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)` sealed
    /// with `F_SEAL_SHRINK | F_SEAL_SEAL` before it is sized: the kernel then
    /// refuses every truncation, by anyone, so peers that receive the
    /// descriptor (see [`fdpass`](crate::fdpass) and
    /// [`attach_fd`](Self::attach_fd)) can never be made to fault by one
    /// that shrinks it. Growth still works. `name` is only a label (it shows
    /// in `/proc/<pid>/fd`); nothing is created in any directory, and
    /// [`path`](Self::path) is empty.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Unsupported`] on systems without sealable memfds;
    /// - [`ErrorKind::InvalidSize`] as for [`create`](Self::create);
    /// - [`ErrorKind::InvalidPath`] if the kernel refuses `name` (a NUL
    ///   byte, or longer than 249 bytes);
    /// - [`ErrorKind::StorageFull`] and [`ErrorKind::Os`] as for `create`.
    pub fn create_sealed(name: &str, size: usize) -> Result<Self> {
        MmapOptions::new().create_sealed(name, size)
    }

    pub(crate) fn create_sealed_with(
        options: &MmapOptions,
        name: &str,
        size: usize,
    ) -> Result<Self> {
        const OP: &str = "create_sealed";
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let file_len = checked_size(options, size, OP)?;
            let fd = fs::create_memfd(name, options.creation_mode(), OP)?;
            fs::seal_shrink(fd.as_fd(), OP)?;
            let id = fs::identity(fd.as_fd(), OP)?;
            let map = Self::map_new_file(options, fd.as_fd(), size, file_len, OP)?;
            let sealed = fs::is_shrink_sealed(fd.as_fd());
            Ok(Self::with_mapping(
                options,
                Source::File(fd),
                id,
                map,
                size,
                true,
                sealed,
            ))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = (options, name, size);
            Err(Error::new(ErrorKind::Unsupported, OP).because("sealed memfds need Linux"))
        }
    }

    /// Creates a region under a temporary name beside `path` for the caller
    /// to initialise, to be published at `path` atomically with
    /// [`Staged::publish`](crate::Staged::publish) (or
    /// [`publish_replace`](crate::Staged::publish_replace)). Attachers thus
    /// never see a partly initialised segment. The temporary file is created
    /// like [`create`](Self::create)'s (`O_EXCL`, mode `0600`, blocks
    /// reserved) under a random name `.<name>.<random>.stage` in the same
    /// directory, and removed if the stage is dropped unpublished.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) (`AlreadyExists` only if sixteen random
    /// names were all taken).
    pub fn stage(path: impl AsRef<Path>, size: usize) -> Result<crate::Staged> {
        MmapOptions::new().stage(path, size)
    }

    /// Attaches to an existing region file at `path`.
    ///
    /// Nothing but a regular file is ever opened for reading or writing:
    /// a symbolic link, directory, FIFO, socket or device at the final path
    /// component is refused. On Linux the name is opened `O_PATH|O_NOFOLLOW`
    /// (no access, no side effect on a FIFO or device), checked, and the
    /// verified inode is reopened through `/proc/self/fd`, so swapping the
    /// name between our calls cannot get anything else opened. Elsewhere the
    /// name is `lstat`-ed, then opened `O_NOFOLLOW|O_NONBLOCK|O_NOCTTY`; an
    /// object swapped in between the two calls is opened (without
    /// blocking) and refused at once (see `SECURITY.md`). The descriptor is
    /// then checked as [`attach_fd`](Self::attach_fd) checks one, and the
    /// whole file is mapped. The attached handle does not own the file.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::NotFound`] if nothing is at `path`, or its parent
    ///   directory does not exist (the message says which);
    /// - [`ErrorKind::NotRegularFile`] for anything but a regular file;
    /// - [`ErrorKind::EmptyFile`] for a file of length 0;
    /// - [`ErrorKind::InvalidPath`] if `path` has no file name, or its last
    ///   component is `.` or `..`;
    /// - [`ErrorKind::FileTooLarge`] for a file larger than `isize::MAX` or
    ///   [`MmapOptions::max_size`], or one that cannot be mapped (no address
    ///   space or mapping slots left);
    /// - [`ErrorKind::UntrustedOwner`] for a file owned by another user,
    ///   [`ErrorKind::InsecureMode`] for one writable by group or others,
    ///   and [`ErrorKind::HardLinked`] for one with more than one name (see
    ///   [`MmapOptions`] to widen these);
    /// - [`ErrorKind::Unsupported`] (Linux) if `/proc/self/fd` is not
    ///   procfs: the verified file is reopened through it, and without it
    ///   the name cannot be opened without a race (attach by descriptor
    ///   still works);
    /// - [`ErrorKind::Unsupported`] for a file on hugetlbfs (a `hugetlbfs`
    ///   mount, or a memfd made with `MFD_HUGETLB`): a holder can punch its
    ///   pages out, which `F_SEAL_SHRINK` does not prevent, and every peer's
    ///   next access would raise `SIGBUS`;
    /// - [`ErrorKind::Os`] with `EAGAIN` ([`std::io::ErrorKind::WouldBlock`])
    ///   if each time the name was opened it named another file by the time
    ///   it was looked up again (it is being renamed over): try again;
    /// - [`ErrorKind::Os`] for other failures (for example permission).
    pub fn attach(path: impl AsRef<Path>) -> Result<Self> {
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
    /// As [`attach`](Self::attach), except `NotFound`, `InvalidPath` and the
    /// procfs case of `Unsupported`; a descriptor open read-only
    /// (`O_RDONLY`) fails with [`ErrorKind::ReadOnly`] (OS error `EACCES`,
    /// and a message that suggests
    /// [`attach_fd_read_only`](Self::attach_fd_read_only)), one open
    /// write-only with [`ErrorKind::Os`] (`EACCES`).
    pub fn attach_fd(fd: OwnedFd) -> Result<Self> {
        MmapOptions::new().attach_fd(fd)
    }

    /// Attaches to the region file at `path` for reading only: the file is
    /// opened `O_RDONLY` and mapped `PROT_READ`, so read permission is
    /// enough (a file of mode `0400` attaches). Writes and atomic references
    /// are refused with [`ErrorKind::ReadOnly`]; shared words are read with
    /// [`Region::load_u32`] and [`Region::load_u64`]. Growth is followed
    /// with [`check_and_remap`](Self::check_and_remap) as usual. The checks
    /// are those of [`attach`](Self::attach).
    ///
    /// # Errors
    ///
    /// As [`attach`](Self::attach).
    pub fn attach_read_only(path: impl AsRef<Path>) -> Result<Self> {
        MmapOptions::new().attach_read_only(path)
    }

    /// [`attach_read_only`](Self::attach_read_only) for an open descriptor
    /// (open for reading; write access is not needed).
    ///
    /// # Errors
    ///
    /// As [`attach_fd`](Self::attach_fd).
    pub fn attach_fd_read_only(fd: OwnedFd) -> Result<Self> {
        MmapOptions::new().attach_fd_read_only(fd)
    }

    pub(crate) fn from_fd(
        options: &MmapOptions,
        fd: OwnedFd,
        location: Option<Location>,
        path: PathBuf,
        writable: bool,
        op: &'static str,
    ) -> Result<Self> {
        let info = fs::validate(fd.as_fd(), options.trust, op)?;
        let sealed = fs::is_shrink_sealed(fd.as_fd());
        if options.require_shrink_seal && !sealed {
            return Err(Error::new(ErrorKind::NotSealed, op));
        }
        let len = Self::mappable(options, info.size, op)?;
        let map = Self::map_len(options, fd.as_fd(), None, len, writable, op)?;
        Self::prepare(options, &map, 0, len, op)?;
        let mut region =
            Self::with_mapping(options, Source::File(fd), info, map, len, writable, sealed);
        region.path = path;
        region.location = location;
        Ok(region)
    }

    /// Creates a region of `size` zero bytes in this process's memory, with
    /// no file behind it: the same [`Region`] views, generations, growth
    /// and checks as a file-backed region, for code that runs where files
    /// cannot be mapped (Miri, loom models, fuzz targets) or needs none.
    ///
    /// The memory is one range of private anonymous memory (`mmap`) of a
    /// capacity fixed now: [`MmapOptions::address_space`], by default the
    /// same as a file mapping's reservation (at least 1 GiB). Like a file
    /// mapping's reservation it costs address space, not memory: pages are
    /// zero-filled when first touched. Under Miri (an allocation from the
    /// global allocator) and loom (loom objects), which pay for the whole
    /// capacity at once, the default is 64 × the size instead; `lock`
    /// only checks the range under Miri. [`resize`](Self::resize)
    /// grows in place within it and returns [`ErrorKind::Unsupported`]
    /// beyond. [`peer`](Self::peer) gives further handles on the same memory,
    /// as attaching gives for a file; they follow growth only through
    /// [`check_and_remap`](Self::check_and_remap), which reads the length
    /// the handles published instead of a file's size. That length only
    /// grows, so [`ErrorKind::Truncated`] cannot happen. There is no
    /// descriptor ([`fd`](Self::fd) is `None`) and no path; `flush` and
    /// `advise` only check their range (advice such as `DontNeed` would
    /// discard private memory), and the memory is freed when the last handle
    /// and view are dropped. Other processes cannot see it (a child made by
    /// `fork` gets a private copy, or with [`MmapOptions::dont_fork`]
    /// nothing).
    ///
    /// # Under loom
    ///
    /// Built with `RUSTFLAGS="--cfg loom"` (loom 0.7), the memory is modelled
    /// by loom so that protocols over it can be model-checked (the file-backed
    /// constructors then return [`ErrorKind::Unsupported`]): one loom
    /// `AtomicU32` per aligned 4-byte word of the capacity, which the copies
    /// and 4-byte atomics use, and one loom `AtomicU64` per aligned 8-byte
    /// slot, which the 8-byte atomics and loads use (so do not mix 8-byte
    /// accesses with others over the same bytes). The capacity is rounded
    /// up to 8 bytes and costs capacity / 4 + capacity / 8 objects, created
    /// with the region: 96 for 256 bytes. Keep it small with
    /// [`MmapOptions::address_space`]: the default under loom, 64 × the
    /// size, gives a 256-byte region 6,144 objects. The README's section
    /// "Checking your protocol with loom" has the command and an example.
    ///
    /// ```
    /// # fn main() -> Result<(), shm_region::Error> {
    /// use shm_region::{MmapOptions, MmapRegion};
    /// let mut host = MmapOptions::new().address_space(1 << 20).in_memory(4096)?;
    /// let mut peer = host.peer()?;
    /// host.region().write_at(0, b"hello")?;
    /// host.resize(8192)?;
    /// assert!(peer.check_and_remap()?);
    /// let mut buf = [0u8; 5];
    /// peer.region().read_at(0, &mut buf)?;
    /// assert_eq!((&buf, peer.len()), (b"hello", 8192));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::InvalidSize`] if `size` is 0 or over `isize::MAX`;
    /// - [`ErrorKind::FileTooLarge`] if `size` is past
    ///   [`MmapOptions::max_size`], or the capacity cannot be had (over
    ///   `isize::MAX`, or no address space left).
    pub fn in_memory(size: usize) -> Result<Self> {
        MmapOptions::new().in_memory(size)
    }

    pub(crate) fn in_memory_with(options: &MmapOptions, size: usize) -> Result<Self> {
        const OP: &str = "in_memory";
        checked_size(options, size, OP)?;
        // `size` is valid (checked above), so a refusal concerns the
        // capacity: more than can be represented or had.
        let map = Mapping::in_memory(options.capacity_for(size))
            .map_err(|e| Error::with_errno(ErrorKind::FileTooLarge, OP, e))?;
        Self::exclude(options, &map, OP)?;
        Self::prepare(options, &map, 0, size, OP)?;
        let source = Source::Memory(Arc::new(AtomicUsize::new(size)));
        let info = fs::FileInfo {
            dev: Default::default(),
            ino: 0,
            size: 0,
        };
        Ok(Self::with_mapping(
            options,
            source,
            info,
            Arc::new(map),
            size,
            true,
            false,
        ))
    }

    /// Another handle on the same region, as a second process gets by
    /// attaching: its own generations (starting at 0 with the length
    /// published now), following growth only through
    /// [`check_and_remap`](Self::check_and_remap), never owning the file,
    /// read-only if this handle is.
    ///
    /// For a file-backed region the descriptor is duplicated
    /// (close-on-exec) and checked with this handle's options, exactly as
    /// [`attach_fd`](Self::attach_fd) (or
    /// [`attach_fd_read_only`](Self::attach_fd_read_only)) checks a
    /// descriptor, so a file that changed owner, mode or links since is
    /// refused. For an [in-memory](Self::in_memory) region the new handle
    /// shares the memory and the published length.
    ///
    /// # Errors
    ///
    /// For a file, as [`attach_fd`](Self::attach_fd), and
    /// [`ErrorKind::Os`] if the descriptor cannot be duplicated. An
    /// in-memory region always succeeds.
    pub fn peer(&self) -> Result<Self> {
        const OP: &str = "peer";
        match &self.source {
            Source::File(fd) => {
                let dup = rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| Error::os(OP, e))?;
                Self::from_fd(&self.options, dup, None, PathBuf::new(), self.writable, OP)
            }
            Source::Memory(published) => {
                let len = published.load(Ordering::Acquire);
                let map = Arc::clone(self.publisher.current().map_arc());
                let info = fs::FileInfo {
                    dev: Default::default(),
                    ino: 0,
                    size: 0,
                };
                let source = Source::Memory(Arc::clone(published));
                Ok(Self::with_mapping(
                    &self.options,
                    source,
                    info,
                    map,
                    len,
                    self.writable,
                    false,
                ))
            }
        }
    }

    /// The descriptor of the file behind the region, or `None` for an
    /// [in-memory](Self::in_memory) region. Share it with
    /// [`fdpass::send`](crate::fdpass::send) or
    /// [`attach_fd`](Self::attach_fd) (after
    /// [`try_clone_to_owned`](BorrowedFd::try_clone_to_owned)).
    #[must_use]
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.source {
            Source::File(fd) => Some(fd.as_fd()),
            Source::Memory(_) => None,
        }
    }

    /// The size of what backs the region: the file's (`fstat`), or the
    /// length the handles of an in-memory region published.
    fn source_len(&self, op: &'static str) -> Result<u64> {
        match &self.source {
            Source::File(fd) => fs::size_of(fd.as_fd(), op),
            Source::Memory(published) => u64::try_from(published.load(Ordering::Acquire))
                .map_err(|_| Error::new(ErrorKind::FileTooLarge, op)),
        }
    }

    /// For an in-memory region, `map` itself if it holds `len` bytes;
    /// growth past the capacity fixed at creation is unsupported.
    fn within_capacity(map: &Arc<Mapping>, len: usize, op: &'static str) -> Result<Arc<Mapping>> {
        if map.covers(len) {
            Ok(Arc::clone(map))
        } else {
            Err(Error::new(ErrorKind::Unsupported, op)
                .because("an in-memory region cannot grow past the capacity fixed at its creation"))
        }
    }

    /// A file size as a mappable length, within the options' limit.
    fn mappable(options: &MmapOptions, size: u64, op: &'static str) -> Result<usize> {
        usize::try_from(size)
            .ok()
            .filter(|&n| isize::try_from(n).is_ok())
            .filter(|&n| options.max_size.is_none_or(|max| n <= max))
            .ok_or_else(|| Error::too_large_to_map(op, size, options.max_size))
    }

    /// Applies the options' `populate` and `lock` to `[from, to)` of `map`.
    fn prepare(
        options: &MmapOptions,
        map: &Mapping,
        from: usize,
        to: usize,
        op: &'static str,
    ) -> Result<()> {
        let len = to - from;
        if options.populate {
            match map.advise(from, len, Hint::Populate) {
                Ok(()) => {}
                // Kernels before 5.14 do not know MADV_POPULATE_*.
                Err(rustix::io::Errno::INVAL) => {
                    map.advise(from, len, Hint::WillNeed)
                        .map_err(|e| Error::os(op, e))?;
                }
                Err(e) => return Err(Error::os(op, e)),
            }
        }
        if options.lock {
            map.lock(from, len).map_err(|e| match e {
                rustix::io::Errno::NOMEM | rustix::io::Errno::AGAIN | rustix::io::Errno::PERM => {
                    Error::lock_limit(op, len, e)
                }
                e => Error::os(op, e),
            })?;
        }
        Ok(())
    }

    /// Checks `to` against `RLIMIT_FSIZE`, makes sure a mapping covers `len`
    /// bytes (the current one when its reservation has room), reserves
    /// blocks for `[from, to)` (`from` being the file's size as last seen),
    /// then raises the file size to `to`. Whatever can fail for want of
    /// room (the limit, address space, blocks) fails before anything is
    /// reserved or the size changes, and the size changes last; nothing is
    /// published on failure. Only writable handles grow, so the mapping is
    /// writable.
    fn grow_and_map(
        options: &MmapOptions,
        fd: BorrowedFd<'_>,
        current: Option<&Arc<Mapping>>,
        from: u64,
        len: usize,
        to: u64,
        op: &'static str,
    ) -> Result<Arc<Mapping>> {
        fs::check_file_size_limit(to, op)?;
        let map = Self::map_len(options, fd, current, len, true, op)?;
        let how = if options.reserve_blocks {
            fs::reserve(fd, from, to, op)?
        } else {
            Reserved::Sparse
        };
        fs::extend(fd, from, to, how, op)?;
        Ok(map)
    }

    /// A mapping covering `len` bytes: `current` if its reservation covers
    /// them (growth in place, no system call), otherwise a new one, marked
    /// as the options' `dont_dump` and `dont_fork` ask.
    fn map_len(
        options: &MmapOptions,
        fd: BorrowedFd<'_>,
        current: Option<&Arc<Mapping>>,
        len: usize,
        writable: bool,
        op: &'static str,
    ) -> Result<Arc<Mapping>> {
        if let Some(cur) = current.filter(|m| m.covers(len)) {
            return Ok(Arc::clone(cur));
        }
        let map = Mapping::new(fd, len, options.reservation_for(len), writable).map_err(|e| {
            // Not enough address space (or mapping slots) for the file.
            match e {
                rustix::io::Errno::NOMEM => {
                    Error::too_large(op, len, Limit::AddressSpace).with_errno_of(e)
                }
                // The `SIGBUS` registry is full (`mmap` never says ENOSPC).
                rustix::io::Errno::NOSPC => Error::too_large(op, len, Limit::SigbusSlots),
                // A descriptor open read-only cannot be mapped writable.
                rustix::io::Errno::ACCESS if writable && fs::is_open_read_only(fd) => {
                    Error::read_only_descriptor(op, e)
                }
                e => Error::os(op, e),
            }
        })?;
        Self::exclude(options, &map, op)?;
        Ok(Arc::new(map))
    }

    /// Applies the options' `dont_dump` and `dont_fork` to the whole of a
    /// mapping just made, before anything is published or faulted in.
    fn exclude(options: &MmapOptions, map: &Mapping, op: &'static str) -> Result<()> {
        map.exclude(options.dont_dump, options.dont_fork)
            .map_err(|e| Error::os(op, e))
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
    /// - [`ErrorKind::InvalidSize`] if `new_size` is over `isize::MAX`;
    /// - [`ErrorKind::FileTooLarge`] if `new_size` is past
    ///   [`MmapOptions::max_size`] or the file-size limit (`RLIMIT_FSIZE`),
    ///   or a new mapping cannot be made (`mmap` failed with `ENOMEM`: no
    ///   address space or mapping slots left);
    /// - [`ErrorKind::Truncated`] if a peer truncated the file below the
    ///   mapped length, detected now (as by
    ///   [`check_and_remap`](Self::check_and_remap)) or earlier, whatever
    ///   `new_size` is: a handle that saw a truncation never resizes again;
    ///   attach anew to recover;
    /// - [`ErrorKind::Unsupported`] for an [in-memory](Self::in_memory)
    ///   region grown past its capacity;
    /// - [`ErrorKind::StorageFull`] if the blocks cannot be reserved;
    /// - [`ErrorKind::Os`] for other failures.
    ///
    /// After an error the handle keeps its length, mapping and contents, and
    /// stays fully usable.
    pub fn resize(&mut self, new_size: usize) -> Result<()> {
        const OP: &str = "resize";
        if !self.writable {
            return Err(Error::new(ErrorKind::ReadOnly, OP));
        }
        // A handle that saw a truncation refuses every resize, whatever the
        // size asked for (sticky, as `check_and_remap`).
        let now = self.source_len(OP)?;
        self.note_cut();
        // A size past `usize` is no shrink: saturate for the comparison.
        if self
            .publisher
            .refuses_growth(usize::try_from(now).unwrap_or(usize::MAX))
        {
            return Err(Error::truncated(OP, self.len(), now));
        }
        let cur = self.len();
        if new_size < cur {
            return Err(Error::shrink_refused(OP, cur, new_size));
        }
        if new_size == cur {
            return Ok(());
        }
        let to = checked_size(&self.options, new_size, OP)?;
        let map = match &self.source {
            // `now >= len`: a peer may have grown the file further already.
            Source::File(fd) => Self::grow_and_map(
                &self.options,
                fd.as_fd(),
                Some(self.publisher.current().map_arc()),
                now,
                new_size,
                to,
                OP,
            )?,
            Source::Memory(published) => {
                let map = Self::within_capacity(self.publisher.current().map_arc(), new_size, OP)?;
                // The "size" changes last, as a file's does.
                published.fetch_max(new_size, Ordering::Release);
                map
            }
        };
        Self::prepare(&self.options, &map, cur, new_size, OP)?;
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
    ///   length, or was seen shorter by an earlier call of this handle (or
    ///   by [`resize`](Self::resize)): truncations are sticky. From the
    ///   first detection on, every checked access of every [`Region`] taken
    ///   from this handle refuses offsets past the lowest end seen, and
    ///   this call returns the error whatever the file's size is, even if a
    ///   peer grows the file back. To use the file again, attach anew;
    /// - [`ErrorKind::FileTooLarge`] if the file grew past what this process
    ///   can map or past [`MmapOptions::max_size`]; nothing is published;
    /// - [`ErrorKind::Os`] if `fstat` or `mmap` fails.
    pub fn check_and_remap(&mut self) -> Result<bool> {
        const OP: &str = "check_and_remap";
        let size = self.source_len(OP)?;
        self.note_cut();
        let (options, source, writable) = (&self.options, &self.source, self.writable);
        let cur = self.publisher.current().len();
        // A size past `usize` is no shrink: saturate for the comparison;
        // `mappable` refuses it when the growth is followed.
        let file_len = usize::try_from(size).unwrap_or(usize::MAX);
        let followed = self.publisher.follow(file_len, |map, _| {
            let len = Self::mappable(options, size, OP)?;
            let map = match source {
                Source::File(fd) => {
                    Self::map_len(options, fd.as_fd(), Some(map), len, writable, OP)?
                }
                Source::Memory(_) => Self::within_capacity(map, len, OP)?,
            };
            Self::prepare(options, &map, cur, len, OP)?;
            Ok(map)
        })?;
        match followed {
            Follow::Unchanged => Ok(false),
            Follow::Grew => Ok(true),
            Follow::Truncated => Err(Error::truncated(OP, cur, size)),
        }
    }

    /// Makes sure at least `min` bytes are mapped, looking at the file only
    /// when they are not: how a consumer catches up with a length its
    /// producer announced in the shared memory itself.
    ///
    /// If the accessible length ([`len`](Self::len), or less once a
    /// truncation was detected) is at least `min`, this returns `Ok(false)`
    /// with no system call: one atomic load, nothing else. Otherwise it
    /// calls [`check_and_remap`](Self::check_and_remap) once and returns
    /// `Ok(true)` if `len()` is now at least `min`.
    ///
    /// The pattern: the producer [`resize`](Self::resize)s, then stores the
    /// new length in a header word of the region (`Release`); a consumer
    /// loads that word (`Acquire`) and calls `ensure_len` with it before
    /// reading up to it. The consumer then pays for an `fstat` only when the
    /// header says the region grew, not on every access. The header is
    /// written by a peer, so it is only a hint: a length past the file is an
    /// error here, never a mapping of bytes the file does not have.
    ///
    /// ```
    /// # #[cfg(miri)] fn main() {} // Miri cannot map files.
    /// # #[cfg(not(miri))]
    /// # fn main() -> Result<(), shm_region::Error> {
    /// use std::sync::atomic::Ordering;
    /// use shm_region::{ErrorKind, FileCleanup, MmapRegion};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("segment");
    /// const LEN: usize = 0; // header word: the length the producer announced
    ///
    /// let mut producer = MmapRegion::create(&path, 4096, FileCleanup::Manual)?;
    /// producer.region().atomic_u64(LEN)?.store(4096, Ordering::Release);
    /// let mut consumer = MmapRegion::attach(&path)?;       // usually another process
    ///
    /// // Producer: grow, fill, then announce the new length.
    /// producer.resize(64 * 1024)?;
    /// producer.region().write_at(60 * 1024, b"record")?;
    /// producer.region().atomic_u64(LEN)?.store(64 * 1024, Ordering::Release);
    ///
    /// // Consumer: remap only when the announced length is not mapped yet.
    /// let announced = consumer.region().load_u64(LEN, Ordering::Acquire)?;
    /// let announced = usize::try_from(announced).unwrap_or(usize::MAX);
    /// assert!(consumer.ensure_len(announced)?);              // one fstat: followed
    /// assert!(!consumer.ensure_len(announced)?);             // no system call
    /// let mut buf = [0u8; 6];
    /// consumer.region().read_at(60 * 1024, &mut buf)?;
    /// assert_eq!(&buf, b"record");
    ///
    /// // A length the file does not have is refused.
    /// let err = consumer.ensure_len(1 << 20).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::OutOfBounds);
    /// assert_eq!(consumer.len(), 64 * 1024);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::OutOfBounds`] if, after following, fewer than `min`
    ///   bytes are mapped: the file is shorter than the length asked for
    ///   (for example a header announcing more than the producer grew).
    ///   Nothing else happens: a growth the check found is followed (as
    ///   `check_and_remap` follows it, generation + 1), and with none the
    ///   handle, its length and its generation are unchanged;
    /// - the errors of [`check_and_remap`](Self::check_and_remap), as it
    ///   returns them: [`ErrorKind::Truncated`] (also for a `min` past the
    ///   accessible length of a handle that saw a truncation earlier),
    ///   [`ErrorKind::FileTooLarge`] and [`ErrorKind::Os`].
    pub fn ensure_len(&mut self, min: usize) -> Result<bool> {
        if self.accessible_len() >= min {
            return Ok(false);
        }
        self.check_and_remap()?;
        if self.len() >= min {
            Ok(true)
        } else {
            // As an access of `min` bytes at offset 0 would be.
            Err(Error::out_of_bounds(
                "ensure_len",
                0,
                min,
                self.accessible_len(),
            ))
        }
    }

    /// Whether this handle maps the file read-only
    /// ([`attach_read_only`](Self::attach_read_only)).
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        !self.writable
    }

    /// Whether the file is sealed against shrinking (`F_SEAL_SHRINK`), as
    /// regions from [`create_sealed`](Self::create_sealed) are: then no
    /// holder can truncate it, and [`ErrorKind::Truncated`] cannot happen.
    /// Checked with `F_GET_SEALS` at create or attach.
    #[must_use]
    pub fn is_shrink_sealed(&self) -> bool {
        self.shrink_sealed
    }

    /// Writes the region's dirty pages back to the file and waits
    /// (`msync(MS_SYNC)`), over the accessible length (all of it, or up to
    /// the end a detected truncation left). Only matters for files on
    /// persistent storage; peers see each other's writes without it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`] if `msync` fails.
    pub fn flush(&self) -> Result<()> {
        self.flush_range(0, self.accessible_len())
    }

    /// Starts writing the dirty pages back without waiting
    /// (`msync(MS_ASYNC)`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`] if `msync` fails.
    pub fn flush_async(&self) -> Result<()> {
        self.sync_range(0, self.accessible_len(), false, "flush_async")
    }

    /// Records a cut of the current mapping (pages replaced by a contained
    /// `SIGBUS`, see [`sigbus`](crate::sigbus)) as a detected truncation,
    /// so that growth is refused from then on, as after a truncation seen
    /// by `fstat`.
    fn note_cut(&self) {
        let current = self.publisher.current();
        let cut = current.map().cut();
        if cut < current.len() {
            self.publisher.truncate(cut);
        }
    }

    /// The bytes the checked accessors may reach: [`len`](Self::len), or
    /// less once a truncation was detected.
    fn accessible_len(&self) -> usize {
        self.publisher.current().accessible_len()
    }

    /// Writes back the pages covering `len` bytes at `offset` and waits.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] if the range is not within
    /// [`len`](Self::len); [`ErrorKind::Os`] if `msync` fails.
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

    /// Advises the kernel how the whole region will be used (`madvise`),
    /// up to the accessible length (see [`flush`](Self::flush)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`] if `madvise` fails.
    pub fn advise(&self, advice: Advice) -> Result<()> {
        self.advise_range(0, self.accessible_len(), advice)
    }

    /// Advises the kernel how `len` bytes at `offset` will be used.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] if the range is not within
    /// [`len`](Self::len); [`ErrorKind::Os`] if `madvise` fails.
    pub fn advise_range(&self, offset: usize, len: usize, advice: Advice) -> Result<()> {
        const OP: &str = "advise";
        let view = self.publisher.current();
        if !view.check(offset, len) {
            return Err(Error::out_of_bounds(OP, offset, len, view.accessible_len()));
        }
        let hint = match advice {
            Advice::Normal => Hint::Normal,
            Advice::Random => Hint::Random,
            Advice::Sequential => Hint::Sequential,
            Advice::WillNeed => Hint::WillNeed,
            Advice::DontNeed => Hint::DontNeed,
        };
        view.map()
            .advise(offset, len, hint)
            .map_err(|e| Error::os(OP, e))
    }

    /// The directory entry this handle may remove, for publishing a stage.
    pub(crate) fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// Records that the file is now linked as `name` (at `path`) and owned
    /// by this handle, after a stage was published.
    pub(crate) fn published_as(&mut self, name: OsString, path: PathBuf) {
        if let Some(loc) = &mut self.location {
            loc.name = name;
        }
        self.path = path;
        self.owner = true;
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

impl fmt::Debug for MmapRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapRegion")
            .field("path", &self.path)
            .field("fd", &self.fd())
            .field("len", &self.len())
            .field("generation", &self.generation())
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}
