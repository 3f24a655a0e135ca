//! `RLIMIT_FSIZE`: a growth or creation past the process's file-size limit
//! is `FileTooLarge` before anything changes, instead of `SIGXFSZ` (which
//! ends the process by default). The limit is process-wide, so the test
//! body runs in a child process.
#![cfg(all(unix, not(miri)))]

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use shm_region::{ErrorKind, FileCleanup, MmapRegion};

#[test]
fn growth_past_the_file_size_limit_is_file_too_large_and_changes_nothing() {
    const NAME: &str = "growth_past_the_file_size_limit_is_file_too_large_and_changes_nothing";
    if role().as_deref() != Some("fsize") {
        let mut child = spawn_self(NAME, "fsize", &[]).spawn().unwrap();
        // Killed by SIGXFSZ would fail here.
        assert_child_succeeds(&mut child);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut r = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    let blocks = std::fs::metadata(&path).unwrap().blocks();
    let old = getrlimit(Resource::Fsize);
    setrlimit(
        Resource::Fsize,
        Rlimit {
            current: Some(1 << 20),
            maximum: old.maximum,
        },
    )
    .unwrap();
    assert_eq!(kind(r.resize(2 << 20)), ErrorKind::FileTooLarge);
    let md = std::fs::metadata(&path).unwrap();
    assert_eq!((md.len(), md.blocks()), (4096, blocks));
    assert_eq!((r.len(), r.generation()), (4096, 0));
    r.resize(1 << 20).unwrap();
    let other = dir.path().join("other");
    assert_eq!(
        kind(MmapRegion::create(&other, 2 << 20, FileCleanup::Manual)),
        ErrorKind::FileTooLarge
    );
    assert!(std::fs::symlink_metadata(&other).is_err(), "left a file");
    assert_eq!(
        kind(MmapRegion::stage(&other, 2 << 20)),
        ErrorKind::FileTooLarge
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// How many descriptors this process has open.
fn open_fd_count() -> usize {
    // The listing's own descriptor is among the entries.
    std::fs::read_dir("/proc/self/fd").unwrap().count() - 1
}

#[test]
fn attach_without_free_descriptors_is_emfile_and_leaks_none() {
    const NAME: &str = "attach_without_free_descriptors_is_emfile_and_leaks_none";
    if role().as_deref() != Some("nofile") {
        let mut child = spawn_self(NAME, "nofile", &[]).spawn().unwrap();
        assert_child_succeeds(&mut child);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let _host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    let before = open_fd_count();
    let old = getrlimit(Resource::Nofile);
    let limit = |n: usize| Rlimit {
        current: Some(u64::try_from(n).unwrap()),
        maximum: old.maximum,
    };
    // Exactly two free descriptors: fill every free number below the
    // limit, then close two. Attach by path needs more at once (the
    // directory, the O_PATH pin, /proc/thread-self/fd and the file).
    setrlimit(Resource::Nofile, limit(before + 8)).unwrap();
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    filler.truncate(filler.len() - 2);
    let err = MmapRegion::attach(&path).unwrap_err();
    drop(filler);
    assert_eq!(err.kind(), ErrorKind::Os, "{err:?}");
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::MFILE.raw_os_error())
    );
    setrlimit(Resource::Nofile, limit(before + 64)).unwrap();
    assert_eq!(open_fd_count(), before, "a descriptor leaked");
    assert_eq!(MmapRegion::attach(&path).unwrap().len(), 4096);
    assert_eq!(open_fd_count(), before);
}
