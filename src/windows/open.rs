//! The constructors of [`MmapRegion`] on Windows: files by path, named
//! sections and in-memory regions, each through [`MmapOptions`], which
//! refuses first what Windows cannot honour.

use std::os::windows::io::AsHandle;
use std::path::{Path, PathBuf};

use super::region::{commit_error, Backing, MmapRegion};
use crate::error::{Error, ErrorKind, Limit, Result};
use crate::fs;
use crate::map::{self, FileArc, Origin};
use crate::options::{FileCleanup, MmapOptions};
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::sys::windows::{section, security::ObjectKind};
use crate::sys::{self, Errno, Mapping, OwnedFile};

/// The longest section name `create_shm` takes, in bytes (Unix's `NAME_MAX`, so
/// that a name works on every platform).
const NAME_MAX: usize = 255;

/// `name` checked (one optional leading `/`, then 1 to 255 bytes
/// with no `/`, `\` or NUL), as `Local\<name>`.
fn section_name(name: &str, op: &'static str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.len() > NAME_MAX || bare.contains(['\\', '/', '\0']) {
        return Err(Error::new(ErrorKind::InvalidPath, op).because(
            "a section name is 1 to 255 bytes after one optional leading '/', \
             with no '/', '\\' or NUL",
        ));
    }
    Ok(format!("Local\\{bare}"))
}

impl MmapRegion {
    /// Creates the file at `path` (exclusively, never through a reparse
    /// point at the name, owner-only), sizes it to `size` bytes with its
    /// blocks reserved, and maps it read and write.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyExists`] if anything exists at `path`,
    /// [`ErrorKind::NotFound`] if its folder does not,
    /// [`ErrorKind::InvalidSize`] for 0 or past `isize::MAX`,
    /// [`ErrorKind::StorageFull`] if the blocks cannot be reserved, and
    /// [`ErrorKind::Os`] for other failures. Nothing is left at `path`
    /// after an error.
    pub fn create(path: impl AsRef<Path>, size: usize, cleanup: FileCleanup) -> Result<Self> {
        MmapOptions::new().create(path, size, cleanup)
    }

    /// Opens the file at `path` read and write after checking it (see the
    /// type's documentation) and maps it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`], [`ErrorKind::NotRegularFile`] (a
    /// directory, a reparse point, a device or a pipe),
    /// [`ErrorKind::EmptyFile`], [`ErrorKind::HardLinked`],
    /// [`ErrorKind::UntrustedOwner`], [`ErrorKind::InsecureMode`] (its
    /// DACL lets others write it), [`ErrorKind::FileTooLarge`], and
    /// [`ErrorKind::Os`] for other failures.
    pub fn attach(path: impl AsRef<Path>) -> Result<Self> {
        MmapOptions::new().attach(path)
    }

    /// As [`attach`](Self::attach), opened and mapped read-only.
    ///
    /// # Errors
    ///
    /// As [`attach`](Self::attach).
    pub fn attach_read_only(path: impl AsRef<Path>) -> Result<Self> {
        MmapOptions::new().attach_read_only(path)
    }

    /// Creates a named region of `size` bytes (rounded up to pages) that
    /// peers attach to with [`attach_shm`](Self::attach_shm).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidPath`] for a bad name,
    /// [`ErrorKind::AlreadyExists`] if an object of that name exists
    /// (whoever made it: it is closed, never used),
    /// [`ErrorKind::InvalidSize`], [`ErrorKind::FileTooLarge`] (past
    /// `max_size` or the address-space share), [`ErrorKind::StorageFull`]
    /// if the pages cannot be committed, [`ErrorKind::Unsupported`] for an
    /// option Windows cannot honour, and [`ErrorKind::Os`] otherwise.
    pub fn create_shm(name: &str, size: usize, cleanup: FileCleanup) -> Result<Self> {
        MmapOptions::new().create_shm(name, size, cleanup)
    }

    /// Attaches to the named region `name`, read and write.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] if no section has that name,
    /// [`ErrorKind::UntrustedOwner`] if another user owns it,
    /// [`ErrorKind::InsecureMode`] if its DACL lets others write it (each
    /// unless an option allows it), [`ErrorKind::EmptyFile`] if nothing
    /// of it is committed, [`ErrorKind::FileTooLarge`] if its reservation
    /// is past `max_size` or the address-space share of attached regions,
    /// and [`ErrorKind::Os`] for other failures.
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
    /// capacity fixed now, committing pages as it grows.
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
    /// attaching: its own generations (starting at 0 with the length
    /// published now), following growth only through
    /// [`check_and_remap`](Self::check_and_remap), never owning the file,
    /// read-only if this handle is. A file is mapped anew through a
    /// duplicate of this handle's handle.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`] if the file handle cannot be duplicated or
    /// mapped; the file's errors as for [`attach`](Self::attach).
    pub fn peer(&self) -> Result<Self> {
        const OP: &str = "peer";
        let map = Arc::clone(self.publisher.current().map_arc());
        let (backing, map, len) = match &self.backing {
            Backing::File(file) => {
                let dup = file.try_clone().map_err(|e| Error::os(OP, Errno::of(&e)))?;
                let file: FileArc = std::sync::Arc::new(dup);
                let size = fs::validate_own(&self.options, file.as_handle(), OP)?;
                let len = map::file_mappable(&self.options, size, OP)?;
                let map = map::map_len(
                    &self.options,
                    self.origin,
                    &file,
                    None,
                    len,
                    self.writable,
                    OP,
                )?;
                (Backing::File(file), map, len)
            }
            Backing::Section(s) => (Backing::Section(Arc::clone(s)), map, self.len()),
            Backing::Memory(published) => {
                let len = published.load(Ordering::Acquire);
                (Backing::Memory(Arc::clone(published)), map, len)
            }
        };
        let mut peer = Self::with(backing, map, len, self.writable, &self.options, self.origin);
        peer.name.clone_from(&self.name);
        peer.path.clone_from(&self.path);
        Ok(peer)
    }
}

impl MmapOptions {
    /// For a file: `address_space` too, which Windows cannot honour there
    /// (a section of a file cannot be longer than the file; it grows into a
    /// new mapping), refused before anything is made.
    fn refuse_unsupported_for_files(&self, op: &'static str) -> Result<()> {
        self.refuse_unsupported_on_windows(op)?;
        if self.address_space.is_some() {
            return Err(Error::new(ErrorKind::Unsupported, op).because(
                "MmapOptions::address_space: on Windows a file cannot be mapped past its \
                 length (it grows into a new mapping); it applies to create_shm and in_memory",
            ));
        }
        Ok(())
    }

    /// The options Windows cannot honour, refused before anything is made.
    fn refuse_unsupported_on_windows(&self, op: &'static str) -> Result<()> {
        self.refuse_unsupported(op)?;
        let refused = [
            (
                self.populate,
                "MmapOptions::populate is not offered on Windows",
            ),
            (self.lock, "MmapOptions::lock is not offered on Windows"),
            (
                self.require_shrink_seal,
                "MmapOptions::require_shrink_seal: Windows has no seals",
            ),
            (
                self.require_write_seal,
                "MmapOptions::require_write_seal: Windows has no seals",
            ),
            (
                self.mode != 0o600,
                "MmapOptions::mode: on Windows the creating user alone has access",
            ),
        ];
        match refused.iter().find(|(on, _)| *on) {
            Some((_, why)) => Err(Error::new(ErrorKind::Unsupported, op).because(why)),
            None => Ok(()),
        }
    }

    /// [`MmapRegion::create`] with these options.
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::create`], and [`ErrorKind::Unsupported`] for an
    /// option Windows cannot honour.
    pub fn create(
        &self,
        path: impl AsRef<Path>,
        size: usize,
        cleanup: FileCleanup,
    ) -> Result<MmapRegion> {
        const OP: &str = "create";
        let path = path.as_ref();
        self.refuse_unsupported_for_files(OP)?;
        let to = map::checked_size(self, size, OP)?;
        let file: FileArc = std::sync::Arc::new(OwnedFile::deletable(fs::create_new(path, OP)?));
        // From here on a failure removes the file again (through its
        // handle: only the file just made).
        let made = (|| {
            let h = file.as_handle();
            if self.reserve_blocks {
                fs::reserve(h, to, OP)?;
            }
            fs::set_len(h, to, OP)?;
            if cleanup == FileCleanup::Auto {
                // Before the mapping: Windows refuses to delete a mapped
                // file. The name goes now for every new open; the file
                // itself goes with its last handle and view.
                fs::remove(h).map_err(|e| Error::os(OP, Errno::of(&e)))?;
            }
            map::map_len(self, Origin::Created, &file, None, size, true, OP)
        })();
        let map = match made {
            Ok(map) => map,
            Err(e) => {
                let _ = fs::remove(file.as_handle());
                return Err(e.with_path(path));
            }
        };
        let mut region =
            MmapRegion::with(Backing::File(file), map, size, true, self, Origin::Created);
        region.path = path.to_path_buf();
        region.owner = cleanup == FileCleanup::Manual;
        Ok(region)
    }

    /// [`MmapRegion::attach`] with these options.
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach`].
    pub fn attach(&self, path: impl AsRef<Path>) -> Result<MmapRegion> {
        self.attach_path(path.as_ref(), true, "attach")
    }

    /// [`MmapRegion::attach_read_only`] with these options.
    ///
    /// # Errors
    ///
    /// As [`MmapRegion::attach`].
    pub fn attach_read_only(&self, path: impl AsRef<Path>) -> Result<MmapRegion> {
        self.attach_path(path.as_ref(), false, "attach_read_only")
    }

    fn attach_path(&self, path: &Path, writable: bool, op: &'static str) -> Result<MmapRegion> {
        self.refuse_unsupported_for_files(op)?;
        let file = fs::open_existing(path, writable, op)?;
        let size = fs::validate(self, file.as_handle(), op).map_err(|e| e.with_path(path))?;
        let len = map::file_mappable(self, size, op).map_err(|e| e.with_path(path))?;
        let file: FileArc = std::sync::Arc::new(OwnedFile::new(file));
        let map = map::map_len(self, Origin::Named, &file, None, len, writable, op)
            .map_err(|e| e.with_path(path))?;
        let mut region =
            MmapRegion::with(Backing::File(file), map, len, writable, self, Origin::Named);
        region.path = PathBuf::from(path);
        Ok(region)
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
        map.commit(size)
            .map_err(|e| Error::out_of_memory(OP, size, e))?;
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
    pub fn create_shm(&self, name: &str, size: usize, cleanup: FileCleanup) -> Result<MmapRegion> {
        const OP: &str = "create_shm";
        // A section lives while a handle or view does, whatever the cleanup.
        let _ = cleanup;
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
        let made = section::create_section(None, reserve64, true, Some(&full), true);
        let section = made.map_err(|e| match Errno::of(&e) {
            e @ (Errno::ALREADY_EXISTS | Errno::EXIST) => {
                Error::with_errno(ErrorKind::AlreadyExists, OP, e)
            }
            // An object of another type (6) or a section whose DACL
            // refuses us (5) holds the name.
            e @ (Errno::BADF | Errno::ACCESS) => Error::with_errno(ErrorKind::AlreadyExists, OP, e)
                .because(
                    "an object of that name exists (another type, or one that refuses this user)",
                ),
            e => Error::os(OP, e),
        })?;
        let mut map =
            Mapping::of_section(section.as_handle(), true).map_err(|e| Error::os(OP, e))?;
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
        let section = section::open_section(&full, writable).map_err(|e| match Errno::of(&e) {
            Errno::NOENT => Error::with_errno(ErrorKind::NotFound, op, Errno::NOENT),
            // An object of another type holds the name: no section has it.
            Errno::BADF => Error::with_errno(ErrorKind::NotFound, op, Errno::BADF)
                .because("the name holds an object that is not a section"),
            e => Error::os(op, e),
        })?;
        fs::check_trust(self, section.as_handle(), ObjectKind::Section, op)?;
        let mut map =
            Mapping::of_section(section.as_handle(), writable).map_err(|e| Error::os(op, e))?;
        if map.backed_by_file() {
            return Err(Error::new(ErrorKind::Unsupported, op).because(
                "the named section is backed by a file: a view of a file can raise \
                 EXCEPTION_IN_PAGE_ERROR when its storage fails, which nothing contains on \
                 Windows; a named region must be pagefile-backed",
            ));
        }
        // The view is as long as the section its creator reserved: a
        // length a peer chose, bounded like a file's size.
        let view = map.mapped_len();
        match self.max_size {
            Some(max) if view > sys::round_up_to_page(max).unwrap_or(usize::MAX) => {
                return Err(Error::too_large(op, view, Limit::MaxSize(max)));
            }
            Some(_) => {}
            None => {
                map::within_quarter(view, u64::try_from(view).unwrap_or(u64::MAX), op)?;
                let share = map::take_unbounded(Origin::Named, view, op)?;
                map.hold(Box::new(share));
            }
        }
        let len = map.committed();
        if len == 0 {
            return Err(Error::new(ErrorKind::EmptyFile, op));
        }
        if let Some(max) = self.max_size.filter(|&max| len > max) {
            return Err(Error::too_large(op, len, Limit::MaxSize(max)));
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
