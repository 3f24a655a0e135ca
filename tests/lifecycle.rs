//! Who removes the file, when, and that only our own file is ever removed;
//! descriptors never leak into children.
#![cfg(all(unix, not(miri)))]

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use common::*;
use shm_region::{ErrorKind, FileCleanup, MmapRegion};

#[test]
fn manual_creator_owns_the_file_and_removes_it_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    assert!(path.exists());
    let guest = MmapRegion::attach(&path).unwrap();
    drop(guest);
    assert!(path.exists(), "an attached handle removed the file");
    drop(host);
    assert!(!path.exists());
}

#[test]
fn release_ownership_leaves_the_file_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    host.region().write_at(0, b"kept").unwrap();
    host.release_ownership();
    drop(host);
    assert_eq!(&std::fs::read(&path).unwrap()[..4], b"kept");
}

#[test]
fn attached_handle_removes_the_file_only_after_take_ownership() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    host.release_ownership();
    drop(host);
    drop(MmapRegion::attach(&path).unwrap());
    assert!(path.exists());
    let mut guest = MmapRegion::attach(&path).unwrap();
    guest.take_ownership();
    drop(guest);
    assert!(!path.exists());
}

#[test]
fn auto_cleanup_unlinks_at_once_and_shares_by_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut host = MmapRegion::create(&path, 4096, FileCleanup::Auto).unwrap();
    assert!(std::fs::symlink_metadata(&path).is_err(), "still linked");
    assert_eq!(host.path(), path);
    assert_eq!(kind(MmapRegion::attach(&path)), ErrorKind::NotFound);
    host.region().write_at(10, b"by fd").unwrap();
    let mut guest =
        MmapRegion::attach_fd(host.fd().unwrap().try_clone_to_owned().unwrap()).unwrap();
    let mut buf = [0u8; 5];
    guest.region().read_at(10, &mut buf).unwrap();
    assert_eq!(&buf, b"by fd");
    host.resize(8192).unwrap();
    assert!(guest.check_and_remap().unwrap());
    assert_eq!(guest.len(), 8192);
    // Nothing to own: taking ownership removes nothing that appeared since.
    std::fs::write(&path, b"newcomer").unwrap();
    host.take_ownership();
    drop(host);
    assert_eq!(std::fs::read(&path).unwrap(), b"newcomer");
}

#[test]
fn drop_leaves_a_different_file_renamed_over_the_path_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    let other = dir.path().join("other");
    std::fs::write(&other, b"newer segment").unwrap();
    std::fs::rename(&other, &path).unwrap();
    drop(host);
    assert_eq!(std::fs::read(&path).unwrap(), b"newer segment");
}

#[test]
fn drop_leaves_a_file_recreated_at_the_path_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    let old_ino = std::fs::metadata(&path).unwrap().ino();
    std::fs::remove_file(&path).unwrap();
    // Keep the old inode number from being reused by holding the mapping;
    // the new file is a different inode.
    let successor = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), old_ino);
    successor.region().write_at(0, b"successor").unwrap();
    drop(host);
    assert!(path.exists(), "the old handle removed its successor");
    let mut guest = MmapRegion::attach(&path).unwrap();
    let mut buf = [0u8; 9];
    guest.region().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"successor");
    assert!(!guest.check_and_remap().unwrap());
}

#[test]
fn drop_after_the_directory_was_renamed_removes_nothing_else() {
    // The handle removes relative to the directory it opened at create time,
    // so a new directory at the old path is not touched.
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("d");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("segment");
    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    let moved = dir.path().join("moved");
    std::fs::rename(&sub, &moved).unwrap();
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(&path, b"unrelated").unwrap();
    drop(host);
    assert_eq!(std::fs::read(&path).unwrap(), b"unrelated");
    assert!(
        !moved.join("segment").exists(),
        "our own file was removed where it is"
    );
}

#[test]
fn no_descriptor_of_the_crate_is_inherited_by_a_spawned_child() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    let guest = MmapRegion::attach(&path).unwrap();
    let auto = MmapRegion::create(dir.path().join("auto"), 4096, FileCleanup::Auto).unwrap();
    let ours = [
        host.fd().unwrap().as_raw_fd(),
        guest.fd().unwrap().as_raw_fd(),
        auto.fd().unwrap().as_raw_fd(),
    ];
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "for f in /proc/self/fd/*; do echo \"$f $(readlink $f)\"; done",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8(out.stdout).unwrap();
    let dir_s = dir.path().to_str().unwrap();
    for line in listing.lines() {
        assert!(!line.contains(dir_s), "child inherited {line}");
    }
    for fd in ours {
        assert!(
            !listing
                .lines()
                .any(|l| l.starts_with(&format!("/proc/self/fd/{fd} ")) && l.contains("segment")),
            "fd {fd} inherited"
        );
    }
    // The child did list its own standard descriptors, so the check ran.
    assert!(
        listing.lines().any(|l| l.starts_with("/proc/self/fd/0 ")),
        "{listing}"
    );
}

#[test]
fn auto_cleanup_never_gives_the_file_a_name() {
    const TEST: &str = "auto_cleanup_never_gives_the_file_a_name";
    // On the default file system, and on a tmpfs, where reserving the
    // blocks means zeroing every page (the longest window a name could be
    // seen in). Without a tmpfs (not root, no mount) the tmpfs half is a
    // logged skip, which CI (root, able to mount) does not allow.
    let scratch = tempfile::tempdir().unwrap();
    auto_files_never_appear_in(scratch.path());
    match Tmpfs::mount("96m") {
        Ok(tmpfs) => auto_files_never_appear_in(tmpfs.path()),
        Err(why) => skip(
            TEST,
            &format!(
                "no tmpfs ({why}): checked on the default file system only, not where \
                 reserving blocks zeroes every page"
            ),
        ),
    }
}

/// A same-user process watching `dir` must never see (and so never open)
/// a file made there with `FileCleanup::Auto`, even while its blocks are
/// being reserved; and an existing name still makes create fail, as for
/// `Manual`.
fn auto_files_never_appear_in(dir: &std::path::Path) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(0));
    let (scans, watcher) = {
        let (dir, stop, seen) = (dir.to_path_buf(), Arc::clone(&stop), Arc::clone(&seen));
        let scans = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&scans);
        let watcher = std::thread::spawn(move || {
            // At least one scan, whenever the thread first runs.
            loop {
                let n = std::fs::read_dir(&dir).unwrap().count();
                seen.fetch_add(n, Ordering::Relaxed);
                counted.fetch_add(1, Ordering::Relaxed);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        });
        (scans, watcher)
    };
    for i in 0..20 {
        let r =
            MmapRegion::create(dir.join(format!("auto{i}")), 32 << 20, FileCleanup::Auto).unwrap();
        let st = rustix::fs::fstat(r.fd().unwrap()).unwrap();
        assert_eq!(st.st_nlink, 0, "the file has a name");
        r.region().write_at((32 << 20) - 1, &[1]).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(scans.load(Ordering::Relaxed) > 0);
    assert_eq!(
        seen.load(Ordering::Relaxed),
        0,
        "a name appeared in {}",
        dir.display()
    );
    std::fs::write(dir.join("taken"), b"x").unwrap();
    assert_eq!(
        kind(MmapRegion::create(
            dir.join("taken"),
            4096,
            FileCleanup::Auto
        )),
        ErrorKind::AlreadyExists
    );
}

#[test]
fn debug_of_a_region_and_its_view_shows_path_length_generation_and_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut region = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    region.resize(2 * 4096).unwrap();
    let shown = format!("{region:?}");
    for part in [
        "MmapRegion {".to_owned(),
        format!("path: {path:?}"),
        "fd: Some(".to_owned(),
        format!("len: {}", 2 * 4096),
        "generation: 1".to_owned(),
        "owner: ".to_owned(),
    ] {
        assert!(shown.contains(&part), "{part:?} not in {shown}");
    }
    let view = region.region();
    let shown = format!("{view:?}");
    assert_eq!(
        shown,
        format!(
            "Region {{ ptr: {:?}, len: {}, generation: 1, current: true }}",
            view.as_ptr(),
            2 * 4096
        )
    );
}

/// The descriptors each kind of handle keeps open, counted exactly in
/// `/proc/self/fd` (in a child running only this test, so no other test
/// opens or closes one meanwhile): one, the file's, for a handle attached
/// by path or by descriptor, a `peer` and one created with
/// `FileCleanup::Auto`; two, the file's and its directory's (for removing
/// the name), for one created with `FileCleanup::Manual`; an attached
/// handle opens its directory only when it takes ownership. So a server
/// attaching 600 segments by path needs 600 descriptors, not 1,200.
#[cfg(target_os = "linux")]
#[test]
fn each_kind_of_handle_keeps_open_exactly_the_descriptors_it_needs() {
    const TEST: &str = "each_kind_of_handle_keeps_open_exactly_the_descriptors_it_needs";
    if role().as_deref() != Some("count-fds") {
        run_self(TEST, "count-fds");
        return;
    }
    let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    // Once before counting: what the first attach sets up for good (the
    // memfd probe) is not a handle's.
    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    drop(MmapRegion::attach(&path).unwrap());
    drop(host);
    let base = open_fds();

    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    assert_eq!(open_fds(), base + 2, "created (Manual): file and directory");
    let guests: Vec<MmapRegion> = (0..3).map(|_| MmapRegion::attach(&path).unwrap()).collect();
    assert_eq!(open_fds(), base + 2 + 3, "attached by path: one each");
    let read_only = MmapRegion::attach_read_only(&path).unwrap();
    assert_eq!(open_fds(), base + 2 + 4, "attached read-only by path");
    let by_fd = MmapRegion::attach_fd(host.fd().unwrap().try_clone_to_owned().unwrap()).unwrap();
    let peer = host.peer().unwrap();
    assert_eq!(open_fds(), base + 2 + 6, "attach_fd and peer: one each");
    let auto = MmapRegion::create(dir.path().join("auto"), 4096, FileCleanup::Auto).unwrap();
    assert_eq!(open_fds(), base + 2 + 7, "created (Auto): the file only");
    drop((guests, read_only, by_fd, peer, auto));
    assert_eq!(open_fds(), base + 2);
    let sealed = MmapRegion::create_sealed("count", 4096).unwrap();
    assert_eq!(open_fds(), base + 3, "create_sealed: the memfd");
    let frozen = sealed.freeze().unwrap();
    assert_eq!(
        open_fds(),
        base + 3,
        "Frozen: its read-only descriptor only"
    );
    let memory = MmapRegion::in_memory(4096).unwrap();
    assert_eq!(open_fds(), base + 3, "in-memory: none");
    let stage = MmapRegion::stage(dir.path().join("staged"), 4096).unwrap();
    assert_eq!(open_fds(), base + 5, "a stage: file and directory");
    drop((frozen, memory, stage));
    assert_eq!(open_fds(), base + 2);

    // Taking ownership opens the directory; dropping removes the file.
    let mut owner = MmapRegion::attach(&path).unwrap();
    assert_eq!(open_fds(), base + 3);
    owner.take_ownership();
    assert_eq!(
        open_fds(),
        base + 4,
        "the directory, opened at take_ownership"
    );
    let mut host = host;
    host.release_ownership();
    drop(host);
    assert_eq!(open_fds(), base + 2);
    assert!(path.exists());
    drop(owner);
    assert!(!path.exists(), "the new owner removed the file");
    assert_eq!(open_fds(), base);
}
