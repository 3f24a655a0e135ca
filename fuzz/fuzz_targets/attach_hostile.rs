//! Hostile files at the path: arbitrary type, size (including 0 and huge
//! sparse sizes), mode bits, owner (when running as root), and truncation
//! after attach, followed by `attach` or `attach_fd` and accesses. The
//! result must always be the error the file's state calls for, or a correct
//! mapping; never a panic, a hang or a fault.
#![no_main]

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rustix::fs::{FileType, Mode, CWD};
use shm_region::{ErrorKind, MmapOptions};

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular,
    SymlinkToRegular,
    DanglingSymlink,
    Directory,
    Fifo,
    Socket,
    CharDevice,
    /// A memfd sealed with `F_SEAL_SHRINK` (as `create_sealed` makes),
    /// passed by descriptor.
    SealedMemfd,
    /// A memfd that allows sealing but was never sealed, by descriptor.
    UnsealedMemfd,
    /// A memfd made with `MFD_HUGETLB` and sealed with `F_SEAL_SHRINK`, by
    /// descriptor: always `Unsupported` (skipped where the kernel has no
    /// hugetlbfs).
    HugetlbMemfd,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Size {
    Bytes(u16),
    Pages(u8),
    /// `1 << (20 + n % 27)`: sparse, up to 64 TiB.
    Huge(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: Kind,
    size: Size,
    mode: u16,
    other_owner: bool,
    by_fd: bool,
    allow_other_owner: bool,
    allow_shared_write: bool,
    require_seal: bool,
    truncate_to: Option<u32>,
    accesses: Vec<(u32, u16)>,
}

fn size_of(s: Size) -> u64 {
    match s {
        Size::Bytes(n) => u64::from(n),
        Size::Pages(p) => u64::from(p) * 4096,
        Size::Huge(n) => 1u64 << (20 + u32::from(n % 27)),
    }
}

fn byte_at(i: u64) -> u8 {
    u8::try_from(i % 251).unwrap()
}

/// Makes the hostile object at `path`; returns the regular file's real path
/// (the link target for a symlink).
fn plant(dir: &Path, path: &Path, input: &Input, size: u64) -> Option<std::path::PathBuf> {
    let regular = dir.join("target");
    let make_regular = |p: &Path| {
        let f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(p)
            .unwrap();
        f.set_len(size).unwrap();
        // Recognisable bytes at the start and at the end.
        let head = size.min(4096);
        let bytes: Vec<u8> = (0..head).map(byte_at).collect();
        std::os::unix::fs::FileExt::write_all_at(&f, &bytes, 0).unwrap();
        std::fs::set_permissions(
            p,
            std::fs::Permissions::from_mode(u32::from(input.mode & 0o777)),
        )
        .unwrap();
        if input.other_owner && rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        }
    };
    match input.kind {
        Kind::Regular => {
            make_regular(path);
            Some(path.to_path_buf())
        }
        Kind::SymlinkToRegular => {
            make_regular(&regular);
            std::os::unix::fs::symlink(&regular, path).unwrap();
            Some(regular)
        }
        Kind::DanglingSymlink => {
            std::os::unix::fs::symlink(dir.join("nowhere"), path).unwrap();
            None
        }
        Kind::Directory => {
            std::fs::create_dir(path).unwrap();
            None
        }
        Kind::Fifo => {
            rustix::fs::mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
            None
        }
        Kind::Socket => {
            // The listener is dropped, the socket file stays.
            drop(std::os::unix::net::UnixListener::bind(path).unwrap());
            None
        }
        Kind::SealedMemfd | Kind::UnsealedMemfd | Kind::HugetlbMemfd => None,
        Kind::CharDevice => {
            let null = rustix::fs::makedev(1, 3);
            if rustix::fs::mknodat(
                CWD,
                path,
                FileType::CharacterDevice,
                Mode::from_raw_mode(0o600),
                null,
            )
            .is_err()
            {
                // Not root: a FIFO stands in for "not a regular file".
                rustix::fs::mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .unwrap();
            }
            None
        }
    }
}

/// A memfd of `size` bytes with the recognisable head, mode and owner of
/// `plant`, sealed against shrinking or not.
fn memfd(input: &Input, size: u64, sealed: bool) -> OwnedFd {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd =
        rustix::fs::memfd_create("fuzz", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    if sealed {
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::SEAL).unwrap();
    }
    rustix::fs::ftruncate(&fd, size).unwrap();
    let head: Vec<u8> = (0..size.min(4096)).map(byte_at).collect();
    rustix::io::pwrite(&fd, &head, 0).unwrap();
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(u32::from(input.mode & 0o777))).unwrap();
    if input.other_owner && rustix::process::geteuid().is_root() {
        let nobody = rustix::process::Uid::from_raw(65534);
        rustix::fs::fchown(&fd, Some(nobody), None).unwrap();
    }
    fd
}

/// A sealed `MFD_HUGETLB` memfd of `size` rounded up to 2 MiB, with the
/// mode and owner of `plant`; `None` where hugetlb memfds cannot be made.
/// Sizing needs no huge pages (they are taken at mapping time).
fn hugetlb_memfd(input: &Input, size: u64) -> Option<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING | MemfdFlags::HUGETLB;
    let fd = rustix::fs::memfd_create("fuzz-huge", flags).ok()?;
    let huge = 2u64 << 20;
    rustix::fs::ftruncate(&fd, size.checked_add(huge - 1)? / huge * huge).ok()?;
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::SEAL).ok()?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(u32::from(input.mode & 0o777))).unwrap();
    if input.other_owner && rustix::process::geteuid().is_root() {
        let nobody = rustix::process::Uid::from_raw(65534);
        rustix::fs::fchown(&fd, Some(nobody), None).unwrap();
    }
    Some(fd)
}

fuzz_target!(|input: Input| {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let path = dir.path().join("segment");
    let size = size_of(input.size);
    let regular = plant(dir.path(), &path, &input, size);
    let root = rustix::process::geteuid().is_root();

    let mut options = MmapOptions::new();
    options
        .allow_other_owner(input.allow_other_owner)
        .allow_group_or_other_write(input.allow_shared_write)
        .require_shrink_seal(input.require_seal);
    if input.kind == Kind::HugetlbMemfd {
        // Refused before any other check (owner, mode, size, seal), by
        // both descriptor attaches.
        let Some(fd) = hugetlb_memfd(&input, size) else {
            return;
        };
        let again = fd.try_clone().unwrap();
        for result in [options.attach_fd(fd), options.attach_fd_read_only(again)] {
            let err = result.expect_err("attached a hugetlb memfd");
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{input:?}: {err}");
        }
        return;
    }
    let is_memfd = matches!(input.kind, Kind::SealedMemfd | Kind::UnsealedMemfd);
    let memfd_fd = is_memfd.then(|| memfd(&input, size, input.kind == Kind::SealedMemfd));

    let mut peer: Option<OwnedFd> = None;
    // Attach by descriptor: the sender opened it (following links, as a
    // peer might) non-blocking; objects that cannot be opened so are skipped.
    let result = if let Some(fd) = memfd_fd {
        // A second descriptor of the same file, for the hostile truncation.
        let keep = fd.try_clone().unwrap();
        let r = options.attach_fd(fd);
        peer = Some(keep);
        r
    } else if input.by_fd {
        let fd: Option<OwnedFd> = OpenOptions::new()
            .read(true)
            .write(input.kind != Kind::Directory)
            .custom_flags(i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap())
            .open(&path)
            .ok()
            .map(Into::into);
        match fd {
            Some(fd) => options.attach_fd(fd),
            None => return,
        }
    } else {
        options.attach(&path)
    };

    // What the file's state calls for.
    let by_fd_follows = input.by_fd && input.kind == Kind::SymlinkToRegular;
    let is_regular = input.kind == Kind::Regular || by_fd_follows || is_memfd;
    let sealed = input.kind == Kind::SealedMemfd;
    let mode = u32::from(input.mode & 0o777);
    let expected = if !is_regular {
        match input.kind {
            Kind::DanglingSymlink | Kind::SymlinkToRegular | Kind::Directory | Kind::Fifo => {
                Some(ErrorKind::NotRegularFile)
            }
            Kind::Socket | Kind::CharDevice => Some(ErrorKind::NotRegularFile),
            Kind::Regular | Kind::SealedMemfd | Kind::UnsealedMemfd | Kind::HugetlbMemfd => {
                unreachable!()
            }
        }
    } else if !is_memfd && input.other_owner && root && !input.allow_other_owner {
        // A memfd has no name anyone could open: its owner and mode are
        // not held against it (issue 18).
        Some(ErrorKind::UntrustedOwner)
    } else if !is_memfd && mode & 0o022 != 0 && !input.allow_shared_write {
        Some(ErrorKind::InsecureMode)
    } else if size == 0 {
        Some(ErrorKind::EmptyFile)
    } else if input.require_seal && !sealed {
        Some(ErrorKind::NotSealed)
    } else {
        None
    };

    let mut region = match (expected, result) {
        (Some(kind), Err(e)) => {
            assert_eq!(e.kind(), kind, "{input:?}: {e}");
            return;
        }
        (Some(kind), Ok(_)) => panic!("attached where {kind:?} was due: {input:?}"),
        (None, Err(e)) => {
            // Only the OS may still refuse (permission without root, or no
            // address space for a huge file), or the address-space rules a
            // huge file meets without max_size (past a quarter of what is
            // left, or past the half that such mappings share).
            match e.kind() {
                ErrorKind::Os => assert!(!root || size >= 1 << 40, "{input:?}: {e}"),
                ErrorKind::FileTooLarge => assert!(size >= 1 << 40, "{input:?}: {e}"),
                other => panic!("{other:?}: {input:?}: {e}"),
            }
            return;
        }
        (None, Ok(r)) => r,
    };
    let len = usize::try_from(size).unwrap();
    assert_eq!((region.len(), region.generation()), (len, 0));
    assert_eq!(region.is_shrink_sealed(), sealed);
    let view = region.region();

    // Accesses before any truncation: exact bytes or OutOfBounds.
    let mut limit = len;
    let check = |view: &shm_region::Region, limit: usize, accesses: &[(u32, u16)]| {
        for &(off, n) in accesses.iter().take(16) {
            let n = usize::from(n % 4097);
            // Half the accesses land around the end (or the fence).
            let off = if off & 0x8000_0000 != 0 {
                let jitter = usize::try_from(off & 0xf).unwrap();
                (limit.saturating_sub(n) + jitter).saturating_sub(8)
            } else {
                usize::try_from(off).unwrap() % (limit + 8192)
            };
            let mut buf = vec![0xEE; n];
            let res = view.read_at(off, &mut buf);
            if off <= limit && n <= limit - off {
                res.unwrap();
                for (i, b) in buf.iter().enumerate() {
                    let at = u64::try_from(off + i).unwrap();
                    let want = if at < size.min(4096) { byte_at(at) } else { 0 };
                    assert_eq!(*b, want, "byte {at}");
                }
            } else {
                // Past the view's length: OutOfBounds; inside it but past a
                // truncation the handle has seen: Truncated (one rule,
                // whichever path saw the truncation).
                let past_len = off > len || n > len - off;
                let want = if past_len {
                    ErrorKind::OutOfBounds
                } else {
                    ErrorKind::Truncated
                };
                assert_eq!(res.unwrap_err().kind(), want);
            }
            let aligned = off & !7;
            match view.atomic_u64(aligned) {
                Ok(a) => {
                    assert!(aligned + 8 <= limit);
                    let _ = a.load(Ordering::Acquire);
                }
                Err(e) => {
                    let want = if aligned + 8 > len {
                        ErrorKind::OutOfBounds
                    } else {
                        ErrorKind::Truncated
                    };
                    assert_eq!(e.kind(), want);
                    assert!(aligned + 8 > limit);
                }
            }
        }
    };
    check(&view, limit, &input.accesses);

    // A hostile truncation after attach, then detection, then accesses.
    if let Some(to) = input.truncate_to {
        let to = u64::from(to) % size;
        let result = match (&peer, &regular) {
            (Some(fd), _) => rustix::fs::ftruncate(fd, to).map_err(std::io::Error::from),
            (None, Some(target)) => OpenOptions::new()
                .write(true)
                .open(target)
                .and_then(|f| f.set_len(to)),
            (None, None) => unreachable!("attached without a file"),
        };
        if sealed {
            // The kernel refuses; nothing changes for anyone.
            assert_eq!(
                result.unwrap_err().raw_os_error(),
                Some(rustix::io::Errno::PERM.raw_os_error())
            );
            assert!(!region.check_and_remap().unwrap());
            check(&view, limit, &input.accesses);
            return;
        }
        result.unwrap();
        let err = region.check_and_remap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated);
        limit = usize::try_from(to).unwrap();
        check(&view, limit, &input.accesses);
        check(&region.region(), limit, &input.accesses);
        assert_eq!(region.region().len(), len, "the mapping length is kept");
    } else {
        assert!(!region.check_and_remap().unwrap());
    }
});
