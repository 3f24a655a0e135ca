//! Every constructor of [`MmapRegion`], [`MmapOptions`]' constructors and
//! [`Staged`]'s creation: one pass each, down the layers once. Policy comes
//! from the options (`options.rs`), the source is found and validated
//! (`fs.rs`), reserved and mapped (`map.rs`, over `sys`), and the finished
//! handle is handed to the type that owns it (`region.rs`, `staged.rs`).
//! POSIX shared-memory names are checked and resolved by `shm.rs`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::fs::{self, Location};
use crate::map::{self, FileArc, Origin};
use crate::options::{FileCleanup, MmapOptions};
use crate::region::MmapRegion;
use crate::region::Source;
use crate::shm;
use crate::staged::Staged;
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::sys::Mapping;

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
    ///   or, without an explicit `max_size`, would take the mappings of the
    ///   regions this process created past their share of the address space
    ///   (a quarter; the message says so and names `max_size`), or cannot be
    ///   mapped (no address space or mapping slots left);
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

    /// Creates an anonymous region of `size` zero bytes that no holder of
    /// its descriptor can shrink (Linux).
    ///
    /// The file is a `memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)` sealed
    /// with `F_SEAL_SHRINK` before it is sized: the kernel then
    /// refuses every truncation, by anyone, so peers that receive the
    /// descriptor (see [`fdpass`](crate::fdpass) and
    /// [`attach_fd`](Self::attach_fd)) can never be made to fault by one
    /// that shrinks it. Growth still works. The seal set is left open (no
    /// `F_SEAL_SEAL`) so that the region can later be
    /// [frozen](Self::freeze) or [shared read-only](Self::share_read_only);
    /// a holder of a writable descriptor can add seals too, which can only
    /// make growth ([`ErrorKind::Sealed`]), a new writable mapping or a
    /// freeze fail, never remove a page. `name` is only a label (it shows
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
    pub fn stage(path: impl AsRef<Path>, size: usize) -> Result<Staged> {
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
    ///   [`MmapOptions::max_size`], or, without an explicit `max_size`,
    ///   larger than a quarter of the address space this process has left
    ///   or one that would take the mappings of its origin made without
    ///   `max_size` past their share of the address space together (an
    ///   eighth for files attached by path or name, another eighth for files
    ///   received by descriptor; see [`MmapOptions::max_size`]; the message
    ///   says so and names `max_size`), or one that cannot be mapped (no
    ///   address space or mapping slots left);
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
    /// the effective user, not writable by group or others and with one
    /// name at most. The size comes from `fstat`, never from the sender of
    /// the descriptor. [`path`](Self::path) is empty for such a handle.
    ///
    /// A memfd (Linux, Android) is accepted as the kernel makes it, with
    /// mode 0777 and any owner, sealed or not: the owner, mode and link
    /// checks guard against whoever can open a file by its name, and a
    /// memfd has none and can never get one, so only holders of a
    /// descriptor reach it (see "Received memfds" in `SECURITY.md`). This
    /// is what a server needs to map the pools its clients send (Wayland,
    /// GTK, Qt and Python's `os.memfd_create` all send such descriptors).
    /// A memfd is a file of the kernel's internal shared-memory mount
    /// that the kernel names `memfd:…` (read from `/proc/self/fd`; without
    /// `/proc` no descriptor counts as a memfd). Every other descriptor, a
    /// file in `/dev/shm` included, keeps every check: others may open it
    /// by its name, or (a System V segment, reachable as a descriptor
    /// through `/proc/<pid>/map_files`) attach it by its id. The type, size, hugetlbfs,
    /// seal ([`MmapOptions::require_shrink_seal`]) and
    /// [`MmapOptions::max_size`] checks apply to memfds too.
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
    /// [`Region::load_u32`](crate::Region::load_u32) and [`Region::load_u64`](crate::Region::load_u64). Growth is followed
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
    /// (open for reading; write access is not needed). Memfds are accepted
    /// whatever their owner and mode, as by [`attach_fd`](Self::attach_fd).
    ///
    /// # Errors
    ///
    /// As [`attach_fd`](Self::attach_fd).
    pub fn attach_fd_read_only(fd: OwnedFd) -> Result<Self> {
        MmapOptions::new().attach_fd_read_only(fd)
    }

    /// Creates a POSIX shared-memory segment named `name` of `size` zero
    /// bytes and maps it: what `shm_open(name, O_CREAT | O_EXCL | O_RDWR,
    /// 0600)` and `ftruncate` make in C, and what Python's
    /// `multiprocessing.shared_memory.SharedMemory(name=...)` and other
    /// processes attach to by the same name.
    ///
    /// `name` is written with or without one leading `/` (`"seg"` and
    /// `"/seg"` name the same segment; Python passes `"/seg"` to
    /// `shm_open` for `SharedMemory(name="seg")`). It is 1 to 255 bytes
    /// after that slash, with no other `/` and no NUL, and not `.` or `..`.
    ///
    /// On Linux the segment is the file `/dev/shm/<name>` and this is
    /// [`create`](Self::create) of that path, with every guarantee of
    /// `create` ([`path`](Self::path) is that path): exclusive creation that
    /// never follows a symbolic link, mode `0600`, blocks reserved, growth
    /// in place with [`resize`](Self::resize), and removal on drop only if
    /// the name still names this segment. `cleanup` means what it means for
    /// `create`: with [`FileCleanup::Manual`] the name stays while this
    /// handle lives (and after [`release_ownership`](Self::release_ownership)),
    /// and dropping the handle removes it if it still names this segment
    /// (checked by device and inode just before the unlink: a process of
    /// the same user can still rename another file over the name between
    /// the check and the unlink, and that file is then removed; such a
    /// process could remove the segment anyway: see the caveat in
    /// SECURITY.md's threat table, "rename another file over our name");
    /// with [`FileCleanup::Auto`] the segment never has a name (only its
    /// descriptor can be shared).
    ///
    /// Elsewhere the name goes to the system's `shm_open` (exclusive, mode
    /// `0600`) and the segment is sized with `ftruncate`, without reserving
    /// blocks: shared-memory objects there need not support `write` or
    /// `fallocate`. POSIX does not promise that such an object can be
    /// resized once sized, and macOS is reported to refuse a second
    /// `ftruncate`: there [`resize`](Self::resize) may fail with
    /// [`ErrorKind::Os`]. [`path`](Self::path) is empty there. The system
    /// may also allow shorter names (macOS: 31 bytes), refused with
    /// [`ErrorKind::InvalidPath`] or [`ErrorKind::Os`]. On macOS `fstat`
    /// gives a shared-memory object no file type and no identity (device
    /// and inode 0): the object is accepted as the shared-memory type it
    /// is, and removal on drop cannot check that the name still names this
    /// segment, so it removes whatever the name names by then. This route
    /// is compiled for macOS and FreeBSD in CI but runs there untested.
    ///
    /// ```
    /// # #[cfg(miri)] fn main() {} // Miri cannot map files.
    /// # #[cfg(not(miri))]
    /// # fn main() -> Result<(), shm_region::Error> {
    /// use shm_region::{FileCleanup, MmapRegion};
    /// let name = format!("shm-region-doc-{}", std::process::id());
    /// let mut host = MmapRegion::create_shm(&name, 4096, FileCleanup::Manual)?;
    /// let mut guest = MmapRegion::attach_shm(&format!("/{name}"))?; // usually another process
    /// host.region().write_at(0, b"by name")?;
    /// host.resize(8192)?;
    /// assert!(guest.check_and_remap()?);
    /// let mut buf = [0u8; 7];
    /// guest.region().read_at(0, &mut buf)?;
    /// assert_eq!((&buf, guest.len()), (b"by name", 8192));
    /// drop(host);                                       // removes the name
    /// assert!(MmapRegion::attach_shm(&name).is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::InvalidPath`] for a name as described above;
    /// - otherwise as [`create`](Self::create) (`AlreadyExists` if a
    ///   segment, or anything else, has the name); errors name the
    ///   operation `create_shm` and, on Linux, the path under `/dev/shm`.
    pub fn create_shm(name: &str, size: usize, cleanup: FileCleanup) -> Result<Self> {
        MmapOptions::new().create_shm(name, size, cleanup)
    }

    /// Attaches to the POSIX shared-memory segment `name` (written as for
    /// [`create_shm`](Self::create_shm)), made by this crate, by C's
    /// `shm_open`, by Python's `SharedMemory` or by anything else.
    ///
    /// On Linux this is [`attach`](Self::attach) of `/dev/shm/<name>`, with
    /// its checks: nothing but a regular file is opened (a symbolic link,
    /// FIFO or anything else planted under the name is refused), owned by
    /// the effective user, not writable by group or others, with one name
    /// (see [`MmapOptions`] to widen these), not empty. Growth by any holder
    /// is followed with [`check_and_remap`](Self::check_and_remap).
    /// Elsewhere the name goes to the system's `shm_open` and the object is
    /// checked as [`attach_fd`](Self::attach_fd) checks a descriptor.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::InvalidPath`] for an invalid name;
    /// - otherwise as [`attach`](Self::attach) (`NotFound` if no segment
    ///   has the name); errors name the operation `attach_shm`.
    pub fn attach_shm(name: &str) -> Result<Self> {
        MmapOptions::new().attach_shm(name)
    }

    /// [`attach_shm`](Self::attach_shm) for reading only, as
    /// [`attach_read_only`](Self::attach_read_only) is for a path: read
    /// permission is enough, writes are refused with
    /// [`ErrorKind::ReadOnly`].
    ///
    /// # Errors
    ///
    /// As [`attach_shm`](Self::attach_shm).
    pub fn attach_shm_read_only(name: &str) -> Result<Self> {
        MmapOptions::new().attach_shm_read_only(name)
    }

    /// Creates a region of `size` zero bytes in this process's memory, with
    /// no file behind it: the same [`Region`](crate::Region) views, generations, growth
    /// and checks as a file-backed region, for code that runs where files
    /// cannot be mapped (Miri, loom models, fuzz targets) or needs none.
    ///
    /// The memory is one range of private anonymous memory (`mmap`) of a
    /// capacity fixed now: [`MmapOptions::address_space`], by default a
    /// file mapping's default reservation (at least 1 GiB unless a finite
    /// `RLIMIT_AS` or `max_size` caps it), but not drawn from the file
    /// mappings' process-wide budget, since an in-memory region cannot grow
    /// past its capacity; either way at most [`MmapOptions::max_size`]
    /// rounded up to pages. Like a file
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
    /// size, gives a 256-byte region 6,144 objects. The guide's
    /// [`verifying`](crate::guide::verifying) has the command and an example.
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
    ///   [`MmapOptions::max_size`];
    /// - [`ErrorKind::OutOfMemory`] if the capacity cannot be had (over
    ///   `isize::MAX` once rounded to pages, or `mmap` failed with `ENOMEM`:
    ///   no address space left, `RLIMIT_AS`, `RLIMIT_DATA`, or the commit
    ///   limit).
    pub fn in_memory(size: usize) -> Result<Self> {
        MmapOptions::new().in_memory(size)
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
    /// For a file, as [`attach_fd`](Self::attach_fd), except that the
    /// share of the address space a mapping without `max_size` takes is
    /// that of this handle's origin (a peer of a region this process
    /// created draws on the created regions' quarter; see
    /// [`MmapOptions::max_size`]), and [`ErrorKind::Os`] if the descriptor
    /// cannot be duplicated. An in-memory region always succeeds.
    pub fn peer(&self) -> Result<Self> {
        const OP: &str = "peer";
        let writable = !self.is_read_only();
        match self.source() {
            Source::File(fd) => {
                let dup = rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| Error::os(OP, e))?;
                Self::from_fd(
                    self.options(),
                    self.origin(),
                    dup,
                    None,
                    PathBuf::new(),
                    writable,
                    OP,
                )
            }
            Source::Memory(published) => {
                let len = published.load(Ordering::Acquire);
                let map = Arc::clone(self.current_map());
                let info = fs::FileInfo {
                    dev: Default::default(),
                    ino: 0,
                    size: 0,
                };
                let source = Source::Memory(Arc::clone(published));
                Ok(Self::with_mapping(
                    self.options(),
                    self.origin(),
                    source,
                    info,
                    map,
                    len,
                    writable,
                    false,
                ))
            }
        }
    }

    /// Creates the file `loc` names (exclusively, with the options' mode),
    /// sizes and maps it; on any failure the file is removed again. With
    /// [`FileCleanup::Auto`] the file gets no name at all where the system
    /// allows (`O_TMPFILE`), and is otherwise unlinked once mapped.
    fn create_at(
        options: &MmapOptions,
        loc: Location,
        path: PathBuf,
        size: usize,
        cleanup: FileCleanup,
    ) -> Result<Self> {
        const OP: &str = "create";
        let file_len = map::checked_size(options, size, OP)?;
        if cleanup == FileCleanup::Auto {
            if let Some(fd) = fs::create_unnamed(&loc, options.creation_mode(), OP)? {
                return Self::init_created(options, None, fd, path, size, file_len);
            }
        }
        let fd = fs::create_exclusive(loc.dir.as_fd(), &loc.name, options.creation_mode())?;
        let mut region = Self::init_created(options, Some(loc), fd, path, size, file_len)?;
        if cleanup == FileCleanup::Auto {
            // No O_TMPFILE here: the name existed from the open until now.
            region.unlink_name().map_err(|e| Error::os(OP, e))?;
        }
        Ok(region)
    }

    /// Sizes and maps the file this process just created (open at `fd`,
    /// linked at `loc` if it has a name), giving a handle for `path` that
    /// owns the name. On any failure the name is removed again, if it still is the
    /// file's.
    fn init_created(
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
        let fd = FileArc::new(fd);
        let map = fs::refuse_hugetlbfs(fd.as_fd(), OP)
            .and_then(|()| Self::map_new_file(options, &fd, size, file_len, OP));
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
        let owner = loc.is_some();
        Ok(Self::with_mapping(
            options,
            Origin::Created,
            Source::File(fd),
            id,
            map,
            size,
            true,
            false,
        )
        .named(path, loc, owner))
    }

    /// Grows a file this process just created (empty) to `size` bytes and
    /// maps it, applying the options' `populate` and `lock`.
    fn map_new_file(
        options: &MmapOptions,
        fd: &FileArc,
        size: usize,
        file_len: u64,
        op: &'static str,
    ) -> Result<Arc<Mapping>> {
        let map = map::grow_and_map(options, Origin::Created, fd, None, 0, size, file_len, op)?;
        map::prepare(options, &map, 0, size, op)?;
        Ok(map)
    }

    fn create_sealed_with(options: &MmapOptions, name: &str, size: usize) -> Result<Self> {
        const OP: &str = "create_sealed";
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let file_len = map::checked_size(options, size, OP)?;
            let fd = fs::create_memfd(name, options.creation_mode(), OP)?;
            fs::seal_shrink(fd.as_fd(), OP)?;
            let id = fs::identity(fd.as_fd(), OP)?;
            let fd = FileArc::new(fd);
            let map = Self::map_new_file(options, &fd, size, file_len, OP)?;
            let sealed = fs::is_shrink_sealed(fd.as_fd());
            Ok(Self::with_mapping(
                options,
                Origin::Created,
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

    #[allow(clippy::too_many_arguments)]
    fn from_fd(
        options: &MmapOptions,
        origin: Origin,
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
        if options.require_write_seal {
            fs::require_write_seal(fd.as_fd(), op)?;
        }
        let len = map::file_mappable(options, info.size, op)?;
        let fd = FileArc::new(fd);
        let map = map::map_len(options, origin, &fd, None, len, writable, op)?;
        map::prepare(options, &map, 0, len, op)?;
        Ok(Self::with_mapping(
            options,
            origin,
            Source::File(fd),
            info,
            map,
            len,
            writable,
            sealed,
        )
        .named(path, location, false))
    }

    /// [`create_shm`](Self::create_shm) through the system's `shm_open`
    /// (off Linux; on Linux only in unit tests): the object is created
    /// exclusively with the options' mode, sized sparsely (shared-memory
    /// objects need not support `write` or `fallocate`) and mapped; on any
    /// failure it is removed again. `Manual` leaves the name to this handle
    /// to remove on drop; `Auto` removes it once mapped.
    #[cfg(any(
        all(test, not(miri), not(loom)),
        not(any(target_os = "linux", target_os = "android"))
    ))]
    pub(crate) fn create_shm_object(
        options: &MmapOptions,
        bare: &str,
        size: usize,
        cleanup: FileCleanup,
        op: &'static str,
    ) -> Result<Self> {
        use crate::shm::portable;
        refuse_files_under_loom(op)?;
        options.refuse_unsupported(op)?;
        let mut sparse = options.clone();
        sparse.reserve_blocks(false);
        let file_len = map::checked_size(&sparse, size, op)?;
        let fd = portable::create(bare, options.creation_mode(), op)?;
        let name = portable::slashed(bare);
        let id = match fs::identity(fd.as_fd(), op) {
            Ok(id) => id,
            Err(e) => {
                // Without an identity to compare, remove the name made an
                // instant ago: nothing may be left after a failure.
                let _ = portable::unlink(bare);
                return Err(e);
            }
        };
        let mut region = match Self::init_created(&sparse, None, fd, PathBuf::new(), size, file_len)
        {
            Ok(region) => region,
            Err(e) => {
                let _ = portable::remove_if_same(&name, id.dev, id.ino);
                return Err(e);
            }
        };
        match cleanup {
            FileCleanup::Manual => region.own_shm_name(name),
            FileCleanup::Auto => {
                portable::remove_if_same(&name, id.dev, id.ino).map_err(|e| Error::os(op, e))?;
            }
        }
        Ok(region)
    }

    /// [`attach_shm`](Self::attach_shm) through the system's `shm_open`
    /// (off Linux; on Linux only in unit tests): the object is checked as
    /// [`attach_fd`](Self::attach_fd) checks a descriptor.
    #[cfg(any(
        all(test, not(miri), not(loom)),
        not(any(target_os = "linux", target_os = "android"))
    ))]
    pub(crate) fn attach_shm_object(
        options: &MmapOptions,
        bare: &str,
        writable: bool,
        op: &'static str,
    ) -> Result<Self> {
        refuse_files_under_loom(op)?;
        options.refuse_unsupported(op)?;
        let fd = crate::shm::portable::open(bare, writable, op)?;
        Self::from_fd(
            options,
            Origin::Named,
            fd,
            None,
            PathBuf::new(),
            writable,
            op,
        )
    }

    fn in_memory_with(options: &MmapOptions, size: usize) -> Result<Self> {
        const OP: &str = "in_memory";
        map::checked_size(options, size, OP)?;
        // `size` is valid (checked above), so a refusal concerns the
        // capacity: more than can be represented or had.
        let map = Mapping::in_memory(options.capacity_for(size))
            .map_err(|e| Error::out_of_memory(OP, size, e))?;
        map::exclude(options, &map, OP)?;
        map::prepare(options, &map, 0, size, OP)?;
        let source = Source::Memory(Arc::new(AtomicUsize::new(size)));
        let info = fs::FileInfo {
            dev: Default::default(),
            ino: 0,
            size: 0,
        };
        Ok(Self::with_mapping(
            options,
            Origin::Created,
            source,
            info,
            Arc::new(map),
            size,
            true,
            false,
        ))
    }
}

impl MmapOptions {
    /// Creates an in-memory region with these options; see
    /// [`MmapRegion::in_memory`]. Of the options, `address_space` (the
    /// capacity), `max_size`, `populate`, `lock`, `dont_dump` and
    /// `dont_fork` apply.
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::in_memory`], and [`ErrorKind::LockLimit`] with
    /// [`lock`](Self::lock).
    ///
    /// [`ErrorKind::LockLimit`]: crate::ErrorKind::LockLimit
    pub fn in_memory(&self, size: usize) -> Result<MmapRegion> {
        self.refuse_unsupported("in_memory")?;
        MmapRegion::in_memory_with(self, size)
    }

    /// Creates a region with these options; see [`MmapRegion::create`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::create`], and [`ErrorKind::LockLimit`] with
    /// [`lock`](Self::lock).
    ///
    /// [`ErrorKind::LockLimit`]: crate::ErrorKind::LockLimit
    pub fn create(
        &self,
        path: impl AsRef<Path>,
        size: usize,
        cleanup: FileCleanup,
    ) -> Result<MmapRegion> {
        self.create_path(path.as_ref(), size, cleanup)
    }

    fn create_path(&self, path: &Path, size: usize, cleanup: FileCleanup) -> Result<MmapRegion> {
        let create = || {
            refuse_files_under_loom("create")?;
            self.refuse_unsupported("create")?;
            let loc = fs::locate(path, "create")?;
            MmapRegion::create_at(self, loc, path.to_path_buf(), size, cleanup)
        };
        create().map_err(|e| e.with_path(path))
    }

    /// Creates a sealed anonymous region with these options; see
    /// [`MmapRegion::create_sealed`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::create_sealed`].
    pub fn create_sealed(&self, name: &str, size: usize) -> Result<MmapRegion> {
        refuse_files_under_loom("create_sealed")?;
        self.refuse_unsupported("create_sealed")?;
        MmapRegion::create_sealed_with(self, name, size)
    }

    /// Stages a region with these options; see [`MmapRegion::stage`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::stage`].
    pub fn stage(&self, path: impl AsRef<Path>, size: usize) -> Result<Staged> {
        self.stage_path(path.as_ref(), size)
    }

    fn stage_path(&self, path: &Path, size: usize) -> Result<Staged> {
        let stage = || {
            refuse_files_under_loom("stage")?;
            self.refuse_unsupported("stage")?;
            Staged::new_with(self, path, size)
        };
        stage().map_err(|e| e.with_path(path))
    }

    /// Attaches to the file at `path` with these options; see
    /// [`MmapRegion::attach`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach`].
    pub fn attach(&self, path: impl AsRef<Path>) -> Result<MmapRegion> {
        self.attach_path(path.as_ref(), true, "attach")
    }

    /// Attaches read-only to the file at `path` with these options; see
    /// [`MmapRegion::attach_read_only`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach_read_only`].
    pub fn attach_read_only(&self, path: impl AsRef<Path>) -> Result<MmapRegion> {
        self.attach_path(path.as_ref(), false, "attach_read_only")
    }

    fn attach_path(&self, path: &Path, writable: bool, op: &'static str) -> Result<MmapRegion> {
        let attach = || {
            refuse_files_under_loom(op)?;
            self.refuse_unsupported(op)?;
            let loc = fs::locate(path, op)?;
            let fd = fs::open_existing(&loc, writable, self.trust.allow_hard_links, op)?;
            // The directory is closed here: an attached handle owns no name
            // (`take_ownership` opens it again if it comes to own one).
            drop(loc);
            MmapRegion::from_fd(self, Origin::Named, fd, None, PathBuf::new(), writable, op)
                .map(|region| region.attached_at(path.to_path_buf()))
        };
        attach().map_err(|e| e.with_path(path))
    }

    /// Attaches to an open file with these options; see
    /// [`MmapRegion::attach_fd`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach_fd`].
    pub fn attach_fd(&self, fd: OwnedFd) -> Result<MmapRegion> {
        refuse_files_under_loom("attach_fd")?;
        self.refuse_unsupported("attach_fd")?;
        MmapRegion::from_fd(
            self,
            Origin::Received,
            fd,
            None,
            PathBuf::new(),
            true,
            "attach_fd",
        )
    }

    /// Attaches read-only to an open file with these options; see
    /// [`MmapRegion::attach_fd_read_only`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach_fd_read_only`].
    pub fn attach_fd_read_only(&self, fd: OwnedFd) -> Result<MmapRegion> {
        refuse_files_under_loom("attach_fd_read_only")?;
        self.refuse_unsupported("attach_fd_read_only")?;
        MmapRegion::from_fd(
            self,
            Origin::Received,
            fd,
            None,
            PathBuf::new(),
            false,
            "attach_fd_read_only",
        )
    }

    /// Creates a POSIX shared-memory segment named `name` with these
    /// options; see [`MmapRegion::create_shm`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::create_shm`].
    pub fn create_shm(&self, name: &str, size: usize, cleanup: FileCleanup) -> Result<MmapRegion> {
        const OP: &str = "create_shm";
        let bare = shm::bare_name(name, OP)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            self.create_path(&shm::path_of(bare), size, cleanup)
                .map_err(|e| e.in_operation(OP))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            MmapRegion::create_shm_object(self, bare, size, cleanup, OP)
        }
    }

    /// Attaches to the POSIX shared-memory segment `name` with these
    /// options; see [`MmapRegion::attach_shm`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach_shm`].
    pub fn attach_shm(&self, name: &str) -> Result<MmapRegion> {
        self.attach_shm_as(name, true, "attach_shm")
    }

    /// Attaches read-only to the POSIX shared-memory segment `name` with
    /// these options; see [`MmapRegion::attach_shm_read_only`].
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach_shm_read_only`].
    pub fn attach_shm_read_only(&self, name: &str) -> Result<MmapRegion> {
        self.attach_shm_as(name, false, "attach_shm_read_only")
    }

    fn attach_shm_as(&self, name: &str, writable: bool, op: &'static str) -> Result<MmapRegion> {
        let bare = shm::bare_name(name, op)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            self.attach_path(&shm::path_of(bare), writable, op)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            MmapRegion::attach_shm_object(self, bare, writable, op)
        }
    }
}

impl Staged {
    /// Creates the temporary file beside `path`, sizes and maps it.
    fn new_with(options: &MmapOptions, path: &Path, size: usize) -> Result<Self> {
        const OP: &str = "stage";
        let loc = fs::locate(path, OP)?;
        let final_name = loc.name.clone();
        let file_len = map::checked_size(options, size, OP)?;
        let (tmp_name, fd) = fs::create_temp(&loc, options.creation_mode())?;
        let tmp_path = path.with_file_name(&tmp_name);
        let tmp = fs::Location {
            dir: loc.dir,
            name: tmp_name,
        };
        let region = MmapRegion::init_created(options, Some(tmp), fd, tmp_path, size, file_len)?;
        Ok(Self::from_parts(region, final_name, path.to_path_buf()))
    }
}

/// Loom models no system calls, so under `--cfg loom` every file-backed
/// constructor is refused with [`ErrorKind::Unsupported`] (in-memory regions
/// are modelled instead; see `sys/loom_memory.rs`). Otherwise it is
/// `Ok(())`, a constant the compiler removes.
#[inline(always)]
pub(crate) fn refuse_files_under_loom(op: &'static str) -> Result<()> {
    if cfg!(loom) {
        Err(Error::new(ErrorKind::Unsupported, op)
            .because("loom models no system calls: only in-memory regions exist under loom"))
    } else {
        Ok(())
    }
}
