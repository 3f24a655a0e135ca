//! `Frozen`: the bytes of a memfd that no one can change any more, as a
//! plain `&[u8]`; and `FreezeError`, what `MmapRegion::freeze` returns when
//! it cannot freeze (with the region, to keep using).
//!
//! This is the only `&[u8]` the crate hands out over mapped memory: every
//! other access is a checked copy, because a peer may write the bytes at any
//! time. Here the kernel refuses every write to the file, by every holder
//! (`F_SEAL_WRITE`, `F_SEAL_GROW`, `F_SEAL_SHRINK`); the argument is
//! invariant 8 of the `sys` module.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::error::{Error, ErrorKind, Result, FROZEN_ATTACH};
use crate::fs;
use crate::map::{self, Origin, UnboundedShare};
use crate::region::MmapRegion;
use crate::sys::{FrozenMapping, FrozenRefusal, FROZEN_SEALS};

/// The bytes of a sealed memfd, readable as a `&[u8]` (Linux).
///
/// Made by [`MmapRegion::freeze`] or, from a descriptor someone else froze,
/// by [`Frozen::attach_fd`]. The file carries `F_SEAL_WRITE`,
/// `F_SEAL_GROW` and `F_SEAL_SHRINK`, so the kernel refuses every write and
/// every size change to it, through any descriptor in any process, and no
/// writable mapping of it exists; it is mapped here read-only from a
/// descriptor open `O_RDONLY`. That is why a plain `&[u8]` over it is sound
/// (see `SECURITY.md` for what lies outside: a process allowed to `ptrace`
/// this one).
///
/// Cloning is cheap (a reference count). Every `Frozen` of one file, its
/// clones and those [`Frozen::attach_fd`] makes each time the file is
/// received again, shares one mapping, released when the last of them is
/// dropped. `Frozen` is `Send` and `Sync`.
///
/// ```
/// # #[cfg(miri)] fn main() {} // Miri cannot map files.
/// # #[cfg(not(miri))]
/// # fn main() -> Result<(), shm_region::Error> {
/// use shm_region::{Frozen, MmapRegion};
/// let region = MmapRegion::create_sealed("table", 4096)?;
/// region.region().write_at(0, b"lookup table")?;
/// let frozen: Frozen = region.freeze().map_err(|e| e.into_error())?;
/// assert_eq!(&frozen[..12], b"lookup table");
/// let sum: u64 = frozen.iter().map(|&b| u64::from(b)).sum();   // no copy
/// assert!(sum > 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Frozen {
    inner: Arc<Inner>,
}

struct Inner {
    map: FrozenMapping,
    /// Open read-only; the mapping was made from it.
    fd: OwnedFd,
    /// The file's device, inode number, birth time and size: its key in
    /// [`MAPPED`].
    key: Key,
    /// The mapping's part of its origin's share of the address space
    /// (`None` for a region frozen with an explicit `max_size`), given back
    /// after the mapping is unmapped (fields drop in order).
    _share: Option<UnboundedShare>,
}

/// A file's device, inode number, birth time (`statx`, `None` where the
/// file system gives none) and size (final under the seals).
type Key = (rustix::fs::Dev, u64, Option<(i64, u32)>, u64);

/// The live `Frozen` mapping of each file, by [`Key`]: every [`Frozen`] of
/// one file, however many times its descriptor is received, shares one
/// mapping, so a resend costs no address space. The mapping keeps the file
/// open (`Inner::fd`), so its inode is not freed while the entry lives,
/// but device and inode number alone do not name one file: a tmpfs mounted
/// without `inode64` (`/dev/shm` by default) numbers inodes with a 32-bit
/// counter that wraps and is given out again while the inode that had the
/// number lives, so a peer creating files there 2^32 times could make one
/// with the number of a live `Frozen`'s file. The birth time (nanoseconds,
/// which no one can set) and the size tell them apart. An entry whose
/// `Frozen` handles are all gone no longer upgrades, and is removed when
/// its mapping is dropped.
static MAPPED: Mutex<Option<HashMap<Key, Weak<Inner>>>> = Mutex::new(None);

/// The key of the file open at `fd`, which `info` describes.
fn key_of(fd: BorrowedFd<'_>, info: &fs::FileInfo) -> Key {
    use rustix::fs::{AtFlags, StatxFlags};
    let birth = rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::BTIME)
        .ok()
        .filter(|st| StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::BTIME))
        .map(|st| (st.stx_btime.tv_sec, st.stx_btime.tv_nsec));
    #[cfg(all(test, not(miri), not(loom)))]
    let ino = tests::INO.with(std::cell::Cell::take).unwrap_or(info.ino);
    #[cfg(not(all(test, not(miri), not(loom))))]
    let ino = info.ino;
    (info.dev, ino, birth, info.size)
}

/// The live mapping of the file `key` names, if any. Never drops a
/// strong reference under the lock (`Inner`'s drop takes it).
fn live(key: Key) -> Option<Arc<Inner>> {
    let table = MAPPED.lock().unwrap_or_else(PoisonError::into_inner);
    table.as_ref()?.get(&key).and_then(Weak::upgrade)
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut table = MAPPED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(table) = table.as_mut() {
            // Only this mapping's own entry: one made anew for the same file
            // since the last handle of this one went is left alone.
            if table
                .get(&self.key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
            {
                table.remove(&self.key);
            }
        }
    }
}

/// What [`Frozen::attach_fd`] requires.
const ATTACH_REQUIRES: &str =
    "Frozen::attach_fd requires F_SEAL_WRITE, F_SEAL_GROW and F_SEAL_SHRINK";

impl Frozen {
    /// Maps a memfd that someone else froze, after checking that it carries
    /// `F_SEAL_WRITE`, `F_SEAL_GROW` and `F_SEAL_SHRINK`. The file must be a
    /// regular, non-empty file of mappable size, not on hugetlbfs, as
    /// [`MmapRegion::attach_fd`] requires, and have no hole (a page
    /// `lseek(SEEK_HOLE)` reports, including one allocated by `fallocate`
    /// but never written or faulted in): reading a hole would allocate
    /// memory, charged to this process, and raise `SIGBUS` if that were
    /// refused. So a `Frozen` maps only pages that already exist, paid for
    /// by whoever wrote them (a 32 TiB sparse file is refused). Its owner,
    /// mode and links are not checked, since with those seals no one can
    /// change its bytes. A descriptor open for writing is reopened
    /// read-only through `/proc/thread-self/fd` (and checked to be the same
    /// file), and the original is closed.
    ///
    /// Its sender pays for the pages once, but could send the descriptor
    /// any number of times, so address space is bounded here as for
    /// [`MmapRegion::attach_fd`] without `max_size` (`Frozen` takes none):
    /// every `Frozen` of one file (same device, inode number, birth time
    /// and size) shares one mapping, so a file received again while a
    /// `Frozen` of it lives costs no address space (every check above still runs, and the
    /// `Frozen` returned keeps the descriptor of the first: [`fd`](Self::fd)
    /// is of the same file); and a file mapped anew must fit a quarter of
    /// the address space left and the share of files received by
    /// descriptor (an eighth of the address space, together with the
    /// regions attached by descriptor without `max_size`), given back when
    /// its last `Frozen` is dropped.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::NotSealed`] if any of the three seals is missing (the
    ///   message names the missing ones), including for files that cannot
    ///   carry seals;
    /// - [`ErrorKind::Unsupported`] for a file with a hole (the message
    ///   gives its offset and the size);
    /// - [`ErrorKind::NotRegularFile`], [`ErrorKind::EmptyFile`],
    ///   [`ErrorKind::FileTooLarge`] as for `attach_fd` (past a quarter of
    ///   the address space left or the share of files received by
    ///   descriptor: the message says which);
    /// - [`ErrorKind::Unsupported`] for a file on hugetlbfs, when built with
    ///   `--cfg loom`, or when a writable descriptor must be reopened and
    ///   `/proc/thread-self/fd` is not procfs;
    /// - [`ErrorKind::Os`] for other failures of the system calls.
    pub fn attach_fd(fd: OwnedFd) -> Result<Self> {
        const OP: &str = FROZEN_ATTACH;
        crate::open::refuse_files_under_loom(OP)?;
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::os(OP, e))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(Error::not_regular(OP, st.st_mode));
        }
        fs::refuse_hugetlbfs(fd.as_fd(), OP)?;
        let seals = fs::seals(fd.as_fd()).unwrap_or(0);
        let missing = FROZEN_SEALS.bits() & !seals;
        if missing != 0 {
            return Err(Error::missing_seals(OP, missing, ATTACH_REQUIRES));
        }
        let fd = if fs::is_open_read_only(fd.as_fd()) {
            fd
        } else {
            fs::reopen_read_only(fd.as_fd(), OP)?
        };
        Self::map_with(fd, OP, false, Some(Origin::Received))
    }

    /// Maps `fd` (open read-only, the file sealed and allocated whole by
    /// `freeze` after the seals) read-only, faulting in the pages
    /// `SEEK_HOLE` reports. `share`: the origin whose share of the address
    /// space the mapping takes, `None` for a region with an explicit
    /// `max_size`.
    pub(crate) fn map_filled(fd: OwnedFd, op: &'static str, share: Option<Origin>) -> Result<Self> {
        Self::map_with(fd, op, true, share)
    }

    /// The one mapping of the file open at `fd` (read-only, carrying
    /// `FROZEN_SEALS`): the live one if a `Frozen` of the file exists,
    /// otherwise a new one, within the quarter rule and the share of
    /// `share` (if any).
    fn map_with(
        fd: OwnedFd,
        op: &'static str,
        fault_in: bool,
        share: Option<Origin>,
    ) -> Result<Self> {
        let info = fs::identity(fd.as_fd(), op)?;
        let key = key_of(fd.as_fd(), &info);
        if let Some(inner) = live(key) {
            // The same file, mapped whole: the checks (seals, type,
            // hugetlbfs, access mode) ran on this descriptor too, and the
            // seals make its size and bytes final, so the hole check the
            // mapping passed holds for it. It is closed here.
            return Self::shared(inner, &fd, op);
        }
        // A hole is refused before address space is looked at: the share
        // is for files whose pages exist (`FrozenMapping::new` checks again,
        // and refuses an empty file, where `SEEK_HOLE` fails).
        if !fault_in && info.size > 0 {
            if let Some(offset) =
                crate::sys::first_hole(fd.as_fd(), info.size).map_err(|e| Error::os(op, e))?
            {
                return Err(Error::holes(op, offset, info.size));
            }
        }
        // The caller checked the seals (`F_SEAL_GROW | F_SEAL_SHRINK`), so
        // this size is the one the mapping below will have.
        let share = match share {
            Some(origin) => {
                let len = map::mappable(&crate::MmapOptions::new(), info.size, op)?;
                map::within_quarter(len, info.size, op)?;
                Some(map::take_unbounded(origin, len, op)?)
            }
            None => None,
        };
        let map = FrozenMapping::new(fd.as_fd(), fault_in).map_err(|e| match e {
            FrozenRefusal::Hole { offset, size } => Error::holes(op, offset, size),
            FrozenRefusal::Os(e @ rustix::io::Errno::INVAL) => {
                Error::with_errno(ErrorKind::EmptyFile, op, e)
            }
            FrozenRefusal::Os(e @ rustix::io::Errno::FBIG) => {
                Error::with_errno(ErrorKind::FileTooLarge, op, e)
            }
            FrozenRefusal::Os(e @ rustix::io::Errno::NOMEM) => {
                Error::with_errno(ErrorKind::FileTooLarge, op, e)
                    .because("no address space or mapping slots left to map the file")
            }
            FrozenRefusal::Os(e) => Error::os(op, e),
        })?;
        let inner = Arc::new(Inner {
            map,
            fd,
            key,
            _share: share,
        });
        // Another thread may have mapped the file meanwhile: keep one. The
        // loser is dropped after the lock is released (its drop takes it).
        #[cfg(all(test, not(miri), not(loom)))]
        if let Some(seam) = tests::BEFORE_INSERT.with(|s| s.borrow_mut().take()) {
            seam();
        }
        let winner = {
            let mut table = MAPPED.lock().unwrap_or_else(PoisonError::into_inner);
            let table = table.get_or_insert_with(HashMap::new);
            match table.get(&key).and_then(Weak::upgrade) {
                Some(other) => other,
                None => {
                    table.insert(key, Arc::downgrade(&inner));
                    Arc::clone(&inner)
                }
            }
        };
        Ok(Self { inner: winner })
    }

    /// A `Frozen` on the live mapping `inner` of the file `fd` is open at;
    /// `fd` is closed. The hole check is made again (the seals make its
    /// answer final, so it is the one the mapping passed).
    fn shared(inner: Arc<Inner>, fd: &OwnedFd, op: &'static str) -> Result<Self> {
        let size = u64::try_from(inner.map.as_slice().len()).unwrap_or(u64::MAX);
        match crate::sys::first_hole(fd.as_fd(), size) {
            Ok(None) => Ok(Self { inner }),
            Ok(Some(offset)) => Err(Error::holes(op, offset, size)),
            Err(e) => Err(Error::os(op, e)),
        }
    }

    /// The number of bytes: the file's size, fixed by its seals.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.map.as_slice().len()
    }

    /// Whether there are no bytes (never true: an empty file is refused).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file's descriptor, open read-only (`O_RDONLY`). Pass it on with
    /// [`fdpass::send`](crate::fdpass::send); a receiver maps it with
    /// [`Frozen::attach_fd`] (after
    /// [`try_clone_to_owned`](BorrowedFd::try_clone_to_owned)).
    #[must_use]
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inner.fd.as_fd()
    }
}

impl Deref for Frozen {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.inner.map.as_slice()
    }
}

impl AsRef<[u8]> for Frozen {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Frozen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frozen")
            .field("fd", &self.fd())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Why [`MmapRegion::freeze`] failed, and the region back.
///
/// [`into_region`](Self::into_region) gives the region back, mapped
/// again and usable (read-only in the cases it lists); [`kind`](Self::kind) and
/// [`error`](Self::error) say what went wrong. It converts into
/// [`std::io::Error`] (dropping the region) like [`Error`].
pub struct FreezeError {
    error: Error,
    // Boxed: `MmapRegion` is large, and `Result`s carrying this should not be.
    region: Option<Box<MmapRegion>>,
}

impl FreezeError {
    pub(crate) fn new(error: Error, region: Option<MmapRegion>) -> Self {
        Self {
            error,
            region: region.map(Box::new),
        }
    }

    /// What went wrong: [`ErrorKind::Busy`] (a writable mapping of the file
    /// exists), [`ErrorKind::Unsupported`] (not a memfd), and the others
    /// [`MmapRegion::freeze`] lists.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }

    /// The error, with its message.
    #[must_use]
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error, dropping the region.
    #[must_use]
    pub fn into_error(self) -> Error {
        self.error
    }

    /// The region the failed freeze was given, usable again: writable as
    /// before, except after the kernel refused the seal for a file that now
    /// refuses new writable mappings (`F_SEAL_FUTURE_WRITE` or
    /// `F_SEAL_WRITE`), when it comes back mapped read-only (its writes
    /// fail with [`ErrorKind::ReadOnly`]; freezing it again works once no
    /// other writable mapping is left); see [`MmapRegion::freeze`].
    /// `None` only when it could not be mapped again after the kernel
    /// refused the seal (`mmap` failed, writable and read-only: no address
    /// space left), or when the seals were added but the rest could not be
    /// done (allocating a hole a peer punched before the seals, a file a
    /// holder grew in between, or mapping the file read-only; the file
    /// stays frozen then).
    #[must_use]
    pub fn into_region(self) -> Option<MmapRegion> {
        self.region.map(|region| *region)
    }
}

impl fmt::Debug for FreezeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreezeError")
            .field("error", &self.error)
            .field("region", &self.region)
            .finish()
    }
}

impl fmt::Display for FreezeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for FreezeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<FreezeError> for std::io::Error {
    fn from(e: FreezeError) -> Self {
        e.error.into()
    }
}

#[cfg(all(test, not(miri), not(loom)))]
mod tests {
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use rustix::fs::{MemfdFlags, SealFlags};

    use super::Frozen;

    std::thread_local! {
        /// The inode number the next key on this thread takes instead of
        /// the file's: a test seam standing for tmpfs's wrapped counter.
        pub(super) static INO: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
        /// Run once by the next mapping made on this thread, after it is
        /// made and before it is entered in the table: a test seam
        /// standing for another thread mapping the same file meanwhile.
        pub(super) static BEFORE_INSERT: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
            const { std::cell::RefCell::new(None) };
    }

    /// A sealed memfd of 4096 bytes of `byte`.
    fn sealed(byte: u8) -> OwnedFd {
        let fd = rustix::fs::memfd_create("dedup", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .unwrap();
        assert_eq!(rustix::io::pwrite(&fd, &[byte; 4096], 0).unwrap(), 4096);
        rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK)
            .unwrap();
        fd
    }

    /// Two files of one size on one device given the same inode number
    /// (as a 32-bit tmpfs counter does once it wraps) are two files: the
    /// second gets its own mapping and its own bytes, never the first's.
    #[test]
    fn a_file_with_the_inode_number_of_a_live_frozen_file_is_mapped_on_its_own() {
        let first = Frozen::attach_fd(sealed(0xAA)).unwrap();
        let ino = rustix::fs::fstat(first.fd()).unwrap().st_ino;
        // Another birth time: the kernel's file times tick per jiffy.
        std::thread::sleep(Duration::from_millis(20));
        let other = sealed(0x55);
        INO.with(|i| i.set(Some(ino)));
        let second = Frozen::attach_fd(other).unwrap();
        INO.with(|i| i.set(None));
        assert!(second.iter().all(|&b| b == 0x55), "the second file's bytes");
        assert!(first.iter().all(|&b| b == 0xAA));
        assert_ne!(first.as_ptr(), second.as_ptr());
    }

    /// A mapping made while another thread mapped the same file and
    /// entered it first is dropped in favour of that one, and its drop
    /// leaves the winner's entry in the table: a later receipt of the file
    /// shares the winner's mapping instead of mapping it again.
    #[test]
    fn a_mapping_that_lost_the_race_for_the_table_leaves_the_winners_entry() {
        use std::cell::RefCell;
        use std::rc::Rc;
        let fd = sealed(0x5C);
        let again = rustix::io::dup(&fd).unwrap();
        let later = rustix::io::dup(&fd).unwrap();
        let won: Rc<RefCell<Option<Frozen>>> = Rc::default();
        let slot = Rc::clone(&won);
        BEFORE_INSERT.with(|s| {
            *s.borrow_mut() = Some(Box::new(move || {
                *slot.borrow_mut() = Some(Frozen::attach_fd(again).unwrap());
            }));
        });
        let lost = Frozen::attach_fd(fd).unwrap();
        let winner = won.borrow_mut().take().expect("the seam ran");
        assert_eq!(
            lost.as_ptr(),
            winner.as_ptr(),
            "the loser took the winner's mapping"
        );
        let third = Frozen::attach_fd(later).unwrap();
        assert_eq!(
            third.as_ptr(),
            winner.as_ptr(),
            "mapped again after the loser's drop"
        );
        assert!(third.iter().all(|&b| b == 0x5C));
    }
}
