//! File operations: exclusive creation, validated opening, growth with
//! reserved blocks, and removal that only ever removes our own file.
//!
//! Everything here is safe code over `rustix`; mapping and memory access are in
//! `sys`. Paths are split once into a parent directory, opened and kept, and a
//! final component that is opened `O_NOFOLLOW` relative to it.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, ErrorKind, Limit, Result};
use crate::options::TrustPolicy;

/// The directory a region's file lives in, and its name there.
#[derive(Debug)]
pub(crate) struct Location {
    pub(crate) dir: OwnedFd,
    pub(crate) name: OsString,
}

/// Identity and size of a validated file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileInfo {
    pub(crate) dev: rustix::fs::Dev,
    pub(crate) ino: u64,
    pub(crate) size: u64,
}

/// Retries `f` while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => {}
            other => return other,
        }
    }
}

/// Opens the parent directory of `path` and returns it with the final
/// component. Symbolic links in the directory part are followed (they are
/// the caller's choice of path); the final component never is.
pub(crate) fn locate(path: &Path, op: &'static str) -> Result<Location> {
    // `Path::file_name` skips a final `.` ("seg/." names "seg"), so look at
    // the last component as written: `.` and `..` name directories.
    let bytes = path.as_os_str().as_encoded_bytes();
    let last = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
    if last == b"." || last == b".." {
        return Err(Error::new(ErrorKind::InvalidPath, op));
    }
    let name = path
        .file_name()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::new(ErrorKind::InvalidPath, op))?;
    // `file_name` ignores a trailing `/.`-free slash ("a/b/" names "b"), but
    // a path ending in a slash means "a directory": refuse it.
    if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(Error::new(ErrorKind::InvalidPath, op));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => Error::missing_parent(op, e),
        e => Error::os(op, e),
    })?;
    Ok(Location {
        dir,
        name: name.to_owned(),
    })
}

/// Creates `loc.name` exclusively: `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`,
/// with `mode` applied by the kernel at creation (the umask can only remove
/// bits from it).
pub(crate) fn create_exclusive(dir: BorrowedFd<'_>, name: &OsStr, mode: Mode) -> Result<OwnedFd> {
    let flags = OFlags::RDWR
        | OFlags::CREATE
        | OFlags::EXCL
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NOCTTY;
    retry(|| rustix::fs::openat(dir, name, flags, mode)).map_err(|e| Error::os("create", e))
}

/// Creates a file with no name in `loc.dir` (`O_TMPFILE|O_EXCL`, so it can
/// never be linked either) with `mode`, after checking that nothing is at
/// `loc.name` (creation at a path is exclusive, whether or not the name is
/// then used). `None` where the system or file system has no `O_TMPFILE`:
/// the caller then creates the file at the name and unlinks it.
pub(crate) fn create_unnamed(
    loc: &Location,
    mode: Mode,
    op: &'static str,
) -> Result<Option<OwnedFd>> {
    match rustix::fs::statat(&loc.dir, &*loc.name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => return Err(Error::new(ErrorKind::AlreadyExists, op)),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(Error::os(op, e)),
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::EXCL | OFlags::CLOEXEC;
        match retry(|| rustix::fs::openat(&loc.dir, ".", flags, mode)) {
            Ok(fd) => Ok(Some(fd)),
            // Kernels and file systems without O_TMPFILE.
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => Ok(None),
            Err(e) => Err(Error::os(op, e)),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = mode;
        Ok(None)
    }
}

/// Opens an existing file for mapping. Nothing but a regular file is ever
/// opened for reading or writing, even if the name is swapped between our
/// system calls:
///
/// - On Linux the name is opened `O_PATH|O_NOFOLLOW` (which grants no
///   access and has no side effect on a FIFO or device), the descriptor is
///   checked to be a regular file, and that very inode is then reopened for
///   reading (and writing) through `/proc/thread-self/fd` (the calling
///   thread's own descriptor table, which differs from the process's after
///   `unshare(CLONE_FILES)`), after checking that it really is procfs. If
///   procfs is not available the attach is refused
///   ([`ErrorKind::Unsupported`]) rather than falling back to a racy open.
/// - Elsewhere the name is `lstat`-ed and refused unless it is a regular
///   file, then opened `O_NOFOLLOW|O_NONBLOCK|O_NOCTTY` (so a FIFO swapped in
///   between the two calls cannot block us); [`validate`] then refuses it.
///   In that window such an object is opened, which on a FIFO can wake a
///   blocked reader; `SECURITY.md` documents this.
///
/// Then the name is looked up once more ([`confirm_name`]): it must still
/// name the file opened, and, unless `allow_hard_links`, that file must
/// have one name in that same look-up. Checking the link count there,
/// rather than only on the descriptor, defeats a hard link planted for our
/// open and removed before our `fstat`, but not one whose removal is under
/// way during the look-up: the kernel lowers the count before it drops the
/// name, so the look-up can see the name with a count of 1 (`SECURITY.md`
/// documents this). A name that changed meanwhile is opened again, a few
/// times at most.
pub(crate) fn open_existing(
    loc: &Location,
    writable: bool,
    allow_hard_links: bool,
    op: &'static str,
) -> Result<OwnedFd> {
    const TRIES: usize = 4;
    let access = if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    let flags = access | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let mut moved = Error::with_errno(ErrorKind::Os, op, Errno::AGAIN);
    for _ in 0..TRIES {
        let (fd, st) = open_regular(loc, flags, op)?;
        #[cfg(all(test, not(loom)))]
        tests::race_point(loc, &loc.name);
        match confirm_name(loc, st.st_dev, st.st_ino, allow_hard_links, op) {
            Ok(()) => return Ok(fd),
            // Renamed away, or another file renamed over the name: look
            // again.
            Err(e) if e.kind() != ErrorKind::HardLinked => moved = e,
            Err(e) => return Err(e),
        }
    }
    Err(moved)
}

/// Checks that `loc` still names the file `(dev, ino)` and, unless
/// `allow_hard_links`, that this one look-up sees it with one name:
/// `HardLinked` if not; `NotFound` if the name is gone; `Os(EAGAIN)` if it
/// names another file now.
fn confirm_name(
    loc: &Location,
    dev: rustix::fs::Dev,
    ino: u64,
    allow_hard_links: bool,
    op: &'static str,
) -> Result<()> {
    let named = rustix::fs::statat(&loc.dir, &*loc.name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::os(op, e))?;
    if (named.st_dev, named.st_ino) != (dev, ino) {
        return Err(Error::with_errno(ErrorKind::Os, op, Errno::AGAIN)
            .because("the name names another file now (it is being renamed over): try again"));
    }
    if !allow_hard_links && named.st_nlink > 1 {
        return Err(Error::hard_linked(op, named.st_nlink));
    }
    Ok(())
}

/// Opens the regular file `loc` names with `flags` (see [`open_existing`])
/// and returns it with its `fstat`.
fn open_regular(
    loc: &Location,
    flags: OFlags,
    op: &'static str,
) -> Result<(OwnedFd, rustix::fs::Stat)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let path_flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let pinned = retry(|| rustix::fs::openat(&loc.dir, &*loc.name, path_flags, Mode::empty()))
            .map_err(|e| Error::os(op, e))?;
        let st = rustix::fs::fstat(&pinned).map_err(|e| Error::os(op, e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Error::not_regular(op, st.st_mode));
        }
        let fd = reopen(pinned.as_fd(), flags, op)?;
        let again = rustix::fs::fstat(&fd).map_err(|e| Error::os(op, e))?;
        if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
            // procfs hands back the inode the descriptor pins; anything
            // else means /proc is not what it claims to be.
            return Err(Error::new(ErrorKind::Unsupported, op).because(NO_PROCFS));
        }
        Ok((fd, again))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        open_regular_portable(loc, flags, op)
    }
}

/// [`open_regular`] without `O_PATH`: `lstat` the name, then open it
/// `O_NOFOLLOW` and check again with `fstat`. Used off Linux; compiled for
/// tests on Linux too, so that it runs somewhere.
#[cfg(any(
    all(test, not(loom)),
    not(any(target_os = "linux", target_os = "android"))
))]
fn open_regular_portable(
    loc: &Location,
    flags: OFlags,
    op: &'static str,
) -> Result<(OwnedFd, rustix::fs::Stat)> {
    let st = rustix::fs::statat(&loc.dir, &*loc.name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::os(op, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::not_regular(op, st.st_mode));
    }
    #[cfg(all(test, not(loom)))]
    tests::race_point(loc, &loc.name);
    let fd = retry(|| {
        rustix::fs::openat(
            &loc.dir,
            &*loc.name,
            flags | OFlags::NOFOLLOW,
            Mode::empty(),
        )
    })
    .map_err(|e| match e {
        // The name became a symlink, directory or socket since `statat`.
        Errno::LOOP | Errno::ISDIR | Errno::NXIO | Errno::NODEV => {
            Error::with_errno(ErrorKind::NotRegularFile, op, e)
        }
        e => Error::os(op, e),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::os(op, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::not_regular(op, st.st_mode));
    }
    Ok((fd, st))
}

/// Why attach by path is refused without procfs.
#[cfg(any(target_os = "linux", target_os = "android"))]
const NO_PROCFS: &str =
    "/proc/thread-self/fd is not procfs: the file cannot be reopened without a race";

/// The file-system magic number of procfs (`PROC_SUPER_MAGIC`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const PROC_SUPER_MAGIC: u32 = 0x9fa0;

/// Opens the inode `pinned` (an `O_PATH` descriptor) again with `flags`,
/// through `/proc/thread-self/fd/N` (Linux 3.17+). Refuses with
/// [`ErrorKind::Unsupported`] when that directory is missing or is not
/// procfs; other failures (such as running out of descriptors) are
/// reported as they are.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn reopen(pinned: BorrowedFd<'_>, flags: OFlags, op: &'static str) -> Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let unsupported = |e| match e {
        Errno::NOENT | Errno::NOTDIR => {
            Error::with_errno(ErrorKind::Unsupported, op, e).because(NO_PROCFS)
        }
        e => Error::os(op, e),
    };
    let dir = rustix::fs::open(
        "/proc/thread-self/fd",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(unsupported)?;
    if fs_magic(dir.as_fd()).map_err(unsupported)? != PROC_SUPER_MAGIC {
        return Err(Error::new(ErrorKind::Unsupported, op).because(NO_PROCFS));
    }
    let name = pinned.as_raw_fd().to_string();
    retry(|| rustix::fs::openat(&dir, name.as_str(), flags, Mode::empty()))
        .map_err(|e| Error::os(op, e))
}

/// Checks that `fd` is a regular, non-empty file we can map and may trust
/// under `policy`, and returns its identity and size. Files on hugetlbfs are
/// refused with `Unsupported` (see [`refuse_hugetlbfs`]).
pub(crate) fn validate(
    fd: BorrowedFd<'_>,
    policy: TrustPolicy,
    op: &'static str,
) -> Result<FileInfo> {
    let st = rustix::fs::fstat(fd).map_err(|e| Error::os(op, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile && !is_apple_shm(&st) {
        return Err(Error::not_regular(op, st.st_mode));
    }
    refuse_hugetlbfs(fd, op)?;
    // A memfd has no name anyone could open it by: only holders of a
    // descriptor reach it, so its owner, mode and links say nothing about
    // who can write it (see `is_memfd`).
    let policy = if is_memfd(fd, &st) {
        TrustPolicy {
            allow_other_owner: true,
            allow_group_or_other_write: true,
            allow_hard_links: true,
        }
    } else {
        policy
    };
    // Root bypasses permission bits, so ownership is compared explicitly.
    let euid = rustix::process::geteuid().as_raw();
    if !policy.allow_other_owner && st.st_uid != euid {
        return Err(Error::untrusted_owner(op, st.st_uid, euid));
    }
    if !policy.allow_group_or_other_write
        && Mode::from_raw_mode(st.st_mode).intersects(Mode::WGRP | Mode::WOTH)
    {
        return Err(Error::insecure_mode(op, st.st_mode));
    }
    // A hard link planted by a writer of the directory would carry the
    // victim's own owner and mode; a region file has exactly one name
    // (0 once unlinked, as memfds and `FileCleanup::Auto` files are).
    if !policy.allow_hard_links && st.st_nlink > 1 {
        return Err(Error::hard_linked(op, st.st_nlink));
    }
    let info = info_of(&st, op)?;
    if info.size == 0 {
        return Err(Error::new(ErrorKind::EmptyFile, op));
    }
    Ok(info)
}

/// Whether `st` is what XNU's `fstat` reports for a POSIX shared-memory
/// object (`shm_open`): permission bits without any file-type bits (and
/// device, inode and link count 0). Only Apple systems report that; no
/// other descriptor type there has no type bits. Always `false` elsewhere.
fn is_apple_shm(st: &rustix::fs::Stat) -> bool {
    // `S_IFMT`: the file-type bits.
    cfg!(target_vendor = "apple") && st.st_mode & 0o170000 == 0
}

/// Whether the file open at `fd`, whose `fstat` is `st`, is a memfd
/// (Linux, Android): a file `memfd_create` made on the kernel's internal
/// shared-memory mount, which no mount namespace contains.
///
/// Such a file has no name and can never get one: it has no link
/// (`st_nlink` 0), and `linkat` cannot give it one (the mount is not
/// reachable, and a link across mounts is `EXDEV`). Nobody can open it by
/// a path; the only ways in are a descriptor its holders hand out and
/// `/proc/<pid>/fd/<n>` of a holder, which takes the right to inspect that
/// holder (`ptrace` access: its user, or root). So its owner and mode
/// (0777 as the kernel makes it) do not widen who can write it, and
/// `validate` does not hold them against it.
///
/// Two things must both hold (the missing link says nothing more: every
/// file on that mount has none). The mount, recognised by its device number
/// (`st_dev`), learnt from a memfd this process makes once: a file in
/// `/dev/shm` or any other tmpfs mount, linked, unlinked or `O_TMPFILE`
/// (which can be linked later), has another device and keeps every check.
/// And the kernel's name for the file, read from
/// `/proc/thread-self/fd/<fd>` once that directory is checked to be procfs
/// (anything else at `/proc` could hold a link of any name), starts with
/// `/memfd:`, as it does for every file `memfd_create` makes
/// and for nothing else on that mount: System V shared-memory segments
/// (`/SYSV…`, which anyone the segment's IPC mode allows can attach with
/// `shmat` by its id) and shared anonymous memory (`/dev/zero`) live there
/// too, and can be opened as descriptors through `/proc/<pid>/map_files`
/// by a privileged sender. `false` where memfds do not exist, if the probe
/// memfd cannot be made, or if `/proc` cannot be read or is not procfs (the
/// checks then apply to memfds too: refusing is the safe side).
pub(crate) fn is_memfd(fd: BorrowedFd<'_>, st: &rustix::fs::Stat) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        memfd_dev() == Some(st.st_dev) && is_named_memfd(fd)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (fd, st);
        false
    }
}

/// Whether the kernel names the file open at `fd` as it names a memfd
/// (`/memfd:<name>`, ` (deleted)` after it), read from
/// `/proc/thread-self/fd` after checking that it is procfs (as
/// [`reopen`] does): `false` if it is not, or cannot be read. Only
/// meaningful for a file on the memfd mount (`is_memfd`): elsewhere a path
/// of another mount namespace could start so.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_named_memfd(fd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(dir) = rustix::fs::open(
        "/proc/thread-self/fd",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    if fs_magic(dir.as_fd()) != Ok(PROC_SUPER_MAGIC) {
        return false;
    }
    rustix::fs::readlinkat(&dir, fd.as_raw_fd().to_string().as_str(), Vec::new())
        .is_ok_and(|name| name.as_bytes().starts_with(b"/memfd:"))
}

/// The device number of the kernel's internal shared-memory mount, from a
/// memfd made (and closed) for the purpose the first time it is asked for;
/// `None` if that fails (asked again next time).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn memfd_dev() -> Option<rustix::fs::Dev> {
    static DEV: std::sync::OnceLock<rustix::fs::Dev> = std::sync::OnceLock::new();
    if let Some(dev) = DEV.get() {
        return Some(*dev);
    }
    let probe =
        rustix::fs::memfd_create("shm-region-probe", rustix::fs::MemfdFlags::CLOEXEC).ok()?;
    let dev = rustix::fs::fstat(&probe).ok()?.st_dev;
    Some(*DEV.get_or_init(|| dev))
}

/// The file-system type (`statfs`'s `f_type`) of the file open at `fd`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn fs_magic(fd: BorrowedFd<'_>) -> rustix::io::Result<u32> {
    let st = rustix::fs::fstatfs(fd)?;
    // `f_type` is a signed or unsigned word depending on the target; the
    // magic numbers are 32-bit values, so keep the low 32 bits of the
    // (sign-extended) word.
    #[allow(
        clippy::useless_conversion,
        reason = "`f_type`'s width and signedness vary by target"
    )]
    let low = i128::from(st.f_type) & 0xffff_ffff;
    Ok(u32::try_from(low).unwrap_or(0))
}

/// `f_type` of hugetlbfs in `statfs` (`HUGETLBFS_MAGIC`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const HUGETLBFS_MAGIC: u32 = 0x9584_58f6;

/// Refuses a file on hugetlbfs (a file on a `hugetlbfs` mount, or a memfd
/// made with `MFD_HUGETLB`) with `Unsupported`.
///
/// Such a file cannot be mapped safely: its pages come from a fixed pool, so
/// a holder that punches a page out (`fallocate(PUNCH_HOLE)`, which
/// `F_SEAL_SHRINK` does not prevent) and exhausts the pool makes the next
/// access of every peer raise `SIGBUS`; and its mappings can only be unmapped
/// in whole huge pages. Other systems have no hugetlbfs: nothing to refuse.
pub(crate) fn refuse_hugetlbfs(fd: BorrowedFd<'_>, op: &'static str) -> Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        if fs_magic(fd).map_err(|e| Error::os(op, e))? == HUGETLBFS_MAGIC {
            return Err(Error::new(ErrorKind::Unsupported, op)
                .because("file is on hugetlbfs, whose pages a holder can punch out"));
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (fd, op);
    Ok(())
}

/// Creates a file under a fresh name beside `loc.name` in the same
/// directory (`.<name>.<random>.stage`, `O_EXCL`, `mode`), for a region that
/// is published under `loc.name` later. Returns the temporary name and the
/// descriptor.
pub(crate) fn create_temp(loc: &Location, mode: Mode) -> Result<(OsString, OwnedFd)> {
    use std::hash::{BuildHasher, RandomState};
    let mut last = Error::new(ErrorKind::AlreadyExists, "stage");
    for attempt in 0u32..16 {
        // RandomState is seeded randomly per process; the O_EXCL open below
        // is what makes the name safe, the randomness only avoids clashes.
        let suffix = RandomState::new().hash_one((attempt, std::process::id()));
        let mut name = OsString::from(".");
        name.push(&loc.name);
        name.push(format!(".{suffix:016x}.stage"));
        #[cfg(all(test, not(loom)))]
        tests::race_point(loc, &name);
        match create_exclusive(loc.dir.as_fd(), &name, mode) {
            Ok(fd) => return Ok((name, fd)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Renames `from` to `to` in `dir` only if nothing is at `to`:
/// `renameat2(RENAME_NOREPLACE)` on Linux, `link` + `unlink` elsewhere (and
/// where the file system does not support the flag).
pub(crate) fn rename_noreplace(
    dir: BorrowedFd<'_>,
    from: &OsStr,
    to: &OsStr,
    op: &'static str,
) -> Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::RenameFlags;
        match rustix::fs::renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::INVAL | Errno::NOSYS) => {}
            Err(e) => return Err(Error::os(op, e)),
        }
    }
    link_then_unlink(dir, from, to, op)
}

/// The portable no-replace rename: `link(from, to)` fails if `to` exists;
/// then the old name is removed.
pub(crate) fn link_then_unlink(
    dir: BorrowedFd<'_>,
    from: &OsStr,
    to: &OsStr,
    op: &'static str,
) -> Result<()> {
    rustix::fs::linkat(dir, from, dir, to, AtFlags::empty()).map_err(|e| Error::os(op, e))?;
    // The file is now published under both names; dropping the temporary
    // one cannot lose it.
    rustix::fs::unlinkat(dir, from, AtFlags::empty()).map_err(|e| Error::os(op, e))
}

/// Renames `from` to `to` in `dir`, atomically replacing whatever file is
/// at `to` (never a directory; a symbolic link is replaced, not followed).
pub(crate) fn rename_replace(
    dir: BorrowedFd<'_>,
    from: &OsStr,
    to: &OsStr,
    op: &'static str,
) -> Result<()> {
    rustix::fs::renameat(dir, from, dir, to).map_err(|e| Error::os(op, e))
}

/// Creates an anonymous memory file that can be sealed (Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn create_memfd(name: &str, mode: Mode, op: &'static str) -> Result<OwnedFd> {
    use rustix::fs::MemfdFlags;
    const BAD_NAME: &str = "memfd name has a NUL byte or is longer than 249 bytes";
    if name.contains('\0') {
        return Err(Error::new(ErrorKind::InvalidPath, op).because(BAD_NAME));
    }
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| match e {
            Errno::INVAL => Error::with_errno(ErrorKind::InvalidPath, op, e).because(BAD_NAME),
            e => Error::os(op, e),
        })?;
    // memfds start with mode 0777; no one else can reach this one yet, so
    // narrowing it now leaves no window.
    rustix::fs::fchmod(&fd, mode).map_err(|e| Error::os(op, e))?;
    Ok(fd)
}

/// Seals `fd` against shrinking. The seal set is left open (no
/// `F_SEAL_SEAL`), so that `MmapRegion::freeze` and
/// `MmapRegion::share_read_only` can add their seals later.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn seal_shrink(fd: BorrowedFd<'_>, op: &'static str) -> Result<()> {
    rustix::fs::fcntl_add_seals(fd, rustix::fs::SealFlags::SHRINK).map_err(|e| Error::os(op, e))
}

/// The file's seals (`F_GET_SEALS`, as `F_SEAL_*` bits), or `None` for a
/// file that cannot carry seals (`EINVAL`: not on tmpfs or hugetlbfs; or
/// not Linux).
pub(crate) fn seals(fd: BorrowedFd<'_>) -> Option<u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::fs::fcntl_get_seals(fd).ok().map(|s| s.bits())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        None
    }
}

/// `F_SEAL_WRITE` and `F_SEAL_FUTURE_WRITE` as bits.
pub(crate) const WRITE_SEALS: u32 = 0x8 | 0x10;

/// Refuses (`NotSealed`) a file that carries neither `F_SEAL_WRITE` nor
/// `F_SEAL_FUTURE_WRITE`, for `MmapOptions::require_write_seal`.
pub(crate) fn require_write_seal(fd: BorrowedFd<'_>, op: &'static str) -> Result<()> {
    if seals(fd).unwrap_or(0) & WRITE_SEALS == 0 {
        return Err(Error::missing_seals(
            op,
            0x10,
            "require_write_seal asks for F_SEAL_FUTURE_WRITE or F_SEAL_WRITE",
        ));
    }
    Ok(())
}

/// Opens the file open at `fd` again, read-only and close-on-exec, through
/// `/proc/thread-self/fd` (a duplicate would keep `fd`'s write access), and
/// checks that the new descriptor is the same file (device and inode).
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] without procfs (see [`reopen`]),
/// [`ErrorKind::Os`] with `ESTALE` if another file came back, and the OS
/// errors of `openat` and `fstat`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn reopen_read_only(fd: BorrowedFd<'_>, op: &'static str) -> Result<OwnedFd> {
    let ro = reopen(fd, OFlags::RDONLY | OFlags::CLOEXEC, op)?;
    let (a, b) = (identity(fd, op)?, identity(ro.as_fd(), op)?);
    if (a.dev, a.ino) != (b.dev, b.ino) {
        return Err(Error::os(op, Errno::STALE));
    }
    Ok(ro)
}

/// Whether the file open at `fd` is sealed against shrinking. Files that
/// cannot carry seals (most file systems, all non-Linux systems) are not.
pub(crate) fn is_shrink_sealed(fd: BorrowedFd<'_>) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(rustix::fs::SealFlags::SHRINK))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        false
    }
}

/// Whether `fd` is open read-only (`O_RDONLY`): the reason a writable
/// mapping of it is refused with `EACCES`.
pub(crate) fn is_open_read_only(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fcntl_getfl(fd).is_ok_and(|flags| (flags & OFlags::RWMODE) == OFlags::RDONLY)
}

/// Identity and size from a `stat` result; a negative size is refused.
fn info_of(st: &rustix::fs::Stat, op: &'static str) -> Result<FileInfo> {
    Ok(FileInfo {
        dev: st.st_dev,
        ino: st.st_ino,
        size: u64::try_from(st.st_size).map_err(|_| Error::new(ErrorKind::FileTooLarge, op))?,
    })
}

/// The identity of an open file (no policy checks).
pub(crate) fn identity(fd: BorrowedFd<'_>, op: &'static str) -> Result<FileInfo> {
    info_of(&rustix::fs::fstat(fd).map_err(|e| Error::os(op, e))?, op)
}

/// The current size of the file, from `fstat`.
pub(crate) fn size_of(fd: BorrowedFd<'_>, op: &'static str) -> Result<u64> {
    identity(fd, op).map(|info| info.size)
}

/// Converts a byte count into a file offset, refusing what `off_t` cannot
/// hold.
pub(crate) fn file_len(len: usize, op: &'static str) -> Result<u64> {
    u64::try_from(len)
        .ok()
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or_else(|| Error::invalid_size(op, len))
}

/// First half of growth: make sure blocks exist for `[from, to)` without
/// changing the file's size, so that running out of space is reported now
/// and peers never see a size whose pages cannot be backed.
///
/// On Linux this is `fallocate(FALLOC_FL_KEEP_SIZE)`. Elsewhere, and where
/// the file system does not support it, the blocks are reserved by
/// [`extend`] instead, which then writes zeros.
pub(crate) fn reserve(
    fd: BorrowedFd<'_>,
    from: u64,
    to: u64,
    op: &'static str,
) -> Result<Reserved> {
    if to <= from {
        return Ok(Reserved::Done);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::FallocateFlags;
        match retry(|| rustix::fs::fallocate(fd, FallocateFlags::KEEP_SIZE, from, to - from)) {
            Ok(()) => return Ok(Reserved::Done),
            Err(Errno::OPNOTSUPP) => {}
            Err(e) => return Err(Error::os(op, e)),
        }
    }
    let _ = (fd, op);
    Ok(Reserved::ByZeroFill)
}

/// How [`reserve`] secured the blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserved {
    /// The blocks are allocated; `extend` only changes the size.
    Done,
    /// Nothing was allocated yet; `extend` must write zeros.
    ByZeroFill,
    /// Sparse growth was asked for: no blocks are reserved.
    Sparse,
}

/// Second half of growth: make the file at least `to` bytes long, after
/// [`reserve`] secured `[from, to)`; `from` is the file's size as the caller
/// last saw it (0 for a file it just created). It never shrinks the file
/// below that size.
///
/// - `Reserved::Done` on Linux: `fallocate` without `KEEP_SIZE` over the
///   reserved range, which raises the size atomically to at least `to` and
///   never lowers it (one system call, no `fstat`).
/// - `Reserved::ByZeroFill`: writes zeros from the current end to `to`
///   (portable block reservation); on failure the file is cut back to the
///   size it had, so a failed growth leaves it as it was.
/// - `Reserved::Sparse`: `ftruncate(to)`. (A concurrent grower between the
///   caller's `fstat` and this call can be cut back to `to`; growth is meant
///   to come from one handle, see `SECURITY.md`.)
pub(crate) fn extend(
    fd: BorrowedFd<'_>,
    from: u64,
    to: u64,
    how: Reserved,
    op: &'static str,
) -> Result<()> {
    if to <= from {
        return Ok(());
    }
    match how {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Reserved::Done => retry(|| {
            rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), from, to - from)
        })
        .map_err(|e| Error::os(op, e)),
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Reserved::Done => grow_sparse(fd, to, op),
        Reserved::Sparse => grow_sparse(fd, to, op),
        Reserved::ByZeroFill => zero_fill(fd, to, op),
    }
}

/// Refuses a growth to `to` bytes that the process's file-size limit
/// (`RLIMIT_FSIZE`) forbids, before anything is reserved or written: the
/// kernel would otherwise send `SIGXFSZ` (which ends the process by
/// default) or fail half-way, after blocks were reserved.
pub(crate) fn check_file_size_limit(to: u64, op: &'static str) -> Result<()> {
    use rustix::process::{getrlimit, Resource};
    match getrlimit(Resource::Fsize).current {
        Some(limit) if to > limit => Err(Error::too_large(op, to, Limit::FileSize(limit))),
        _ => Ok(()),
    }
}

fn grow_sparse(fd: BorrowedFd<'_>, to: u64, op: &'static str) -> Result<()> {
    retry(|| rustix::fs::ftruncate(fd, to)).map_err(|e| Error::os(op, e))
}

/// Portable block reservation: append zeros until the file is `to` bytes.
pub(crate) fn zero_fill(fd: BorrowedFd<'_>, to: u64, op: &'static str) -> Result<()> {
    const CHUNK: usize = 64 * 1024;
    static ZEROS: [u8; CHUNK] = [0; CHUNK];
    let start = size_of(fd, op)?;
    let mut at = start;
    while at < to {
        let n = usize::try_from(to - at).map_or(CHUNK, |left| left.min(CHUNK));
        match retry(|| rustix::io::pwrite(fd, &ZEROS[..n], at)) {
            Ok(0) => {
                let _ = retry(|| rustix::fs::ftruncate(fd, start));
                return Err(Error::new(ErrorKind::StorageFull, op));
            }
            Ok(written) => {
                // `written <= n <= CHUNK`, so the conversion cannot fail.
                at += u64::try_from(written).map_err(|_| Error::new(ErrorKind::Os, op))?;
            }
            Err(e) => {
                let _ = retry(|| rustix::fs::ftruncate(fd, start));
                return Err(Error::os(op, e));
            }
        }
    }
    Ok(())
}

/// Removes `loc.name` only if it still names the file `(dev, ino)`.
///
/// Returns whether something was removed. A file renamed over our name, or
/// created after ours was removed, is left alone. (Between the check and the
/// unlink a writer of the directory could swap the name once more; such a
/// writer could remove the file itself anyway, so no new power is gained.)
pub(crate) fn remove_if_same(
    loc: &Location,
    dev: rustix::fs::Dev,
    ino: u64,
) -> rustix::io::Result<bool> {
    match rustix::fs::statat(&loc.dir, &*loc.name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_dev == dev && st.st_ino == ino => {
            rustix::fs::unlinkat(&loc.dir, &*loc.name, AtFlags::empty()).map(|()| true)
        }
        Ok(_) | Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    type Hook = Box<dyn FnMut(&Location, &OsStr)>;

    thread_local! {
        /// What a test does to the name after `open_existing` opened it and
        /// before it confirms the name: the instant a racing peer would act.
        static BETWEEN: RefCell<Option<Hook>> = RefCell::new(None);
    }

    /// Called with the name about to be opened: by `open_existing` between
    /// `open_regular` and `confirm_name`, by `open_regular_portable` between
    /// its `lstat` and its `open`, and by `create_temp` before it creates.
    pub(super) fn race_point(loc: &Location, name: &OsStr) {
        BETWEEN.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f(loc, name);
            }
        });
    }

    /// Runs `f` with `hook` called (with the call's number, from 1) at
    /// every race point; returns what `f` returned and the number of calls.
    fn with_race<T>(
        mut hook: impl FnMut(usize, &OsStr) + 'static,
        f: impl FnOnce() -> T,
    ) -> (T, usize) {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = calls.clone();
        BETWEEN.with(|h| {
            *h.borrow_mut() = Some(Box::new(move |_: &Location, name: &OsStr| {
                seen.set(seen.get() + 1);
                hook(seen.get(), name);
            }));
        });
        let got = f();
        BETWEEN.with(|h| *h.borrow_mut() = None);
        (got, calls.get())
    }

    /// `open_existing` on `dir/seg`, with `hook` run at each attempt between
    /// opening and confirming the name.
    fn open_with_race(
        dir: &Path,
        allow_hard_links: bool,
        hook: impl FnMut(usize, &OsStr) + 'static,
    ) -> (Result<OwnedFd>, usize) {
        let loc = locate(&dir.join("seg"), "t").unwrap();
        with_race(hook, || open_existing(&loc, false, allow_hard_links, "t"))
    }

    /// The flags `open_existing` opens a read-only attach with.
    const READ_FLAGS: OFlags = OFlags::RDONLY
        .union(OFlags::NONBLOCK)
        .union(OFlags::CLOEXEC)
        .union(OFlags::NOCTTY);

    fn mkfifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn portable_open_refuses_symlinks_directories_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("target"), b"data").unwrap();
        std::os::unix::fs::symlink("target", dir.path().join("link")).unwrap();
        std::fs::create_dir(dir.path().join("dir")).unwrap();
        mkfifo(&dir.path().join("fifo"));
        for name in ["link", "dir", "fifo"] {
            let loc = locate(&dir.path().join(name), "t").unwrap();
            let err = open_regular_portable(&loc, READ_FLAGS, "t").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotRegularFile, "{name}");
        }
        let loc = locate(&dir.path().join("target"), "t").unwrap();
        let (fd, st) = open_regular_portable(&loc, READ_FLAGS, "t").unwrap();
        assert_eq!(ino_of(&fd), st.st_ino);
        assert_eq!(st.st_size, 4);
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn portable_open_refuses_a_symlink_swapped_in_after_its_lstat() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seg"), b"mine").unwrap();
        std::fs::write(dir.path().join("target"), b"secret").unwrap();
        std::os::unix::fs::symlink("target", dir.path().join("link")).unwrap();
        let d = dir.path().to_owned();
        let loc = locate(&dir.path().join("seg"), "t").unwrap();
        let (got, calls) = with_race(
            move |_, _| std::fs::rename(d.join("link"), d.join("seg")).unwrap(),
            || open_regular_portable(&loc, READ_FLAGS, "t"),
        );
        let err = got.unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(
            (err.kind(), err.raw_os_error()),
            (ErrorKind::NotRegularFile, Some(Errno::LOOP.raw_os_error()))
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn portable_open_refuses_a_fifo_swapped_in_after_its_lstat_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seg"), b"mine").unwrap();
        mkfifo(&dir.path().join("fifo"));
        let d = dir.path().to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let loc = locate(&d.join("seg"), "t").unwrap();
            let dd = d.clone();
            let (got, calls) = with_race(
                move |_, _| std::fs::rename(dd.join("fifo"), dd.join("seg")).unwrap(),
                || open_regular_portable(&loc, READ_FLAGS, "t"),
            );
            let _ = tx.send((got.map(|_| ()).map_err(|e| e.kind()), calls));
        });
        let got = rx.recv_timeout(Duration::from_secs(5));
        assert_eq!(got, Ok((Err(ErrorKind::NotRegularFile), 1)));
    }

    fn ino_of(fd: &OwnedFd) -> u64 {
        rustix::fs::fstat(fd).unwrap().st_ino
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn a_name_replaced_between_open_and_check_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seg"), b"first").unwrap();
        std::fs::write(dir.path().join("other"), b"second").unwrap();
        let second = std::fs::metadata(dir.path().join("other")).unwrap().ino();
        let d = dir.path().to_owned();
        let (got, calls) = open_with_race(dir.path(), false, move |n, _| {
            if n == 1 {
                std::fs::rename(d.join("other"), d.join("seg")).unwrap();
            }
        });
        assert_eq!(ino_of(&got.unwrap()), second);
        assert_eq!(calls, 2);
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn a_name_replaced_at_every_look_gives_up_after_four_tries_with_eagain() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seg"), b"0").unwrap();
        let d = dir.path().to_owned();
        let (got, calls) = open_with_race(dir.path(), false, move |n, _| {
            std::fs::write(d.join("next"), n.to_string()).unwrap();
            std::fs::rename(d.join("next"), d.join("seg")).unwrap();
        });
        let err = got.unwrap_err();
        assert_eq!(
            (err.kind(), err.raw_os_error()),
            (ErrorKind::Os, Some(Errno::AGAIN.raw_os_error()))
        );
        assert_eq!(calls, 4);
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn a_hard_link_made_between_open_and_check_is_refused_without_retrying() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seg"), b"mine").unwrap();
        let d = dir.path().to_owned();
        let (got, calls) = open_with_race(dir.path(), false, move |n, _| {
            if n == 1 {
                std::fs::hard_link(d.join("seg"), d.join("planted")).unwrap();
            }
        });
        assert_eq!(got.unwrap_err().kind(), ErrorKind::HardLinked);
        // A retry would give a link/unlink loop more chances to be missed.
        assert_eq!(calls, 1);

        // Allowed: the same look-up succeeds on the same file.
        let ino = std::fs::metadata(dir.path().join("seg")).unwrap().ino();
        let (got, calls) = open_with_race(dir.path(), true, |_, _| {});
        assert_eq!(ino_of(&got.unwrap()), ino);
        assert_eq!(calls, 1);
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn a_name_with_one_link_is_opened_at_the_first_look() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seg"), b"mine").unwrap();
        let ino = std::fs::metadata(dir.path().join("seg")).unwrap().ino();
        let (got, calls) = open_with_race(dir.path(), false, |_, _| {});
        assert_eq!(ino_of(&got.unwrap()), ino);
        assert_eq!(calls, 1);
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn a_staging_name_taken_meanwhile_is_retried_under_another_name() {
        let dir = tempfile::tempdir().unwrap();
        let loc = locate(&dir.path().join("seg"), "t").unwrap();
        let d = dir.path().to_owned();
        let taken = std::rc::Rc::new(RefCell::new(OsString::new()));
        let first = taken.clone();
        let (got, calls) = with_race(
            move |n, name| {
                if n == 1 {
                    std::fs::write(d.join(name), b"someone's").unwrap();
                    *first.borrow_mut() = name.to_owned();
                }
            },
            || create_temp(&loc, Mode::from_raw_mode(0o600)),
        );
        let (name, _fd) = got.unwrap();
        assert_eq!(calls, 2);
        assert_ne!(name, *taken.borrow());
        let name = name.to_str().unwrap().to_owned();
        assert!(
            name.starts_with(".seg.") && name.ends_with(".stage"),
            "{name}"
        );
        let theirs = dir.path().join(&*taken.borrow());
        assert_eq!(std::fs::read(theirs).unwrap(), b"someone's");
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn a_staging_error_other_than_a_taken_name_is_returned_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        let loc = locate(&dir.path().join("gone/seg"), "t").unwrap();
        let d = dir.path().join("gone");
        let (got, calls) = with_race(
            move |_, _| {
                let _ = std::fs::remove_dir(&d);
            },
            || create_temp(&loc, Mode::from_raw_mode(0o600)),
        );
        assert_eq!(got.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(calls, 1);
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn locate_of_a_bare_name_opens_the_current_directory() {
        // `cargo test` runs unit tests in the package root.
        let loc = locate(Path::new("Cargo.toml"), "t").unwrap();
        let here = std::fs::metadata(".").unwrap();
        let st = rustix::fs::fstat(&loc.dir).unwrap();
        assert_eq!((st.st_dev, st.st_ino), (here.dev(), here.ino()));
        assert_eq!(loc.name, "Cargo.toml");
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn locate_refuses_a_parent_that_is_not_a_directory_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let err = locate(&dir.path().join("file/x"), "t").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(Errno::NOTDIR.raw_os_error()));
        // A FIFO as the parent: opening it without O_DIRECTORY would block
        // until a writer came.
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.join("x");
        std::thread::spawn(move || {
            let _ = tx.send(locate(&path, "t").map(|_| ()).unwrap_err().raw_os_error());
        });
        let got = rx.recv_timeout(Duration::from_secs(5));
        assert_eq!(got, Ok(Some(Errno::NOTDIR.raw_os_error())));
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn zero_fill_grows_to_exact_size_with_zeros() {
        let f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut &f, b"abc").unwrap();
        zero_fill(f.as_fd(), 200_000, "t").unwrap();
        assert_eq!(f.metadata().unwrap().len(), 200_000);
        let mut all = vec![1u8; 200_000];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut all, 0).unwrap();
        assert_eq!(&all[..3], b"abc");
        assert!(all[3..].iter().all(|&b| b == 0));
        assert_eq!(all.len(), 200_000);
    }

    /// A skipped test's record, as `tests/common`'s `skip` writes it: a
    /// line on stderr and one appended to the file `SHM_REGION_SKIP_LOG`
    /// names, which `.ci/run` checks against `verify/skips.allow`.
    fn skip(test: &str, reason: &str) {
        use std::io::Write;
        eprintln!("SHM_REGION_SKIP: lib::{test}: {reason}");
        if let Some(log) = std::env::var_os("SHM_REGION_SKIP_LOG") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap();
            f.write_all(format!("lib::{test}\t{reason}\n").as_bytes())
                .unwrap();
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn zero_fill_on_a_full_tmpfs_reports_storage_full_and_restores_the_size() {
        // The portable reservation path (used off Linux, and on Linux file
        // systems without fallocate), exercised here on a 1 MiB tmpfs.
        const NAME: &str = "zero_fill_on_a_full_tmpfs_reports_storage_full_and_restores_the_size";
        if !rustix::process::geteuid().is_root() {
            skip(NAME, "needs root to mount");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        if !mounted.success() {
            skip(NAME, "mount -t tmpfs failed");
            return;
        }
        let path = dir.path().join("f");
        let f = std::fs::File::create(&path).unwrap();
        zero_fill(f.as_fd(), 512 * 1024, "t").unwrap();
        let err = zero_fill(f.as_fd(), 4 << 20, "t").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull);
        assert_eq!(f.metadata().unwrap().len(), 512 * 1024);
        drop(f);
        let _ = std::process::Command::new("umount")
            .arg(dir.path())
            .status();
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn extend_never_shrinks_below_the_size_seen() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(10_000).unwrap();
        for how in [Reserved::Done, Reserved::Sparse, Reserved::ByZeroFill] {
            extend(f.as_fd(), 10_000, 5_000, how, "t").unwrap();
            assert_eq!(f.metadata().unwrap().len(), 10_000, "{how:?}");
            extend(f.as_fd(), 10_000, 10_000, how, "t").unwrap();
            assert_eq!(f.metadata().unwrap().len(), 10_000, "{how:?}");
        }
        // fallocate only ever raises the size, even from a stale `from`.
        extend(f.as_fd(), 1_000, 5_000, Reserved::Done, "t").unwrap();
        assert_eq!(f.metadata().unwrap().len(), 10_000);
        extend(f.as_fd(), 10_000, 12_000, Reserved::Sparse, "t").unwrap();
        assert_eq!(f.metadata().unwrap().len(), 12_000);
    }

    #[test]
    #[cfg_attr(miri, ignore = "files and directories")]
    fn portable_publish_links_without_replacing_and_drops_the_old_name() {
        // The non-Linux publish path (link + unlink), exercised on Linux.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tmp"), b"staged").unwrap();
        std::fs::write(dir.path().join("taken"), b"someone").unwrap();
        let d = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let taken = link_then_unlink(d.as_fd(), OsStr::new("tmp"), OsStr::new("taken"), "t");
        assert_eq!(taken.unwrap_err().kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(dir.path().join("taken")).unwrap(), b"someone");
        link_then_unlink(d.as_fd(), OsStr::new("tmp"), OsStr::new("final"), "t").unwrap();
        assert_eq!(std::fs::read(dir.path().join("final")).unwrap(), b"staged");
        assert!(!dir.path().join("tmp").exists());
    }

    #[test]
    fn file_len_refuses_what_off_t_cannot_hold() {
        assert_eq!(file_len(4096, "t").unwrap(), 4096);
        assert_eq!(
            file_len(usize::MAX, "t").unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
    }

    #[test]
    fn locate_refuses_paths_without_a_file_name() {
        for p in ["/", "..", "", "a/b/", "x/..", ".", "seg/.", "x/y/.", "/."] {
            assert_eq!(
                locate(Path::new(p), "t").unwrap_err().kind(),
                ErrorKind::InvalidPath,
                "{p:?}"
            );
        }
    }
}
