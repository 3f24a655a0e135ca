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
