//! `MmapRegion::create`: exclusive, never following links, mode fixed at
//! creation, blocks reserved, nothing left behind on failure.
#![cfg(all(unix, not(miri)))]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::*;
use shm_region::{ErrorKind, FileCleanup, MmapOptions, MmapRegion};

#[test]
fn create_refuses_existing_file_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    std::fs::write(&path, b"precious bytes").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = fingerprint(&path);
    let err = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::AlreadyExists
    );
    assert_eq!(fingerprint(&path), before);
    assert_eq!(before.1 & 0o7777, 0o640);
}

#[test]
fn create_refuses_a_live_segment_that_peers_still_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let first = MmapRegion::create(&path, 8192, FileCleanup::Manual).unwrap();
    first.region().write_at(8000, b"alive").unwrap();
    assert_eq!(
        kind(MmapRegion::create(&path, 4096, FileCleanup::Manual)),
        ErrorKind::AlreadyExists
    );
    // The first segment was not truncated: its tail is still readable.
    let mut buf = [0u8; 5];
    first.region().read_at(8000, &mut buf).unwrap();
    assert_eq!(&buf, b"alive");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
}

#[test]
fn create_refuses_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("inside"), b"x").unwrap();
    assert_eq!(
        kind(MmapRegion::create(&path, 4096, FileCleanup::Auto)),
        ErrorKind::AlreadyExists
    );
    assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"x");
}

#[test]
fn create_refuses_symlink_and_leaves_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim");
    std::fs::write(&target, b"someone else's data").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = fingerprint(&target);
    let link = seg(&dir);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = MmapRegion::create(&link, 4096, FileCleanup::Manual).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        fingerprint(&target),
        before,
        "target truncated or re-permissioned"
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn create_refuses_dangling_symlink_and_creates_nothing_at_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("planted-target");
    let link = seg(&dir);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_eq!(
        kind(MmapRegion::create(&link, 4096, FileCleanup::Manual)),
        ErrorKind::AlreadyExists
    );
    assert!(!target.exists(), "followed the dangling link");
}

#[test]
fn create_sets_mode_0600_at_open_even_with_umask_zero() {
    // umask is process-wide, so this runs in a child process of its own.
    const NAME: &str = "create_sets_mode_0600_at_open_even_with_umask_zero";
    if let Some(dir) = role() {
        rustix::process::umask(rustix::fs::Mode::empty());
        let path = std::path::Path::new(&dir).join("segment");
        let region = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o7777;
        region.region().write_at(0, &mode.to_le_bytes()).unwrap();
        let mut r = region;
        r.release_ownership();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run_self(NAME, dir.path().to_str().unwrap());
    let md = std::fs::metadata(seg(&dir)).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o600);
    let mut seen = [0u8; 4];
    seen.copy_from_slice(&std::fs::read(seg(&dir)).unwrap()[..4]);
    assert_eq!(
        u32::from_le_bytes(seen),
        0o600,
        "mode seen by the creator itself"
    );
}

#[test]
fn create_mode_is_never_wider_than_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let _r = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    let mode = std::fs::metadata(&path).unwrap().mode() & 0o7777;
    assert_eq!(mode & !0o600, 0, "mode {mode:o} wider than 0600");
}

#[test]
fn create_reserves_blocks_for_the_whole_size() {
    let dir = tempfile::tempdir().unwrap();
    let size = 4 << 20;
    let path = seg(&dir);
    let region = MmapRegion::create(&path, size, FileCleanup::Manual).unwrap();
    let md = std::fs::metadata(&path).unwrap();
    assert_eq!(md.len(), 4 << 20);
    assert!(
        md.blocks() * 512 >= 4 << 20,
        "only {} bytes allocated",
        md.blocks() * 512
    );
    assert_eq!(region.len(), size);

    let sparse_path = dir.path().join("sparse");
    let _sparse = MmapOptions::new()
        .reserve_blocks(false)
        .create(&sparse_path, size, FileCleanup::Manual)
        .unwrap();
    assert_eq!(std::fs::metadata(&sparse_path).unwrap().blocks(), 0);
}

#[test]
fn create_maps_zeroed_memory_of_the_requested_size() {
    let dir = tempfile::tempdir().unwrap();
    let region = MmapRegion::create(seg(&dir), 10_000, FileCleanup::Manual).unwrap();
    assert_eq!(region.len(), 10_000);
    assert!(!region.is_empty());
    assert_eq!(region.generation(), 0);
    assert_eq!(region.path(), seg(&dir));
    let mut all = vec![0xAA; 10_000];
    region.region().read_at(0, &mut all).unwrap();
    assert!(all.iter().all(|&b| b == 0));
}

#[test]
fn create_rejects_sizes_that_cannot_be_mapped_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let too_big = usize::try_from(isize::MAX).unwrap() + 1;
    for size in [0, too_big, usize::MAX] {
        let err = MmapRegion::create(&path, size, FileCleanup::Manual).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSize, "size {size}");
        assert_eq!(
            std::io::Error::from(err).kind(),
            std::io::ErrorKind::InvalidInput
        );
        assert!(
            std::fs::symlink_metadata(&path).is_err(),
            "left a file for {size}"
        );
    }
}

#[test]
fn create_that_fails_after_opening_leaves_nothing_at_the_path() {
    // isize::MAX passes the size checks but cannot be mapped (with an
    // explicit max_size, mmap says ENOMEM) and without one is past the
    // quarter of the address space that regions created without max_size
    // may take:
    // both fail after the file was created.
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let size = usize::try_from(isize::MAX).unwrap();
    let err = MmapOptions::new()
        .max_size(size)
        .create(&path, size, FileCleanup::Manual)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err:?}");
    assert!(err.raw_os_error().is_some(), "{err:?}");
    assert!(
        std::fs::symlink_metadata(&path).is_err(),
        "file left behind"
    );
    let err = MmapRegion::create(&path, size, FileCleanup::Manual).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err:?}");
    assert!(
        err.to_string().contains(
            "would take the mappings of regions this process created made without a \
             max_size past "
        ) && err
            .to_string()
            .contains(" bytes, a quarter of the address space, together"),
        "{err}"
    );
    assert!(
        std::fs::symlink_metadata(&path).is_err(),
        "file left behind"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn create_rejects_paths_without_a_file_name_and_missing_directories() {
    assert_eq!(
        kind(MmapRegion::create("/", 4096, FileCleanup::Manual)),
        ErrorKind::InvalidPath
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("segment");
    assert_eq!(
        kind(MmapRegion::create(&missing, 4096, FileCleanup::Manual)),
        ErrorKind::NotFound
    );
}

#[test]
fn create_attach_and_stage_refuse_a_final_dot_or_dot_dot_component() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x");
    for p in [
        dir.path().join("x/."),
        dir.path().join("x/.."),
        dir.path().join("."),
    ] {
        assert_eq!(
            kind(MmapRegion::create(&p, 4096, FileCleanup::Manual)),
            ErrorKind::InvalidPath,
            "{p:?}"
        );
        assert_eq!(kind(MmapRegion::stage(&p, 4096)), ErrorKind::InvalidPath);
        assert_eq!(
            kind(MmapRegion::create(&p, 4096, FileCleanup::Auto)),
            ErrorKind::InvalidPath
        );
    }
    assert!(std::fs::symlink_metadata(&x).is_err(), "x was created");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // "seg/." must not attach "seg".
    let path = seg(&dir);
    let _host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    let dotted = dir.path().join("segment/.");
    assert_eq!(kind(MmapRegion::attach(&dotted)), ErrorKind::InvalidPath);
    assert_eq!(
        kind(MmapRegion::attach_read_only(&dotted)),
        ErrorKind::InvalidPath
    );
}

#[test]
fn create_past_max_size_is_file_too_large_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut opts = MmapOptions::new();
    opts.max_size(4096);
    assert_eq!(
        kind(opts.create(&path, 4097, FileCleanup::Manual)),
        ErrorKind::FileTooLarge
    );
    assert_eq!(kind(opts.stage(&path, 8192)), ErrorKind::FileTooLarge);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(
        opts.create(&path, 4096, FileCleanup::Manual).unwrap().len(),
        4096
    );
}
