//! Read-only peers: read permission is enough, writes are refused with an
//! error (never a fault), shared words can be loaded, growth is followed.
#![cfg(all(unix, not(miri)))]

mod common;

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::sync::atomic::Ordering;

use common::*;
use shm_region::{ErrorKind, FileCleanup, MmapRegion};

#[test]
fn read_only_region_refuses_writes_and_atomics_but_loads_and_follows_growth() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    host.region()
        .atomic_u64(8)
        .unwrap()
        .store(0xABCD, Ordering::Release);
    host.region()
        .atomic_u32(16)
        .unwrap()
        .store(77, Ordering::Release);
    let mut reader = MmapRegion::attach_read_only(&path).unwrap();
    assert!(reader.is_read_only() && !host.is_read_only());
    let r = reader.region();
    assert!(r.is_read_only());

    let err = r.write_at(0, b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly);
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::PermissionDenied
    );
    assert_eq!(kind(r.atomic_u32(16)), ErrorKind::ReadOnly);
    assert_eq!(kind(r.atomic_u64(8)), ErrorKind::ReadOnly);
    assert_eq!(kind(reader.resize(8192)), ErrorKind::ReadOnly);

    assert_eq!(r.load_u64(8, Ordering::Acquire).unwrap(), 0xABCD);
    assert_eq!(r.load_u32(16, Ordering::Relaxed).unwrap(), 77);
    assert_eq!(r.load_u32(16, Ordering::SeqCst).unwrap(), 77);
    assert_eq!(
        kind(r.load_u32(16, Ordering::Release)),
        ErrorKind::InvalidOrdering
    );
    assert_eq!(
        kind(r.load_u64(8, Ordering::AcqRel)),
        ErrorKind::InvalidOrdering
    );
    assert_eq!(
        kind(r.load_u64(4, Ordering::Acquire)),
        ErrorKind::Misaligned
    );
    assert_eq!(
        kind(r.load_u32(4096, Ordering::Acquire)),
        ErrorKind::OutOfBounds
    );
    let mut b = [1u8; 8];
    r.read_at(4088, &mut b).unwrap();
    assert_eq!(b, [0; 8]);

    host.resize(3 * 4096).unwrap();
    host.region().write_at(3 * 4096 - 4, b"grew").unwrap();
    assert!(reader.check_and_remap().unwrap());
    let mut t = [0u8; 4];
    reader.region().read_at(3 * 4096 - 4, &mut t).unwrap();
    assert_eq!(&t, b"grew");
    assert_eq!(kind(reader.region().write_at(0, b"y")), ErrorKind::ReadOnly);
    // Loads work on writable views too.
    assert_eq!(
        host.region().load_u64(8, Ordering::Acquire).unwrap(),
        0xABCD
    );
}

#[test]
fn read_only_attach_fd_accepts_an_o_rdonly_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    host.region().write_at(0, b"ro").unwrap();
    let fd: OwnedFd = std::fs::File::open(&path).unwrap().into();
    let reader = MmapRegion::attach_fd_read_only(fd).unwrap();
    let mut b = [0u8; 2];
    reader.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"ro");
    // The same descriptor is refused for a writable attach.
    let fd: OwnedFd = std::fs::File::open(&path).unwrap().into();
    assert_eq!(
        MmapRegion::attach_fd(fd).unwrap_err().raw_os_error(),
        Some(13)
    );
    drop(host);
}

/// Runs as user `nobody`: the file is owned by nobody with mode 0400, so
/// only read permission is available.
fn reader_without_write_permission(path: &str) {
    assert!(!is_root());
    let reader = MmapRegion::attach_read_only(path).unwrap();
    let mut b = [0u8; 6];
    reader.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"0400ok");
    // Writable attach needs write permission, which mode 0400 does not give.
    let err = MmapRegion::attach(path).unwrap_err();
    assert_eq!(err.io_kind(), std::io::ErrorKind::PermissionDenied);
    // Read-only attach guards against mistakes, not against the file's
    // owner: a hostile peer of the same user grants itself write
    // permission and truncates.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(100).unwrap();
}

#[test]
fn read_only_peer_needs_only_read_permission_and_cannot_stop_its_owner_truncating() {
    const NAME: &str =
        "read_only_peer_needs_only_read_permission_and_cannot_stop_its_owner_truncating";
    if let Some(path) = role() {
        reader_without_write_permission(&path);
        return;
    }
    if !is_root() {
        skip(NAME, "needs root to switch users");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = seg(&dir);
    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    host.region().write_at(0, b"0400ok").unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    let mut cmd = spawn_self(NAME, path.to_str().unwrap(), &[]);
    cmd.uid(65534).gid(65534);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            skip(NAME, &format!("cannot run as nobody: {e}"));
            return;
        }
    };
    assert_child_succeeds(&mut child);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
    drop(host);
}
