//! `MmapRegion`, the owning handle, and its operations: growth, following
//! a peer's growth, flush and advice, ownership and cleanup. Its
//! constructors are in `open.rs`, the mapping steps it shares with them in
//! `map.rs`, and its generation-tagged views, [`Region`], in `view.rs`.

use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::fs::{self, Location};
use crate::map::{self, FileArc};
use crate::options::{Advice, MmapOptions};
use crate::protocol::{Follow, Publisher};
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::sys::Mapping;
use crate::view::Region;

/// What backs a region.
pub(crate) enum Source {
    /// A file, open at this descriptor; its size is the published length.
    /// Every mapping of it keeps the descriptor too.
    File(FileArc),
    /// Process memory ([`MmapRegion::in_memory`](crate::MmapRegion::in_memory)): one allocation shared by
    /// every handle, and the length the handles published, which stands in
    /// for the file's size. It only ever grows.
    Memory(Arc<AtomicUsize>),
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
    source: Source,
    publisher: Publisher<Mapping>,
    path: PathBuf,
    /// Where the file is linked, while it may still be ours to remove: the
    /// directory stays open for that (a created handle); `None` for a
    /// handle attached by path until [`take_ownership`](Self::take_ownership).
    location: Option<Location>,
    /// Attached by path: the handle keeps no directory descriptor, and
    /// `take_ownership` opens the directory of `path` then.
    attached_by_path: bool,
    dev: rustix::fs::Dev,
    ino: u64,
    owner: bool,
    writable: bool,
    shrink_sealed: bool,
    options: MmapOptions,
    /// Where the file came from: the share of the address space its
    /// mappings made without `max_size` draw on.
    origin: map::Origin,
    /// The POSIX shared-memory name (with its slash) this handle may remove
    /// where names are not files (`shm::portable`); `None` on Linux, where
    /// a name is the path `location` holds.
    shm_name: Option<String>,
}

impl MmapRegion {
    /// A handle on `source` with `map` published as generation 0 holding
    /// `len` bytes; no path, not owning (see [`named`](Self::named)). How
    /// every constructor in `open.rs` hands over what it built.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn with_mapping(
        options: &MmapOptions,
        origin: map::Origin,
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
            attached_by_path: false,
            dev: info.dev,
            ino: info.ino,
            owner: false,
            writable,
            shrink_sealed,
            options: options.clone(),
            origin,
            shm_name: None,
        }
    }

    /// This handle, for the file reached at `path` (linked at `location`
    /// while it may be ours to remove), owning that name if `owner`.
    pub(crate) fn named(mut self, path: PathBuf, location: Option<Location>, owner: bool) -> Self {
        self.path = path;
        self.location = location;
        self.owner = owner;
        self
    }

    /// This handle, attached at `path` (opened there, owning nothing):
    /// it keeps no directory descriptor until it takes ownership.
    pub(crate) fn attached_at(mut self, path: PathBuf) -> Self {
        self.path = path;
        self.location = None;
        self.owner = false;
        self.attached_by_path = true;
        self
    }

    /// Removes the file's name now, if it still names this handle's file,
    /// and forgets it: the handle then owns no name.
    pub(crate) fn unlink_name(&mut self) -> rustix::io::Result<()> {
        self.owner = false;
        match self.location.take() {
            Some(loc) => fs::remove_if_same(&loc, self.dev, self.ino).map(|_| ()),
            None => Ok(()),
        }
    }

    /// What backs the region, for [`peer`](Self::peer).
    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    /// The options this handle was made with.
    pub(crate) fn options(&self) -> &MmapOptions {
        &self.options
    }

    /// Where the file came from ([`map::Origin`]).
    pub(crate) fn origin(&self) -> map::Origin {
        self.origin
    }

    /// The newest mapping.
    pub(crate) fn current_map(&self) -> &Arc<Mapping> {
        self.publisher.current().map_arc()
    }

    /// The descriptor of the file behind the region, or `None` for an
    /// [in-memory](Self::in_memory) region. Share it with
    /// [`fdpass::send`](crate::fdpass::send) or
    /// [`attach_fd`](Self::attach_fd) (after
    /// [`try_clone_to_owned`](BorrowedFd::try_clone_to_owned)).
    ///
    /// The descriptor is closed when the handle and its last
    /// [`Region`](crate::Region) view are dropped, not with the handle
    /// alone: a view that outlives the handle keeps it open, and with it
    /// any `flock` taken on it (dropping a handle made with
    /// [`FileCleanup::Manual`](crate::FileCleanup::Manual) still removes
    /// the file's name).
    ///
    /// This is the one descriptor a handle attached by path or by
    /// descriptor, a [`peer`](Self::peer), and a handle made by
    /// [`create_sealed`](Self::create_sealed) or with
    /// [`FileCleanup::Auto`](crate::FileCleanup::Auto) keep open. A handle
    /// created with [`FileCleanup::Manual`](crate::FileCleanup::Manual)
    /// (and a [stage](Self::stage)) also keeps its directory open, to
    /// remove the name relative to it; an attached handle opens its
    /// directory only when it [takes ownership](Self::take_ownership). An
    /// in-memory region keeps none.
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
    /// [`attach_fd`](Self::attach_fd). With [`FileCleanup::Auto`](crate::FileCleanup::Auto) nothing is
    /// linked there any more.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes this handle remove the file when dropped (if it still is the
    /// file this handle mapped). Has no effect on a handle without a path
    /// (attached by descriptor, or created with [`FileCleanup::Auto`](crate::FileCleanup::Auto)).
    ///
    /// A handle attached by path keeps only the file's descriptor (a
    /// server attaching many segments needs one descriptor each, not two);
    /// taking ownership opens the directory of its [`path`](Self::path)
    /// now, and the file is removed from it when the handle is dropped,
    /// still only if the name there is this handle's file. If the
    /// directory cannot be opened now (it is gone, or no descriptor is
    /// left), dropping the handle removes nothing. A created handle keeps
    /// its directory open from the start, for the removal.
    pub fn take_ownership(&mut self) {
        self.owner = true;
        if self.attached_by_path && self.location.is_none() {
            self.location = fs::locate(&self.path, "take_ownership").ok();
        }
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
    ///   or, without an explicit `max_size`, a new mapping would take the
    ///   handle's origin past its share of the address space (see
    ///   [`MmapOptions::max_size`]), or a new mapping cannot be made (`mmap`
    ///   failed with `ENOMEM`: no address space or mapping slots left);
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
        self.refuse_sealed_growth(OP)?;
        let to = map::checked_size(&self.options, new_size, OP)?;
        let map = match &self.source {
            // `now >= len`: a peer may have grown the file further already.
            Source::File(fd) => map::grow_and_map(
                &self.options,
                self.origin,
                fd,
                Some(self.publisher.current().map_arc()),
                now,
                new_size,
                to,
                OP,
            )?,
            Source::Memory(published) => {
                let map = map::within_capacity(self.publisher.current().map_arc(), new_size, OP)?;
                // The "size" changes last, as a file's does.
                published.fetch_max(new_size, Ordering::Release);
                map
            }
        };
        map::prepare(&self.options, &map, cur, new_size, OP)?;
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
    ///   can map or past [`MmapOptions::max_size`] (without an explicit
    ///   `max_size`: past a quarter of the address space left, or past the
    ///   share of the address space of the handle's origin, see
    ///   [`MmapOptions::max_size`]); nothing is published;
    /// - [`ErrorKind::Os`] if `fstat` or `mmap` fails.
    pub fn check_and_remap(&mut self) -> Result<bool> {
        const OP: &str = "check_and_remap";
        let size = self.source_len(OP)?;
        self.note_cut();
        let (options, source, writable) = (&self.options, &self.source, self.writable);
        let origin = self.origin;
        let cur = self.publisher.current().len();
        // A size past `usize` is no shrink: saturate for the comparison;
        // `mappable` refuses it when the growth is followed.
        let file_len = usize::try_from(size).unwrap_or(usize::MAX);
        let followed = self.publisher.follow(file_len, |map, _| {
            let (map, len) = match source {
                Source::File(fd) => {
                    let len = map::file_mappable(options, size, OP)?;
                    let map = map::map_len(options, origin, fd, Some(map), len, writable, OP)?;
                    (map, len)
                }
                Source::Memory(_) => {
                    let len = map::mappable(options, size, OP)?;
                    (map::within_capacity(map, len, OP)?, len)
                }
            };
            map::prepare(options, &map, cur, len, OP)?;
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
        view.map()
            .advise(offset, len, advice.hint())
            .map_err(|e| Error::os(OP, e))
    }

    /// Turns the region into a [`Frozen`](crate::Frozen): its file's bytes
    /// as a `&[u8]` no one can change any more (memfd regions from
    /// [`create_sealed`](Self::create_sealed) or attached by descriptor;
    /// Linux and Android only, like `Frozen`).
    ///
    /// The steps, for a file not yet frozen: the file is sealed against
    /// shrinking (`F_SEAL_SHRINK`, if it lacks it) and its size read, which
    /// must be [`len`](Self::len) (an attached file a peer cut is
    /// refused, and so is one a holder grew past `len` that this handle has
    /// not followed: allocating it would take this process's memory at a
    /// peer's word); every page of it is allocated (`fallocate`: a `Frozen`
    /// has no holes, whose reading would allocate memory and could raise
    /// `SIGBUS`; allocated first so that a lack of memory leaves the region
    /// unchanged); this handle's writable mapping is released; the file is
    /// sealed with `F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SEAL` (those it
    /// lacks), allocated whole again (a peer with a writable descriptor may
    /// have punched a hole before the seals; after them no one can punch
    /// one; a file grown again before `F_SEAL_GROW` is refused, nothing
    /// more allocated), and mapped read-only, whole: the
    /// [`Frozen`](crate::Frozen) holds `len` bytes. From then on the kernel refuses every write and size change
    /// to the file, by every holder, in every process; see `SECURITY.md`.
    ///
    /// The kernel adds `F_SEAL_WRITE` only while no writable shared mapping
    /// of the file exists anywhere, so freezing fails while one does. A
    /// [`Region`] view of this handle, or a shared word of its newest
    /// mapping, is found before anything changes, and the handle is given
    /// back untouched; a [`peer`](Self::peer) handle, a shared word of an
    /// older mapping, or a mapping in another process, is found by the
    /// kernel after this handle released its mapping, and the
    /// handle is given back mapped anew: with its length, bytes
    /// and truncation state, at a new generation (two more than before: one
    /// for the release, one for the new mapping), possibly at another
    /// address; writable, unless the file now refuses new writable mappings
    /// (it carries `F_SEAL_FUTURE_WRITE`, from
    /// [`share_read_only`](Self::share_read_only), or `F_SEAL_WRITE`) or the
    /// handle was read-only: then mapped read-only, so that writes through
    /// it fail with [`ErrorKind::ReadOnly`], and freezing it can be retried
    /// once the other writable mappings are gone. A refused freeze may
    /// leave `F_SEAL_SHRINK` added, never another seal.
    ///
    /// # Errors
    ///
    /// The region comes back in the [`FreezeError`](crate::FreezeError)
    /// (see [`into_region`](crate::FreezeError::into_region)):
    ///
    /// - [`ErrorKind::Busy`] while a writable mapping of the file exists:
    ///   a view of this handle or a shared word of its newest mapping
    ///   (found first, nothing changed), or another one (OS error `EBUSY`);
    /// - [`ErrorKind::Unsupported`] for an in-memory region, a file that
    ///   cannot carry seals (on a file system: tmpfs files at a path carry
    ///   `F_SEAL_SEAL` from their creation, others have no seals; memfds
    ///   made without `MFD_ALLOW_SEALING`);
    /// - [`ErrorKind::Sealed`] if a holder locked the seals (`F_SEAL_SEAL`)
    ///   before the file was sealed against writes and size changes;
    /// - [`ErrorKind::ReadOnly`] for a read-only handle of a file not yet
    ///   frozen whose descriptor is open read-only (seals can only be added
    ///   through a writable descriptor), or whose file carries neither
    ///   `F_SEAL_WRITE` nor `F_SEAL_FUTURE_WRITE`;
    /// - [`ErrorKind::Truncated`] if the file is empty or shorter than
    ///   [`len`](Self::len) (a peer cut an attached file);
    /// - [`ErrorKind::FileTooLarge`] if a holder grew the file past
    ///   [`len`](Self::len) (the message gives both sizes;
    ///   [`check_and_remap`](Self::check_and_remap) follows the growth
    ///   first): before the seals the region comes back unchanged, with
    ///   nothing allocated; grown again between the first check and the
    ///   seals, the file stays frozen and the region is lost;
    /// - [`ErrorKind::StorageFull`] if the file's pages cannot be allocated
    ///   (`ENOSPC`, `ENOMEM`);
    /// - [`ErrorKind::Unsupported`] if `/proc/thread-self/fd` is not procfs
    ///   (the file is reopened read-only through it);
    /// - [`ErrorKind::FileTooLarge`] and [`ErrorKind::Os`] if a mapping
    ///   cannot be made.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[cfg_attr(docsrs, doc(cfg(any(target_os = "linux", target_os = "android"))))]
    pub fn freeze(mut self) -> std::result::Result<crate::Frozen, crate::FreezeError> {
        match self.freeze_steps() {
            Ok(frozen) => Ok(frozen),
            Err((error, Restore::Unchanged)) => Err(crate::FreezeError::new(error, Some(self))),
            Err((error, Restore::Remap(len))) => {
                // Writable again unless the file forbids new writable
                // mappings now (`F_SEAL_FUTURE_WRITE` from share_read_only,
                // or `F_SEAL_WRITE` a holder added): then read-only.
                let sealed = match &self.source {
                    Source::File(fd) => fs::seals(fd.as_fd()).unwrap_or(0) & fs::WRITE_SEALS != 0,
                    Source::Memory(_) => true,
                };
                let remap = |writable: bool| match &self.source {
                    Source::File(fd) => map::map_len(
                        &self.options,
                        self.origin,
                        fd,
                        None,
                        len,
                        writable,
                        "freeze",
                    )
                    .and_then(|map| {
                        map::prepare(&self.options, &map, 0, len, "freeze").map(|()| map)
                    }),
                    Source::Memory(_) => unreachable_memory(),
                };
                let restored = if self.writable && !sealed {
                    remap(true).map(|map| (map, true))
                } else {
                    Err(Error::new(ErrorKind::ReadOnly, "freeze"))
                }
                .or_else(|_| remap(false).map(|map| (map, false)));
                match restored {
                    Ok((map, writable)) => {
                        self.writable = writable;
                        self.publisher.publish(map, len);
                        Err(crate::FreezeError::new(error, Some(self)))
                    }
                    Err(_) => Err(crate::FreezeError::new(error, None)),
                }
            }
            Err((error, Restore::Lost)) => Err(crate::FreezeError::new(error, None)),
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn freeze_steps(&mut self) -> std::result::Result<crate::Frozen, (Error, Restore)> {
        use crate::sys::FROZEN_SEALS;
        const OP: &str = "freeze";
        const SEAL: u32 = 0x1;
        const SHRINK: u32 = 0x2;
        const WRITE: u32 = 0x8;
        let unchanged = |e| (e, Restore::Unchanged);
        let seal_error = |fd, e| {
            match e {
            rustix::io::Errno::BUSY => Error::with_errno(ErrorKind::Busy, OP, e).because(
                "another writable mapping of the file exists (a peer handle, or a mapping in another process)",
            ),
            rustix::io::Errno::PERM => match fs::seals(fd) {
                Some(now) if now & SEAL != 0 => locked(OP, now),
                _ => Error::os(OP, e),
            },
            e => Error::os(OP, e),
        }
        };
        let Source::File(fd) = &self.source else {
            return Err(unchanged(
                Error::new(ErrorKind::Unsupported, OP)
                    .because("an in-memory region has no file to seal"),
            ));
        };
        let fd = fd.as_fd();
        let seals = fs::seals(fd).ok_or_else(|| unchanged(not_sealable(OP)))?;
        let missing = (FROZEN_SEALS.bits() | SEAL) & !seals;
        if seals & SEAL != 0 && missing & FROZEN_SEALS.bits() != 0 {
            return Err(unchanged(locked(OP, seals)));
        }
        // A read-only handle may complete the seals only of a file already
        // sealed against writes (one a failed freeze gave back read-only),
        // and only through a descriptor open for writing.
        if missing != 0
            && (fs::is_open_read_only(fd) || (!self.writable && seals & fs::WRITE_SEALS == 0))
        {
            return Err(unchanged(Error::new(ErrorKind::ReadOnly, OP).because(
                "a read-only handle cannot add seals (that needs a writable descriptor)",
            )));
        }
        if missing & WRITE != 0 && self.writable && !self.publisher.is_sole_holder() {
            return Err(unchanged(Error::new(ErrorKind::Busy, OP).because(
                "a Region view or shared word of this handle maps the file writable: drop them first",
            )));
        }
        // Shrinking first: sealed against it, the file keeps at least the
        // size read next, which must cover the region (a peer may have cut
        // an attached file). Growth stays open until the final seal, so a
        // failed freeze leaves `resize` able to grow.
        if missing & SHRINK != 0 {
            let add = rustix::fs::SealFlags::SHRINK;
            rustix::fs::fcntl_add_seals(fd, add).map_err(|e| unchanged(seal_error(fd, e)))?;
        }
        let size = file_size(fd).map_err(|e| unchanged(Error::os(OP, e)))?;
        let len = self.len();
        if size == 0 || size < u64::try_from(len).unwrap_or(u64::MAX) {
            return Err(unchanged(Error::truncated(OP, len, size)));
        }
        // A holder with a writable descriptor may have grown the file to
        // any size (sparse: one `ftruncate`); allocating that would take
        // this process's memory at a peer's word. Only what this handle
        // maps (its length, followed growth included) is frozen.
        if size > u64::try_from(len).unwrap_or(u64::MAX) {
            return Err(unchanged(Error::too_large(
                OP,
                size,
                crate::error::Limit::GrownPast(len),
            )));
        }
        if missing & WRITE != 0 {
            // No holes: a read of a hole allocates a page, and raises
            // `SIGBUS` if that is refused (invariant 8).
            allocate(fd, 0, size).map_err(unchanged)?;
        }
        // Reopened before anything changes: without procfs nothing is lost.
        let ro = fs::reopen_read_only(fd, OP).map_err(unchanged)?;
        #[cfg(test)]
        freeze_seam::before_seals();
        let rest = missing & !SHRINK;
        if rest != 0 {
            // Our own writable mapping would make the seal fail (`EBUSY`):
            // release it (we are its sole holder), publishing a one-page
            // stand-in nobody can reach (the handle is borrowed mutably).
            let stand_in = Mapping::in_memory(crate::sys::page_size())
                .map_err(|e| unchanged(Error::os(OP, e)))?;
            self.publisher.publish(Arc::new(stand_in), 0);
            let sealed = rustix::fs::SealFlags::from_bits_retain(rest);
            if let Err(e) = rustix::fs::fcntl_add_seals(fd, sealed) {
                return Err((seal_error(fd, e), Restore::Remap(len)));
            }
        }
        if missing & WRITE != 0 {
            // The whole file again, now that no one can punch a hole
            // (`F_SEAL_WRITE` refuses it): a peer with a writable
            // descriptor may have punched one after the allocation above,
            // and grown the file before `F_SEAL_GROW`. Allowed under the
            // seals (it changes no byte and no size); the pages allocated
            // above are found, not allocated again.
            let now = file_size(fd).map_err(|e| (Error::os(OP, e), Restore::Lost))?;
            if now > size {
                // Grown between the check above and `F_SEAL_GROW`: the same
                // refusal, nothing more allocated (the file stays frozen).
                return Err((
                    Error::too_large(OP, now, crate::error::Limit::GrownPast(len)),
                    Restore::Lost,
                ));
            }
            allocate(fd, 0, now).map_err(|e| (e, Restore::Lost))?;
        }
        #[cfg(test)]
        freeze_seam::before_map();
        // Mapped as the region was: within its origin's share unless it has
        // an explicit `max_size`.
        let share = self.options.max_size.is_none().then_some(self.origin);
        crate::Frozen::map_filled(ro, OP, share).map_err(|e| (e, Restore::Lost))
    }

    /// Seals the file so that no one can write it any more except through
    /// the mappings that exist now, and returns a descriptor of it open
    /// read-only, to give to peers (Linux, memfd regions).
    ///
    /// Adds `F_SEAL_FUTURE_WRITE | F_SEAL_GROW | F_SEAL_SHRINK` (those the
    /// file lacks; a file with `F_SEAL_WRITE` needs no
    /// `F_SEAL_FUTURE_WRITE`). From then on, through every descriptor of
    /// the file (this handle's included, received ones, and ones reopened
    /// read-write through `/proc/<pid>/fd`), `write`, `pwrite` and a
    /// writable shared `mmap` fail with `EPERM`, and the size is fixed:
    /// [`resize`](Self::resize) fails with [`ErrorKind::Sealed`]. The
    /// mapping this handle has keeps writing, through [`Region`] views
    /// taken before or after, and peers see the writes; so does every
    /// writable shared mapping of the file made before, by any process (a
    /// [`peer`](Self::peer) handle, another process that had a writable
    /// descriptor): a receiver learns that no new writer can appear, not
    /// that only the owner writes. A new writable mapping
    /// ([`peer`](Self::peer), a writable `attach_fd`) is refused.
    /// The seal set stays open (no `F_SEAL_SEAL`), so the region can still
    /// be [frozen](Self::freeze) later; but so can any holder add seals: a
    /// process of the same user (or root) holding only the read-only
    /// descriptor can reopen it read-write through `/proc/<pid>/fd` (the
    /// kernel allows the open; only writes fail) and add `F_SEAL_SEAL`,
    /// after which `freeze` fails with [`ErrorKind::Sealed`] (making the
    /// file mode `0400` would not prevent it: the owner of the file can
    /// change its mode through a read-only descriptor).
    ///
    /// The descriptor is a new open of the file, made read-only
    /// (`O_RDONLY | O_CLOEXEC`) through `/proc/thread-self/fd` and checked
    /// to be the same file: a duplicate of this handle's descriptor would
    /// keep its write access. A receiver maps it with
    /// [`MmapOptions::attach_fd_read_only`](crate::MmapOptions::attach_fd_read_only),
    /// and with [`require_write_seal`](crate::MmapOptions::require_write_seal)
    /// it refuses a descriptor without the seal.
    ///
    /// Calling it again adds nothing and returns another descriptor.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Unsupported`] for an in-memory region, a file that
    ///   cannot carry seals (as for [`freeze`](Self::freeze)), a kernel
    ///   without `F_SEAL_FUTURE_WRITE` (before Linux 5.1; OS error
    ///   `EINVAL`), without procfs at `/proc/thread-self/fd`, or off Linux;
    /// - [`ErrorKind::Sealed`] if a holder locked the seals (`F_SEAL_SEAL`)
    ///   before the ones this adds;
    /// - [`ErrorKind::ReadOnly`] for a read-only handle of a file that
    ///   lacks them;
    /// - [`ErrorKind::Os`] for other failures.
    pub fn share_read_only(&self) -> Result<OwnedFd> {
        const OP: &str = "share_read_only";
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            const SEAL: u32 = 0x1;
            const SHRINK_GROW: u32 = 0x2 | 0x4;
            const FUTURE_WRITE: u32 = 0x10;
            let Source::File(fd) = &self.source else {
                return Err(Error::new(ErrorKind::Unsupported, OP)
                    .because("an in-memory region has no file to seal"));
            };
            let fd = fd.as_fd();
            let seals = fs::seals(fd).ok_or_else(|| not_sealable(OP))?;
            let mut missing = SHRINK_GROW & !seals;
            if seals & fs::WRITE_SEALS == 0 {
                missing |= FUTURE_WRITE;
            }
            let ro = fs::reopen_read_only(fd, OP)?;
            if missing != 0 {
                if seals & SEAL != 0 {
                    return Err(locked(OP, seals));
                }
                if !self.writable {
                    return Err(Error::new(ErrorKind::ReadOnly, OP).because(
                        "a read-only handle cannot add seals (that needs a writable descriptor)",
                    ));
                }
                let add = rustix::fs::SealFlags::from_bits_retain(missing);
                rustix::fs::fcntl_add_seals(fd, add).map_err(|e| match e {
                    rustix::io::Errno::INVAL => Error::with_errno(ErrorKind::Unsupported, OP, e)
                        .because("the kernel has no F_SEAL_FUTURE_WRITE (Linux 5.1 added it)"),
                    rustix::io::Errno::PERM => match fs::seals(fd) {
                        Some(now) if now & SEAL != 0 => locked(OP, now),
                        _ => Error::os(OP, e),
                    },
                    e => Error::os(OP, e),
                })?;
            }
            Ok(ro)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            Err(not_sealable(OP))
        }
    }

    /// Refuses growth of a file whose seals forbid it (`F_SEAL_GROW`), or
    /// forbid the writable mappings growth may need (`F_SEAL_WRITE`,
    /// `F_SEAL_FUTURE_WRITE`), with [`ErrorKind::Sealed`].
    fn refuse_sealed_growth(&self, op: &'static str) -> Result<()> {
        const GROW: u32 = 0x4;
        if let Source::File(fd) = &self.source {
            if let Some(seals) = fs::seals(fd.as_fd()) {
                if seals & (GROW | fs::WRITE_SEALS) != 0 {
                    return Err(Error::sealed(
                        op,
                        "the file is sealed against growth or writes, so its size is fixed (share_read_only adds F_SEAL_GROW)",
                        seals,
                    ));
                }
            }
        }
        Ok(())
    }

    /// The directory entry this handle may remove, for publishing a stage.
    pub(crate) fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// Records that this handle created the shared-memory object `name`
    /// (with its slash) and removes it when dropped, as an owner does.
    #[cfg(any(
        all(test, not(miri), not(loom)),
        not(any(target_os = "linux", target_os = "android"))
    ))]
    pub(crate) fn own_shm_name(&mut self, name: String) {
        self.shm_name = Some(name);
        self.owner = true;
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
            #[cfg(any(
                all(test, not(miri), not(loom)),
                not(any(target_os = "linux", target_os = "android"))
            ))]
            if let Some(name) = &self.shm_name {
                let _ = crate::shm::portable::remove_if_same(name, self.dev, self.ino);
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
            .field("shm_name", &self.shm_name)
            .finish_non_exhaustive()
    }
}

/// What [`MmapRegion::freeze`] must do with the handle after a failure.
#[cfg(any(target_os = "linux", target_os = "android"))]
enum Restore {
    /// Nothing changed: give it back as it is.
    Unchanged,
    /// Its mapping (of this many bytes) was released: map the file anew
    /// and publish that.
    Remap(usize),
    /// The file is sealed now; the handle cannot be mapped writable again.
    Lost,
}

/// The size of the file open at `fd`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn file_size(fd: BorrowedFd<'_>) -> rustix::io::Result<u64> {
    Ok(u64::try_from(rustix::fs::fstat(fd)?.st_size).unwrap_or(0))
}

/// Allocates `len` bytes of the file at `offset` (`fallocate`, mode 0), for
/// `freeze`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn allocate(fd: BorrowedFd<'_>, offset: u64, len: u64) -> Result<()> {
    rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), offset, len).map_err(|e| match e
    {
        rustix::io::Errno::NOSPC | rustix::io::Errno::NOMEM => {
            Error::with_errno(ErrorKind::StorageFull, "freeze", e)
                .because("the file's pages cannot be allocated before sealing it")
        }
        e => Error::os("freeze", e),
    })
}

/// An in-memory region never gets past `freeze`'s first check.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn unreachable_memory() -> Result<Arc<Mapping>> {
    Err(Error::new(ErrorKind::Unsupported, "freeze")
        .because("an in-memory region has no file to seal"))
}

/// `Unsupported`: the file cannot carry the seals asked for.
fn not_sealable(op: &'static str) -> Error {
    Error::new(ErrorKind::Unsupported, op).because(
        "the file cannot be sealed: only Linux memfds made with MFD_ALLOW_SEALING (create_sealed) can",
    )
}

/// The error for a file whose seals are locked (`F_SEAL_SEAL`): `Sealed`,
/// or `Unsupported` when `F_SEAL_SEAL` is its only seal, as for files at a
/// path (which carry it from their creation) and memfds made without
/// `MFD_ALLOW_SEALING`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn locked(op: &'static str, seals: u32) -> Error {
    if seals == 0x1 {
        return not_sealable(op);
    }
    Error::sealed(
        op,
        "a holder locked the file's seals (F_SEAL_SEAL): no seal can be added",
        seals,
    )
}

/// Test seams in `freeze`: between its first allocation and its seals (a
/// peer punches a hole there), and between its last allocation and the
/// read-only mapping (the file is looked at there).
#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod freeze_seam {
    use std::cell::RefCell;

    type Hook = RefCell<Option<Box<dyn FnOnce()>>>;

    std::thread_local! {
        static BEFORE_SEALS: Hook = RefCell::new(None);
        static BEFORE_MAP: Hook = RefCell::new(None);
    }

    /// Runs `f` (once, on this thread) at the next `before_seals`.
    #[cfg_attr(any(miri, loom), allow(dead_code))]
    pub(super) fn set_before_seals(f: impl FnOnce() + 'static) {
        BEFORE_SEALS.with(|s| *s.borrow_mut() = Some(Box::new(f)));
    }

    /// Runs `f` (once, on this thread) at the next `before_map`.
    #[cfg_attr(any(miri, loom), allow(dead_code))]
    pub(super) fn set_before_map(f: impl FnOnce() + 'static) {
        BEFORE_MAP.with(|s| *s.borrow_mut() = Some(Box::new(f)));
    }

    fn run(hook: &'static std::thread::LocalKey<Hook>) {
        if let Some(f) = hook.with(|s| s.borrow_mut().take()) {
            f();
        }
    }

    pub(super) fn before_seals() {
        run(&BEFORE_SEALS);
    }

    pub(super) fn before_map() {
        run(&BEFORE_MAP);
    }
}

#[cfg(all(
    test,
    not(miri),
    not(loom),
    any(target_os = "linux", target_os = "android")
))]
mod tests {
    use super::freeze_seam;
    use super::MmapRegion;
    use rustix::fs::{FallocateFlags, Mode, OFlags};
    use std::os::fd::AsRawFd;
    use std::sync::{Arc, Mutex};

    /// A peer with a writable descriptor punches a hole between freeze's
    /// first allocation and its seals: freeze allocates the whole file
    /// again after the seals, so the file has every page allocated before
    /// it is mapped and its pages touched (a touch of a real hole would
    /// allocate, and raise `SIGBUS` where that is refused), and the
    /// punched page reads as zeros.
    /// A holder grows the file (sparse, to 1 GiB) between `freeze`'s size
    /// check and its seals: after `F_SEAL_GROW` the growth is found and
    /// refused (`FileTooLarge`, the file stays frozen, the region is lost)
    /// without allocating it; only the region's own pages are allocated.
    #[test]
    fn freeze_refuses_a_growth_between_its_check_and_its_seals_without_allocating_it() {
        let page = crate::sys::page_size();
        let region = MmapRegion::create_sealed("grown", page).unwrap();
        let fd = region.fd().unwrap();
        let peer = rustix::fs::open(
            format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let watch = peer.try_clone().unwrap();
        freeze_seam::set_before_seals(move || {
            rustix::fs::ftruncate(&peer, 1 << 30).unwrap();
        });
        let err = region.freeze().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::FileTooLarge, "{err}");
        assert!(
            err.to_string().contains(&format!(
                "the file is {} bytes, past the region's {page}",
                1u64 << 30
            )),
            "{err}"
        );
        assert!(err.into_region().is_none());
        let st = rustix::fs::fstat(&watch).unwrap();
        assert_eq!(st.st_size, 1 << 30);
        assert_eq!(
            u64::try_from(st.st_blocks).unwrap(),
            u64::try_from(page / 512).unwrap()
        );
    }

    #[test]
    fn freeze_allocates_a_hole_punched_between_its_allocation_and_its_seals() {
        let page = crate::sys::page_size();
        let len = 8 * page;
        let region = MmapRegion::create_sealed("punched", len).unwrap();
        region.region().write_at(0, &vec![0xA5; len]).unwrap();
        let fd = region.fd().unwrap();
        let peer = rustix::fs::open(
            format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let watch = peer.try_clone().unwrap();
        let blocks = |fd: &std::os::fd::OwnedFd| {
            u64::try_from(rustix::fs::fstat(fd).unwrap().st_blocks).unwrap()
        };
        let full = u64::try_from(len / 512).unwrap();
        assert_eq!(blocks(&watch), full);
        let punched = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&punched);
        freeze_seam::set_before_seals(move || {
            let off = u64::try_from(3 * page).unwrap();
            let n = u64::try_from(page).unwrap();
            rustix::fs::fallocate(
                &peer,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                off,
                n,
            )
            .unwrap();
            *seen.lock().unwrap() = Some(blocks(&peer));
        });
        let at_map = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&at_map);
        let watched = watch.try_clone().unwrap();
        freeze_seam::set_before_map(move || {
            *seen.lock().unwrap() = Some(blocks(&watched));
        });
        let frozen = region.freeze().unwrap();
        let one_page = u64::try_from(page / 512).unwrap();
        assert_eq!(*punched.lock().unwrap(), Some(full - one_page), "the hole");
        assert_eq!(
            *at_map.lock().unwrap(),
            Some(full),
            "every page allocated before the mapping"
        );
        assert_eq!(blocks(&watch), full);
        assert!(frozen[3 * page..4 * page].iter().all(|&b| b == 0));
        assert!(frozen[..3 * page].iter().all(|&b| b == 0xA5));
        assert!(frozen[4 * page..].iter().all(|&b| b == 0xA5));
    }
}
