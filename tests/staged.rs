//! Staged publication: attachers never see a half-initialised segment, and
//! replacing a stale one never truncates a file someone still maps.
#![cfg(all(unix, not(miri)))]

mod common;

use common::*;
use shm_region::{ErrorKind, FileCleanup, MmapRegion};

fn names(dir: &tempfile::TempDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn staged_region_is_invisible_until_published_then_owned_like_a_creator() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let staged = MmapRegion::stage(&path, 8192).unwrap();
    assert_eq!(staged.path(), path);
    let tmp = names(&dir);
    assert_eq!(tmp.len(), 1);
    assert!(
        tmp[0].starts_with(".segment.") && tmp[0].ends_with(".stage"),
        "{tmp:?}"
    );
    let md = std::fs::metadata(dir.path().join(&tmp[0])).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
        0o600
    );
    assert_eq!(kind(MmapRegion::attach(&path)), ErrorKind::NotFound);
    staged.region().write_at(8000, b"initialised").unwrap();

    let host = staged.publish().unwrap();
    assert_eq!(names(&dir), ["segment"]);
    assert_eq!(host.path(), path);
    let guest = MmapRegion::attach(&path).unwrap();
    let mut b = [0u8; 11];
    guest.region().read_at(8000, &mut b).unwrap();
    assert_eq!(&b, b"initialised");
    drop(guest);
    drop(host);
    assert!(names(&dir).is_empty(), "the published handle owns its file");
}

#[test]
fn publish_refuses_a_taken_path_and_gives_the_stage_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    std::fs::write(&path, b"someone else's").unwrap();
    let staged = MmapRegion::stage(&path, 4096).unwrap();
    staged.region().write_at(0, b"mine").unwrap();
    let err = staged.publish().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
    // The error inside is the crate's, reachable as the source, and both
    // Debug and Display name it and the path.
    let source = std::error::Error::source(&err).expect("a source");
    let inner = source
        .downcast_ref::<shm_region::Error>()
        .expect("an Error");
    assert_eq!(inner.kind(), ErrorKind::AlreadyExists);
    assert_eq!(inner.path(), Some(path.as_path()));
    let debug = format!("{err:?}");
    assert!(
        debug.starts_with("PublishError { error: Error {"),
        "{debug}"
    );
    assert!(debug.contains(&format!("path: {path:?}")), "{debug}");
    assert_eq!(err.to_string(), inner.to_string());
    let staged = err.into_stage();
    let again = staged.publish().unwrap_err();
    let io: std::io::Error = again.into();
    assert_eq!(io.kind(), std::io::ErrorKind::AlreadyExists);
    // Converting dropped the stage: its temporary file is gone.
    assert_eq!(names(&dir), ["segment"]);
}

#[test]
fn publish_replace_swaps_in_a_new_segment_without_truncating_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let stale = MmapRegion::create(&path, 8192, FileCleanup::Manual).unwrap();
    stale.region().write_at(8000, b"old bytes").unwrap();
    let mut old_peer = MmapRegion::attach(&path).unwrap();

    let staged = MmapRegion::stage(&path, 4096).unwrap();
    staged.region().write_at(0, b"new bytes").unwrap();
    let fresh = staged.publish_replace().unwrap();

    // The old peer's memory is intact and its file was not truncated.
    let mut b = [0u8; 9];
    old_peer.region().read_at(8000, &mut b).unwrap();
    assert_eq!(&b, b"old bytes");
    assert!(!old_peer.check_and_remap().unwrap());
    assert_eq!(old_peer.len(), 8192);
    // New attachers get the new segment.
    let new_peer = MmapRegion::attach(&path).unwrap();
    assert_eq!(new_peer.len(), 4096);
    new_peer.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"new bytes");
    // The stale creator's drop leaves the new file alone.
    drop(stale);
    assert!(path.exists());
    drop(fresh);
    assert!(!path.exists());
}

#[test]
fn dropping_an_unpublished_stage_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let staged = MmapRegion::stage(seg(&dir), 4096).unwrap();
    assert_eq!(names(&dir).len(), 1);
    drop(staged);
    assert!(names(&dir).is_empty());
}

#[test]
fn stage_refuses_bad_sizes_and_paths_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        kind(MmapRegion::stage(seg(&dir), 0)),
        ErrorKind::InvalidSize
    );
    assert_eq!(kind(MmapRegion::stage("/", 4096)), ErrorKind::InvalidPath);
    assert!(names(&dir).is_empty());
}

#[test]
fn a_staged_region_can_grow_before_publication() {
    let dir = tempfile::tempdir().unwrap();
    let mut staged = MmapRegion::stage(seg(&dir), 4096).unwrap();
    staged.handle().resize(3 * 4096).unwrap();
    staged.region().write_at(3 * 4096 - 1, &[9]).unwrap();
    let host = staged.publish().unwrap();
    assert_eq!(host.len(), 3 * 4096);
    assert_eq!(MmapRegion::attach(seg(&dir)).unwrap().len(), 3 * 4096);
}

#[test]
fn publish_refuses_a_stage_a_peer_truncated_even_after_it_grows_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let staged = MmapRegion::stage(&path, 8192).unwrap();
    staged.region().write_at(0, b"header").unwrap();
    let tmp = dir.path().join(&names(&dir)[0]);
    let peer = std::fs::OpenOptions::new().write(true).open(&tmp).unwrap();
    peer.set_len(4096).unwrap();
    let err = staged.publish().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
    assert_eq!(err.error().path(), Some(path.as_path()));
    // Nothing was published: peers never attach to the short file.
    assert_eq!(kind(MmapRegion::attach(&path)), ErrorKind::NotFound);
    assert_eq!(names(&dir).len(), 1);
    // The stage stays refused (a detected truncation is sticky), and
    // dropping it removes its file.
    peer.set_len(8192).unwrap();
    let err = err.into_stage().publish_replace().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
    drop(err);
    assert!(names(&dir).is_empty());
}
