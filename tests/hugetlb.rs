//! Files on hugetlbfs (a `hugetlbfs` mount, or a memfd made with
//! `MFD_HUGETLB`) are refused with `Unsupported` by every attach and by
//! `create`/`stage`: a holder can punch a huge page out, which
//! `F_SEAL_SHRINK` does not prevent, and with the pool exhausted every
//! peer's next access would raise `SIGBUS`.
#![cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
#![cfg(unix)]

mod common;

use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::*;
use rustix::fs::{MemfdFlags, Mode, SealFlags};
use shm_region::{ErrorKind, FileCleanup, MmapOptions, MmapRegion};

const HUGE_PAGE: u64 = 2 << 20;
const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// The tests of this binary share the huge-page pool setting.
static POOL: Mutex<()> = Mutex::new(());

/// Raises `nr_hugepages` to at least 8 for the guard's life, then restores
/// the old value.
struct HugePages {
    old: String,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl HugePages {
    fn get() -> Result<Self, String> {
        let serial = POOL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !is_root() {
            return Err("not running as root".into());
        }
        let old = std::fs::read_to_string(NR_HUGEPAGES).map_err(|e| e.to_string())?;
        let have: u64 = old.trim().parse().map_err(|e| format!("{e}"))?;
        let guard = Self {
            old,
            _serial: serial,
        };
        if have < 8 {
            std::fs::write(NR_HUGEPAGES, "8").map_err(|e| e.to_string())?;
        }
        let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(|e| e.to_string())?;
        let free = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("HugePages_Free:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let size_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("Hugepagesize:"))
            .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok());
        if size_kib != Some(HUGE_PAGE / 1024) {
            return Err(format!("default huge page size is {size_kib:?} KiB"));
        }
        if free < 2 {
            return Err(format!("only {free} free huge pages"));
        }
        Ok(guard)
    }
}

impl Drop for HugePages {
    fn drop(&mut self) {
        let _ = std::fs::write(NR_HUGEPAGES, self.old.trim());
    }
}

/// A hugetlbfs mounted on a temporary directory, unmounted on drop.
struct Hugetlbfs {
    dir: tempfile::TempDir,
}

impl Hugetlbfs {
    fn mount() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "hugetlbfs", "-o", "mode=0700", "none"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t hugetlbfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Hugetlbfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A memfd as a hostile sender would make it to pass the seal check: mode
/// 0600, 2 MiB, sealed with `F_SEAL_SHRINK | F_SEAL_SEAL`; `HUGETLB` or not.
fn sealed_memfd(hugetlb: bool) -> OwnedFd {
    let mut flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    if hugetlb {
        flags |= MemfdFlags::HUGETLB;
    }
    let fd = rustix::fs::memfd_create("hostile", flags).unwrap();
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600)).unwrap();
    rustix::fs::ftruncate(&fd, HUGE_PAGE).unwrap();
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::SEAL).unwrap();
    assert_eq!(
        rustix::fs::fcntl_get_seals(&fd).unwrap(),
        SealFlags::SHRINK | SealFlags::SEAL
    );
    fd
}

fn dup(fd: &OwnedFd) -> OwnedFd {
    fd.try_clone().unwrap()
}

macro_rules! pool_or_skip {
    ($test:literal) => {
        match HugePages::get() {
            Ok(p) => p,
            Err(why) => {
                skip($test, &format!("no huge pages: {why}"));
                return;
            }
        }
    };
}

#[test]
fn shrink_sealed_hugetlb_memfd_is_refused_by_every_attach_by_descriptor() {
    let _pool =
        pool_or_skip!("shrink_sealed_hugetlb_memfd_is_refused_by_every_attach_by_descriptor");
    let fd = sealed_memfd(true);

    let err = MmapRegion::attach_fd(dup(&fd)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.operation(), "attach_fd");
    let sealed_only = MmapOptions::new()
        .require_shrink_seal(true)
        .attach_fd(dup(&fd))
        .unwrap_err();
    assert_eq!(sealed_only.kind(), ErrorKind::Unsupported);
    let err = MmapRegion::attach_fd_read_only(dup(&fd)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.operation(), "attach_fd_read_only");
    // Nothing was mapped or reserved from the pool by the refusals.
    assert!(!maps_inode(rustix::fs::fstat(&fd).unwrap().st_ino));

    // The same memfd without HUGETLB is accepted with the seal required:
    // huge pages are the only difference.
    let ordinary = MmapOptions::new()
        .require_shrink_seal(true)
        .attach_fd(sealed_memfd(false))
        .unwrap();
    assert_eq!(ordinary.len(), 2 << 20);
    assert!(ordinary.is_shrink_sealed());
}

#[test]
fn file_on_a_hugetlbfs_mount_is_refused_by_attach_and_attach_read_only() {
    let _pool =
        pool_or_skip!("file_on_a_hugetlbfs_mount_is_refused_by_attach_and_attach_read_only");
    let mnt = match Hugetlbfs::mount() {
        Ok(m) => m,
        Err(why) => {
            skip(
                "file_on_a_hugetlbfs_mount_is_refused_by_attach_and_attach_read_only",
                &why,
            );
            return;
        }
    };
    let path = mnt.path().join("segment");
    let f = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    f.set_len(HUGE_PAGE).unwrap();
    drop(f);

    let err = MmapRegion::attach(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.operation(), "attach");
    let err = MmapRegion::attach_read_only(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.operation(), "attach_read_only");
    let md = std::fs::metadata(&path).unwrap();
    assert_eq!((md.len(), md.mode() & 0o7777), (HUGE_PAGE, 0o600));
    assert!(!maps_inode(md.ino()));
}

#[test]
fn create_and_stage_on_a_hugetlbfs_mount_fail_with_unsupported_and_leave_nothing() {
    let _pool = pool_or_skip!(
        "create_and_stage_on_a_hugetlbfs_mount_fail_with_unsupported_and_leave_nothing"
    );
    let mnt = match Hugetlbfs::mount() {
        Ok(m) => m,
        Err(why) => {
            skip(
                "create_and_stage_on_a_hugetlbfs_mount_fail_with_unsupported_and_leave_nothing",
                &why,
            );
            return;
        }
    };
    let path = mnt.path().join("segment");
    let listing = || -> Vec<_> {
        std::fs::read_dir(mnt.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    };
    for size in [4096, 2 << 20] {
        for cleanup in [FileCleanup::Manual, FileCleanup::Auto] {
            let err = MmapRegion::create(&path, size, cleanup).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{size} {cleanup:?}");
            assert_eq!(err.operation(), "create");
            assert_eq!(listing(), Vec::<std::ffi::OsString>::new());
        }
        let err = MmapRegion::stage(&path, size).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "stage {size}");
        assert_eq!(listing(), Vec::<std::ffi::OsString>::new());
    }
}

#[test]
fn frozen_hugetlb_memfd_is_refused_by_frozen_attach_fd() {
    let _pool = pool_or_skip!("frozen_hugetlb_memfd_is_refused_by_frozen_attach_fd");
    let frozen_memfd = |hugetlb: bool| {
        let mut flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
        if hugetlb {
            flags |= MemfdFlags::HUGETLB;
        }
        let fd = rustix::fs::memfd_create("frozen", flags).unwrap();
        rustix::fs::ftruncate(&fd, HUGE_PAGE).unwrap();
        if !hugetlb {
            // Every page written: `Frozen::attach_fd` refuses holes.
            let zeros = vec![0u8; usize::try_from(HUGE_PAGE).unwrap()];
            let mut off = 0;
            while off < zeros.len() {
                off += rustix::io::pwrite(&fd, &zeros[off..], u64::try_from(off).unwrap()).unwrap();
            }
        }
        rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK)
            .unwrap();
        fd
    };
    let fd = frozen_memfd(true);
    let err = shm_region::Frozen::attach_fd(dup(&fd)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.operation(), "Frozen::attach_fd");
    assert!(!maps_inode(rustix::fs::fstat(&fd).unwrap().st_ino));
    // The same seals without HUGETLB are accepted.
    let ordinary = shm_region::Frozen::attach_fd(frozen_memfd(false)).unwrap();
    assert_eq!(ordinary.len(), 2 << 20);
}
