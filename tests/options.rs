//! Mapping options: populate, lock, advise, flush, size limit, creation
//! mode. (Block reservation, address space and trust policy are covered in
//! create.rs, grow.rs and attach.rs.)
#![cfg(all(unix, not(miri)))]

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;

use common::*;
use shm_region::{Advice, ErrorKind, FileCleanup, MmapOptions, MmapRegion};

const PAGE: usize = 4096;

/// Minor faults taken by touching one byte per page of `[from, to)`.
fn touch_faults(r: &shm_region::Region, from: usize, to: usize) -> u64 {
    let before = thread_minor_faults();
    for off in (from..to).step_by(PAGE) {
        r.write_at(off, &[1]).unwrap();
    }
    thread_minor_faults() - before
}

#[test]
fn populate_faults_the_pages_in_at_map_time_and_after_growth() {
    // Compared with the same touches on an unpopulated region (under
    // AddressSanitizer a few hundred extra faults come from its shadow
    // memory in both, hence a ratio rather than an absolute bound).
    let dir = tempfile::tempdir().unwrap();
    let size = 4 << 20;
    let mut plain =
        MmapRegion::create(dir.path().join("plain"), size, FileCleanup::Manual).unwrap();
    let mut hot = MmapOptions::new()
        .populate(true)
        .create(dir.path().join("hot"), size, FileCleanup::Manual)
        .unwrap();
    let cold = touch_faults(&plain.region(), 0, size);
    let warm = touch_faults(&hot.region(), 0, size);
    assert!(
        cold >= 1000,
        "without populate: {cold} faults for 1024 pages"
    );
    assert!(
        warm * 4 < cold,
        "with populate: {warm} faults, without: {cold}"
    );
    plain.resize(2 * size).unwrap();
    hot.resize(2 * size).unwrap();
    let cold = touch_faults(&plain.region(), size, 2 * size);
    let warm = touch_faults(&hot.region(), size, 2 * size);
    assert!(cold >= 1000, "grown, without populate: {cold} faults");
    assert!(
        warm * 4 < cold,
        "grown pages not populated: {warm} faults, without: {cold}"
    );
}

fn vm_locked_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs as user `nobody` with the default locked-memory limit.
fn lock_as_unprivileged_user() {
    assert!(!is_root());
    let dir = tempfile::tempdir().unwrap();
    let limit = rustix::process::getrlimit(rustix::process::Resource::Memlock);
    let max = limit.current.unwrap_or(u64::MAX);
    assert!(
        max < 1 << 30,
        "test needs a finite RLIMIT_MEMLOCK, got {max}"
    );
    let mut locked = MmapOptions::new();
    locked.lock(true);
    let small = locked
        .create(dir.path().join("small"), 64 << 10, FileCleanup::Manual)
        .unwrap();
    assert!(vm_locked_kib() >= 64, "{} KiB locked", vm_locked_kib());
    let too_big = usize::try_from(max).unwrap() * 2 + (1 << 20);
    let err = locked
        .create(dir.path().join("big"), too_big, FileCleanup::Manual)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockLimit);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::OutOfMemory
    );
    assert!(
        !dir.path().join("big").exists(),
        "a failed create left its file"
    );
    drop(small);
}

#[test]
fn lock_keeps_pages_resident_and_reports_the_limit() {
    const NAME: &str = "lock_keeps_pages_resident_and_reports_the_limit";
    if role().is_some() {
        lock_as_unprivileged_user();
        return;
    }
    if !is_root() {
        lock_as_unprivileged_user();
        return;
    }
    // Root ignores RLIMIT_MEMLOCK: check the limit as nobody, in a child.
    let mut cmd = spawn_self(NAME, "child", &[("TMPDIR", "/tmp")]);
    cmd.uid(65534).gid(65534);
    match cmd.spawn() {
        Ok(mut child) => assert_child_succeeds(&mut child),
        Err(e) => skip(NAME, &format!("cannot run as nobody: {e}")),
    }
}

#[test]
fn advise_and_flush_work_within_bounds_and_refuse_outside() {
    let dir = tempfile::tempdir().unwrap();
    let r = MmapRegion::create(seg(&dir), 4 * PAGE, FileCleanup::Manual).unwrap();
    r.region().write_at(PAGE + 10, b"kept").unwrap();
    for a in [
        Advice::Normal,
        Advice::Random,
        Advice::Sequential,
        Advice::WillNeed,
        Advice::DontNeed,
    ] {
        r.advise(a).unwrap();
    }
    r.advise_range(PAGE + 1, 5, Advice::DontNeed).unwrap();
    // DontNeed on a shared file mapping discards nothing.
    let mut b = [0u8; 4];
    r.region().read_at(PAGE + 10, &mut b).unwrap();
    assert_eq!(&b, b"kept");
    assert_eq!(
        kind(r.advise_range(4 * PAGE, 1, Advice::WillNeed)),
        ErrorKind::OutOfBounds
    );
    assert_eq!(
        kind(r.advise_range(usize::MAX, 2, Advice::Normal)),
        ErrorKind::OutOfBounds
    );
    r.flush().unwrap();
    r.flush_async().unwrap();
    r.flush_range(PAGE + 3, 100).unwrap();
    assert_eq!(
        kind(r.flush_range(3 * PAGE, PAGE + 1)),
        ErrorKind::OutOfBounds
    );
    // The flushed bytes are in the file.
    let on_disk = std::fs::read(seg(&dir)).unwrap();
    assert_eq!(&on_disk[PAGE + 10..PAGE + 14], b"kept");
}

#[test]
fn max_size_refuses_larger_files_and_growth_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut host = MmapRegion::create(&path, 2 * PAGE, FileCleanup::Manual).unwrap();
    let mut limited = MmapOptions::new();
    limited.max_size(4 * PAGE);
    let mut guest = limited.attach(&path).unwrap();
    host.resize(4 * PAGE).unwrap();
    assert!(guest.check_and_remap().unwrap());
    host.resize(5 * PAGE).unwrap();
    let err = guest.check_and_remap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::InvalidData
    );
    assert_eq!(guest.len(), 4 * PAGE, "the handle keeps its mapping");
    assert_eq!(kind(limited.attach(&path)), ErrorKind::FileTooLarge);
}

#[test]
fn creation_mode_is_applied_at_open_and_masked_to_permission_bits() {
    // The umask is process-wide: run with umask 0 in a child.
    const NAME: &str = "creation_mode_is_applied_at_open_and_masked_to_permission_bits";
    if let Some(dir) = role() {
        rustix::process::umask(rustix::fs::Mode::empty());
        let dir = std::path::Path::new(&dir);
        for (name, mode) in [("m640", 0o640), ("m4777", 0o4777)] {
            let mut r = MmapOptions::new()
                .mode(mode)
                .create(dir.join(name), 4096, FileCleanup::Manual)
                .unwrap();
            r.release_ownership();
        }
        let mut s = MmapOptions::new()
            .mode(0o644)
            .stage(dir.join("staged"), 4096)
            .unwrap();
        s.handle().release_ownership();
        let mut published = s.publish().unwrap();
        published.release_ownership();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run_self(NAME, dir.path().to_str().unwrap());
    let mode = |n: &str| std::fs::metadata(dir.path().join(n)).unwrap().mode() & 0o7777;
    assert_eq!(mode("m640"), 0o640);
    assert_eq!(mode("m4777"), 0o777, "set-id bits must never be applied");
    assert_eq!(mode("staged"), 0o644);
    // A group-writable file needs the widened trust policy to attach.
    assert_eq!(
        kind(MmapRegion::attach(dir.path().join("m4777"))),
        ErrorKind::InsecureMode
    );
}
