//! [`MmapRegion`] on Windows: the owning handle over in-process memory or
//! a named, pagefile-backed section, its growth and the following of a
//! peer's growth. Its views are the portable [`Region`].

use std::fmt;
use std::os::windows::io::{AsHandle, BorrowedHandle, OwnedHandle};

use crate::error::{Error, ErrorKind, Limit, Result};
use crate::map::{self, Origin};
use crate::options::{FileCleanup, MmapOptions};
use crate::protocol::{Follow, Publisher};
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::sys::windows::security::{self, ObjectKind};
use crate::sys::{self, Errno, Mapping};
use crate::view::Region;

/// What backs a region on Windows.
enum Backing {
    /// A named section created with `SEC_RESERVE`: its length is its
    /// committed prefix, which only grows.
    Section(Arc<OwnedHandle>),
    /// Process memory shared by every handle, and the length they
    /// published.
    Memory(Arc<AtomicUsize>),
}

/// A shared memory region that one process creates and grows and others
/// attach to and follow (Windows: named sections and in-memory regions).
///
/// The same type and the same promises as on Unix where Windows can keep
/// them; see the crate documentation's platform table. On Windows:
///
/// - [`create_shm`](Self::create_shm) makes a named section in the
///   `Local\` namespace (this session's), pagefile-backed, with a
///   security descriptor that gives the creating user alone access, and
///   refuses a name that exists; [`attach_shm`](Self::attach_shm) opens
///   one and refuses a section another user owns (unless
///   [`MmapOptions::allow_other_owner`]).
/// - A named region's length is a whole number of pages: the section's
///   committed prefix, which the kernel reports to every process that
///   maps it (`VirtualQuery`), so no peer can make this process read a
///   page that is not there. `create_shm(name, 5000, ..)` makes a region
///   of 8192 bytes on x86_64 (as Python's `SharedMemory` sees it too).
/// - Growth commits pages in place in the section reserved at creation
///   ([`MmapOptions::address_space`], by default the same reservation as
///   on Unix): the base address never moves, and a growth past that
///   reservation is refused (`FileTooLarge`): a section's size is fixed
///   when it is created.
/// - A section lives while any handle or view of it does, in any process;
///   [`FileCleanup`] changes nothing there: the name goes with the last
///   handle.
/// - [`Region::wait_u32`] between processes polls (see its documentation
///   for the latency).
pub struct MmapRegion {
    backing: Backing,
    publisher: Publisher<Mapping>,
    name: Option<String>,
    writable: bool,
    options: MmapOptions,
    origin: Origin,
}

/// The longest name `create_shm` takes (the system's object names may be
/// longer; 255 keeps names portable to Unix's `NAME_MAX`).
const NAME_MAX: usize = 255;

/// `name` checked (1 to 255 characters, no backslash, no NUL), as
/// `Local\<name>`.
fn section_name(name: &str, op: &'static str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.len() > NAME_MAX || bare.contains(['\\', '/', '\0']) {
        return Err(Error::new(ErrorKind::InvalidPath, op).because(
            "a section name is 1 to 255 characters (one optional leading '/'), with no '/', '\\' or NUL",
        ));
    }
    Ok(format!("Local\\{bare}"))
}

impl MmapRegion {
    fn with(
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
            name: None,
            writable,
            options: options.clone(),
            origin,
        }
    }

    /// Creates a named region of `size` bytes (rounded up to pages) that
    /// peers attach to with [`attach_shm`](Self::attach_shm).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidPath`] for a bad name,
    /// [`ErrorKind::AlreadyExists`] if a section of that name exists
    /// (whoever made it: the existing section is closed, never used),
    /// [`ErrorKind::InvalidSize`], [`ErrorKind::FileTooLarge`] (past
    /// `max_size` or the address-space share), [`ErrorKind::StorageFull`]
    /// if the pages cannot be committed (the system's commit limit),
    /// [`ErrorKind::Unsupported`] for an option Windows cannot honour, and
    /// [`ErrorKind::Os`] for other failures.
    pub fn create_shm(name: &str, size: usize, cleanup: FileCleanup) -> Result<Self> {
        MmapOptions::new().create_shm(name, size, cleanup)
    }

    /// Attaches to the named region `name`, read and write.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] if no section has that name,
    /// [`ErrorKind::UntrustedOwner`] if another user owns it (unless
    /// [`MmapOptions::allow_other_owner`]), [`ErrorKind::EmptyFile`] if
    /// nothing of it is committed, [`ErrorKind::FileTooLarge`] if its
    /// reservation is past `max_size` or the address-space share of
    /// attached regions, and [`ErrorKind::Os`] for other failures.
    pub fn attach_shm(name: &str) -> Result<Self> {
        MmapOptions::new().attach_shm(name)
    }

    /// As [`attach_shm`](Self::attach_shm), mapped read-only.
    ///
    /// # Errors
    ///
    /// As [`attach_shm`](Self::attach_shm).
    pub fn attach_shm_read_only(name: &str) -> Result<Self> {
        MmapOptions::new().attach_shm_read_only(name)
    }

    /// A region of `size` bytes of this process's memory, which
    /// [`peer`](Self::peer) handles share; it grows in place up to the
    /// capacity fixed now (the default reservation, or
    /// [`MmapOptions::address_space`]), committing pages as it grows.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`], [`ErrorKind::FileTooLarge`] (past
    /// `max_size`), [`ErrorKind::OutOfMemory`] if the capacity cannot be
    /// reserved or the pages committed.
    pub fn in_memory(size: usize) -> Result<Self> {
        MmapOptions::new().in_memory(size)
    }

    /// Another handle on the same region, as a second process gets by
    /// attaching: its own generations, following growth only through
    /// [`check_and_remap`](Self::check_and_remap), read-only if this
    /// handle is.
    ///
    /// # Errors
    ///
    /// None today for the backings Windows has; the `Result` is the
    /// Unix signature's.
    pub fn peer(&self) -> Result<Self> {
        let map = Arc::clone(self.publisher.current().map_arc());
        let (backing, len) = match &self.backing {
            Backing::Section(section) => (Backing::Section(Arc::clone(section)), self.len()),
            Backing::Memory(published) => (
                Backing::Memory(Arc::clone(published)),
                published.load(Ordering::Acquire),
            ),
        };
        let mut peer = Self::with(backing, map, len, self.writable, &self.options, self.origin);
        peer.name.clone_from(&self.name);
        Ok(peer)
    }

    /// A view of the newest mapping. Views stay valid after this handle
    /// grows or is dropped; see [`Region`].
    #[must_use]
    pub fn region(&self) -> Region {
        Region::new(self.publisher.current().clone())
    }

    /// The length of the region as this handle last published or followed
    /// it.
    #[must_use]
    pub fn len(&self) -> usize {
        self.publisher.current().len()
    }

    /// Whether the region is empty (never, for a region that was made).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The generation of the newest mapping: 0 at creation or attach, one
    /// more at every growth published or followed.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.publisher.current().generation()
    }

    /// Whether this handle maps the region read-only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        !self.writable
    }

    /// The section's name without its `Local\` prefix, or `None` for an
    /// in-memory region.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref().and_then(|n| n.strip_prefix("Local\\"))
    }

    /// Grows the region to `new_size` bytes (rounded up to pages for a
    /// named region) in place: the pages are committed, then the length
    /// is published (generation + 1); views taken before keep theirs.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ReadOnly`] for a read-only handle,
    /// [`ErrorKind::ShrinkRefused`] if `new_size < len()`,
    /// [`ErrorKind::InvalidSize`] past `isize::MAX`,
    /// [`ErrorKind::FileTooLarge`] past `max_size` or past the section's
    /// reservation fixed at its creation, [`ErrorKind::Unsupported`] for an
    /// in-memory region past its capacity, [`ErrorKind::StorageFull`] if
    /// the pages cannot be committed. After an error the handle is
    /// unchanged.
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
        map::checked_size(&self.options, new_size, OP)?;
        let current = Arc::clone(self.publisher.current().map_arc());
        let len = match &self.backing {
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
                len
            }
            Backing::Memory(published) => {
                map::within_capacity(&current, new_size, OP)?;
                current.commit(new_size).map_err(|e| commit_error(OP, e))?;
                published.fetch_max(new_size, Ordering::Release);
                new_size
            }
        };
        self.publisher.publish(current, len);
        Ok(())
    }

    /// Follows a growth made by another handle: the section's committed
    /// prefix (`VirtualQuery`), or the length an in-memory region's
    /// handles published. If it grew, the new length is published
    /// (generation + 1, same base address) and `Ok(true)` is returned.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::FileTooLarge`] if an in-memory region's published
    /// length is past `max_size`; [`ErrorKind::Truncated`] if the length
    /// went down (which neither backing allows: kept for the shared
    /// protocol).
    pub fn check_and_remap(&mut self) -> Result<bool> {
        const OP: &str = "check_and_remap";
        let cur = self.len();
        let now = match &self.backing {
            Backing::Section(_) => self.publisher.current().map().committed(),
            Backing::Memory(published) => published.load(Ordering::Acquire),
        };
        let options = &self.options;
        let followed = self.publisher.follow(now, |map, len| {
            map::mappable(options, u64::try_from(len).unwrap_or(u64::MAX), OP)?;
            map::within_capacity(map, len, OP)
        })?;
        match followed {
            Follow::Unchanged => Ok(false),
            Follow::Grew => Ok(true),
            Follow::Truncated => Err(Error::truncated(OP, cur, u64::try_from(now).unwrap_or(0))),
        }
    }

    /// Makes sure at least `min` bytes are mapped, calling
    /// [`check_and_remap`](Self::check_and_remap) only when they are not.
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
}

/// Refuses an object another user owns (unless `allow_other_owner`) or
/// whose DACL lets others write it (unless `allow_group_or_other_write`).
fn check_trust(
    options: &MmapOptions,
    object: BorrowedHandle<'_>,
    kind: ObjectKind,
    op: &'static str,
) -> Result<()> {
    let os = |e: std::io::Error| Error::os(op, Errno::of(&e));
    if !options.trust.allow_other_owner && !security::owner_is_current_user(object, kind).map_err(os)? {
        return Err(Error::new(ErrorKind::UntrustedOwner, op).because(
            "another user owns it (MmapOptions::allow_other_owner allows that)",
        ));
    }
    if !options.trust.allow_group_or_other_write && security::others_may_write(object, kind).map_err(os)? {
        return Err(Error::new(ErrorKind::InsecureMode, op).because(
            "its DACL lets users other than its owner write it \
             (MmapOptions::allow_group_or_other_write allows that)",
        ));
    }
    Ok(())
}

/// The error of a failed commit: the system's commit limit (or memory)
/// is `StorageFull`, as a full disk is for a file.
fn commit_error(op: &'static str, e: Errno) -> Error {
    match e {
        Errno::COMMIT | Errno::NOMEM => Error::with_errno(ErrorKind::StorageFull, op, e),
        e => Error::os(op, e),
    }
}

impl fmt::Debug for MmapRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapRegion")
            .field("name", &self.name)
            .field("len", &self.len())
            .field("generation", &self.generation())
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl MmapOptions {
    /// The options Windows cannot honour, refused before anything is made.
    fn refuse_unsupported_on_windows(&self, op: &'static str) -> Result<()> {
        self.refuse_unsupported(op)?;
        let refused = [
            (self.populate, "populate: Windows commits pages as they are touched"),
            (self.lock, "lock: this crate does not lock pages on Windows"),
            (self.require_shrink_seal, "require_shrink_seal: Windows has no seals"),
            (self.require_write_seal, "require_write_seal: Windows has no seals"),
            (self.mode != 0o600, "mode: a section's security descriptor gives its creating user alone access"),
        ];
        match refused.iter().find(|(on, _)| *on) {
            Some((_, why)) => Err(Error::new(ErrorKind::Unsupported, op).because(why)),
            None => Ok(()),
        }
    }

    /// [`MmapRegion::in_memory`] with these options.
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::in_memory`].
    pub fn in_memory(&self, size: usize) -> Result<MmapRegion> {
        const OP: &str = "in_memory";
        self.refuse_unsupported_on_windows(OP)?;
        map::checked_size(self, size, OP)?;
        let capacity = self.capacity_for(size);
        let map = Mapping::in_memory(capacity).map_err(|e| Error::out_of_memory(OP, size, e))?;
        map.commit(size).map_err(|e| Error::out_of_memory(OP, size, e))?;
        let published = Arc::new(AtomicUsize::new(size));
        Ok(MmapRegion::with(
            Backing::Memory(published),
            Arc::new(map),
            size,
            true,
            self,
            Origin::Created,
        ))
    }

    /// [`MmapRegion::create_shm`] with these options.
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::create_shm`].
    pub fn create_shm(&self, name: &str, size: usize, _cleanup: FileCleanup) -> Result<MmapRegion> {
        const OP: &str = "create_shm";
        self.refuse_unsupported_on_windows(OP)?;
        let full = section_name(name, OP)?;
        map::checked_size(self, size, OP)?;
        let len = sys::round_up_to_page(size).ok_or_else(|| Error::invalid_size(OP, size))?;
        let reserve = sys::round_up_to_page(self.reservation_for(len)).unwrap_or(len);
        let share = match self.max_size {
            Some(_) => None,
            None => Some(map::take_unbounded(Origin::Created, reserve, OP)?),
        };
        let reserve64 = u64::try_from(reserve).map_err(|_| Error::invalid_size(OP, size))?;
        let section = sys::windows::section::create_section(None, reserve64, true, Some(&full), true).map_err(|e| {
            match Errno::of(&e) {
                Errno::ALREADY_EXISTS => {
                    Error::with_errno(ErrorKind::AlreadyExists, OP, Errno::ALREADY_EXISTS)
                }
                e => Error::os(OP, e),
            }
        })?;
        let mut map = Mapping::of_section(section.as_handle(), true).map_err(|e| Error::os(OP, e))?;
        map.commit(len).map_err(|e| commit_error(OP, e))?;
        map.hold(Box::new(share));
        let mut region = MmapRegion::with(
            Backing::Section(Arc::new(section)),
            Arc::new(map),
            len,
            true,
            self,
            Origin::Created,
        );
        region.name = Some(full);
        Ok(region)
    }

    /// [`MmapRegion::attach_shm`] with these options.
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach_shm`].
    pub fn attach_shm(&self, name: &str) -> Result<MmapRegion> {
        self.attach_section(name, true, "attach_shm")
    }

    /// [`MmapRegion::attach_shm_read_only`] with these options.
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach_shm`].
    pub fn attach_shm_read_only(&self, name: &str) -> Result<MmapRegion> {
        self.attach_section(name, false, "attach_shm_read_only")
    }

    fn attach_section(&self, name: &str, writable: bool, op: &'static str) -> Result<MmapRegion> {
        self.refuse_unsupported_on_windows(op)?;
        let full = section_name(name, op)?;
        let section = sys::windows::section::open_section(&full, writable).map_err(|e| {
            match Errno::of(&e) {
                Errno::NOENT => Error::with_errno(ErrorKind::NotFound, op, Errno::NOENT),
                e => Error::os(op, e),
            }
        })?;
        check_trust(self, section.as_handle(), ObjectKind::Section, op)?;
        let mut map = Mapping::of_section(section.as_handle(), writable).map_err(|e| Error::os(op, e))?;
        let view = map.mapped_len();
        if let Some(max) = self.max_size {
            if view > sys::round_up_to_page(max).unwrap_or(usize::MAX) {
                return Err(Error::too_large(op, view, Limit::MaxSize(max)));
            }
        } else {
            map::within_quarter(view, u64::try_from(view).unwrap_or(u64::MAX), op)?;
            let share = map::take_unbounded(Origin::Named, view, op)?;
            map.hold(Box::new(share));
        }
        let len = map.committed();
        if len == 0 {
            return Err(Error::new(ErrorKind::EmptyFile, op));
        }
        let mut region = MmapRegion::with(
            Backing::Section(Arc::new(section)),
            Arc::new(map),
            len,
            writable,
            self,
            Origin::Named,
        );
        region.name = Some(full);
        Ok(region)
    }
}
