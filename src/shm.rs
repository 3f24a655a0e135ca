//! POSIX shared-memory names (the names `shm_open` takes), for
//! [`MmapRegion::create_shm`](crate::MmapRegion::create_shm), [`MmapRegion::attach_shm`](crate::MmapRegion::attach_shm) and
//! [`MmapRegion::attach_shm_read_only`](crate::MmapRegion::attach_shm_read_only).
//!
//! The constructors are in `open.rs`; this module checks a name once
//! ([`bare_name`]) and resolves it:
//!
//! - On Linux (and Android) the segment *is* the file `/dev/shm/<name>`
//!   (what glibc's `shm_open` opens, and what Python's
//!   `multiprocessing.shared_memory` and C programs make), so the name goes
//!   through the hardened path code unchanged: exclusive creation with
//!   `O_NOFOLLOW` and mode `0600`, attach through `O_PATH` and a reopen of
//!   the verified inode, the name looked up again for its link count, and
//!   removal only of our own file (device and inode compared). rustix's
//!   `shm::open` is not used there: its Linux backend opens
//!   `/dev/shm/<name>` without `O_NOFOLLOW`, so a symbolic link planted
//!   under the name would be followed (tested:
//!   `rustix_shm_open_follows_a_planted_symlink_where_attach_shm_refuses_it`).
//! - Elsewhere the name goes to the system's `shm_open` and `shm_unlink`
//!   (through `rustix::shm`), where shared-memory objects are not files of
//!   a directory anyone can plant links in: creation is
//!   `O_CREAT|O_EXCL` with mode `0600`, the object opened is checked as an
//!   `attach_fd` descriptor is (owner, mode, links, size), and removal first
//!   reopens the name and compares device and inode. On Apple systems
//!   `fstat` of a shared-memory object reports no file type (accepted
//!   there as the shared-memory type) and device and inode 0 for every
//!   object, so removal there cannot tell our object from another one put
//!   under the name: it removes whatever the name names. That route is
//!   compiled for macOS and FreeBSD in CI and run on Linux by this module's
//!   tests; it has not been run on those systems, and nothing is claimed
//!   for them beyond what the code says.

use crate::error::{Error, ErrorKind, Result};

/// The longest name, without its leading `/` (`NAME_MAX`).
pub(crate) const NAME_MAX: usize = 255;

/// Why a name is refused.
const BAD_NAME: &str = "shm name must be 1 to 255 bytes after one optional leading '/', with no other '/', no NUL, and not '.' or '..'";

/// `name` without its one optional leading `/`, if it is a valid name:
/// `InvalidPath` otherwise.
pub(crate) fn bare_name<'a>(name: &'a str, op: &'static str) -> Result<&'a str> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty()
        || bare == "."
        || bare == ".."
        || bare.len() > NAME_MAX
        || bare.contains(['/', '\0'])
    {
        return Err(Error::new(ErrorKind::InvalidPath, op).because(BAD_NAME));
    }
    Ok(bare)
}

/// The directory POSIX shared-memory objects are files of on Linux.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SHM_DIR: &str = "/dev/shm";

/// The file a (valid, bare) name stands for on Linux: `/dev/shm/<name>`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn path_of(bare: &str) -> std::path::PathBuf {
    std::path::Path::new(SHM_DIR).join(bare)
}

/// The `shm_open` route, used off Linux; compiled for tests on Linux too,
/// so that it runs somewhere.
#[cfg(any(
    all(test, not(miri), not(loom)),
    not(any(target_os = "linux", target_os = "android"))
))]
pub(crate) mod portable {
    use super::*;
    use rustix::io::Errno;
    use rustix::shm;
    use std::os::fd::OwnedFd;

    /// `shm_open`'s spelling of a bare name.
    pub(crate) fn slashed(bare: &str) -> String {
        format!("/{bare}")
    }

    /// `shm_open(name, O_CREAT | O_EXCL | O_RDWR, mode)`: a new object,
    /// never an existing one.
    pub(crate) fn create(bare: &str, mode: rustix::fs::Mode, op: &'static str) -> Result<OwnedFd> {
        shm::open(
            slashed(bare).as_str(),
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            mode,
        )
        .map_err(|e| shm_error(op, e))
    }

    /// `shm_unlink`, right after a failed creation whose identity could
    /// not be read.
    pub(crate) fn unlink(bare: &str) -> rustix::io::Result<()> {
        shm::unlink(slashed(bare).as_str())
    }

    /// `shm_open(name, O_RDWR or O_RDONLY)`.
    pub(crate) fn open(bare: &str, writable: bool, op: &'static str) -> Result<OwnedFd> {
        let access = if writable {
            shm::OFlags::RDWR
        } else {
            shm::OFlags::RDONLY
        };
        shm::open(slashed(bare).as_str(), access, rustix::fs::Mode::empty())
            .map_err(|e| shm_error(op, e))
    }

    /// Removes the object `name` (with its slash) only if it is still the
    /// one `(dev, ino)`. Between the check and `shm_unlink` a process of
    /// the same user could replace it; such a process could remove it
    /// anyway. On Apple systems `fstat` gives shared-memory objects no
    /// identity (device and inode are 0 for every one), so there the
    /// comparison always matches: the name is removed whatever object it
    /// names by then.
    pub(crate) fn remove_if_same(
        name: &str,
        dev: rustix::fs::Dev,
        ino: u64,
    ) -> rustix::io::Result<bool> {
        let fd = match shm::open(name, shm::OFlags::RDONLY, rustix::fs::Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(e),
        };
        let st = rustix::fs::fstat(&fd)?;
        if (st.st_dev, st.st_ino) != (dev, ino) {
            return Ok(false);
        }
        shm::unlink(name).map(|()| true)
    }

    /// An `shm_open` failure: a name the system finds too long is an
    /// invalid name.
    fn shm_error(op: &'static str, e: Errno) -> Error {
        match e {
            Errno::NAMETOOLONG | Errno::INVAL => {
                Error::with_errno(ErrorKind::InvalidPath, op, e).because(BAD_NAME)
            }
            e => Error::os(op, e),
        }
    }
}

/// The checks of names, which need no shared memory object (so Miri runs
/// them too).
#[cfg(all(test, not(loom)))]
mod name_tests {
    use super::*;

    #[test]
    fn bare_name_takes_one_optional_leading_slash() {
        assert_eq!(bare_name("seg", "t").unwrap(), "seg");
        assert_eq!(bare_name("/seg", "t").unwrap(), "seg");
        assert_eq!(bare_name(".hidden", "t").unwrap(), ".hidden");
        assert_eq!(bare_name("...", "t").unwrap(), "...");
        let longest = "n".repeat(NAME_MAX);
        assert_eq!(bare_name(&longest, "t").unwrap(), longest);
        assert_eq!(bare_name(&format!("/{longest}"), "t").unwrap(), longest);
    }

    #[test]
    fn bare_name_refuses_empty_dots_slashes_nul_and_overlong_names() {
        let overlong = "n".repeat(NAME_MAX + 1);
        for name in [
            "", "/", ".", "/.", "..", "/..", "//seg", "a/b", "/a/b", "seg/", "a\0b", &overlong,
        ] {
            let err = bare_name(name, "t").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidPath, "{name:?}");
            assert_eq!(err.to_string(), format!("t: {BAD_NAME}"), "{name:?}");
        }
    }
}

#[cfg(all(test, not(miri), not(loom)))]
mod tests {
    use super::*;
    use crate::{FileCleanup, MmapOptions, MmapRegion};
    use std::path::Path;

    fn unique(tag: &str) -> String {
        format!("shm-region-unit-{tag}-{}", std::process::id())
    }

    #[test]
    fn portable_create_attach_and_remove_by_name() {
        let bare = unique("portable");
        let o = MmapOptions::new();
        let host =
            MmapRegion::create_shm_object(&o, &bare, 8192, FileCleanup::Manual, "t").unwrap();
        assert!(Path::new("/dev/shm").join(&bare).exists());
        host.region().write_at(100, b"portable").unwrap();
        let guest = MmapRegion::attach_shm_object(&o, &bare, true, "t").unwrap();
        let mut buf = [0u8; 8];
        guest.region().read_at(100, &mut buf).unwrap();
        assert_eq!((&buf, guest.len()), (b"portable", 8192));
        let again =
            MmapRegion::create_shm_object(&o, &bare, 4096, FileCleanup::Manual, "t").unwrap_err();
        assert_eq!(again.kind(), ErrorKind::AlreadyExists);
        drop(guest);
        drop(host);
        assert!(!Path::new("/dev/shm").join(&bare).exists());
        let gone = MmapRegion::attach_shm_object(&o, &bare, false, "t").unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn portable_auto_cleanup_leaves_no_name_and_drop_keeps_a_replacement() {
        let bare = unique("portable-auto");
        let o = MmapOptions::new();
        let host = MmapRegion::create_shm_object(&o, &bare, 4096, FileCleanup::Auto, "t").unwrap();
        assert!(!Path::new("/dev/shm").join(&bare).exists());
        host.region().write_at(0, b"x").unwrap();
        drop(host);

        // A Manual segment whose name was replaced: drop keeps the new one.
        let host =
            MmapRegion::create_shm_object(&o, &bare, 4096, FileCleanup::Manual, "t").unwrap();
        let path = Path::new("/dev/shm").join(&bare);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        drop(host);
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_create_that_fails_after_the_object_exists_leaves_no_name() {
        // isize::MAX passes the size checks; the mapping then fails (past
        // the share of created regions without max_size, or with an
        // explicit max_size in mmap), after the object was made.
        let size = usize::try_from(isize::MAX).unwrap();
        let mut bounded = MmapOptions::new();
        bounded.max_size(size);
        for (o, kind) in [
            (MmapOptions::new(), ErrorKind::FileTooLarge),
            (bounded, ErrorKind::FileTooLarge),
        ] {
            for cleanup in [FileCleanup::Manual, FileCleanup::Auto] {
                let bare = unique("portable-fails");
                let err = MmapRegion::create_shm_object(&o, &bare, size, cleanup, "t").unwrap_err();
                assert_eq!(err.kind(), kind, "{err}");
                assert!(!Path::new("/dev/shm").join(&bare).exists(), "{err}");
                // And through the public call (on Linux, the path code).
                let err = o.create_shm(&bare, size, cleanup).unwrap_err();
                assert_eq!(err.kind(), kind, "{err}");
                assert!(!Path::new("/dev/shm").join(&bare).exists(), "{err}");
            }
        }
    }

    #[test]
    fn portable_remove_if_same_leaves_a_missing_or_other_object() {
        let name = format!("/{}", unique("portable-remove"));
        assert_eq!(
            portable::remove_if_same(&name, Default::default(), 1),
            Ok(false)
        );
        let path = Path::new("/dev/shm").join(&name[1..]);
        std::fs::write(&path, b"other").unwrap();
        assert_eq!(
            portable::remove_if_same(&name, Default::default(), 1),
            Ok(false)
        );
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
    }
}
