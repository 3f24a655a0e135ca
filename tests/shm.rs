//! POSIX shared-memory names: `create_shm`, `attach_shm`,
//! `attach_shm_read_only` (on Linux, files under `/dev/shm`).
#![cfg(all(target_os = "linux", not(miri)))]
#![cfg(unix)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use shm_region::{ErrorKind, FileCleanup, MmapOptions, MmapRegion};

#[test]
fn create_shm_makes_a_0600_file_under_dev_shm_that_attach_shm_finds_by_either_spelling() {
    let n = ShmName::new("test", "spelling");
    let mut host = MmapRegion::create_shm(&n.name, 4096, FileCleanup::Manual).unwrap();
    assert_eq!(host.path(), n.path);
    let md = std::fs::symlink_metadata(&n.path).unwrap();
    assert!(md.is_file());
    assert_eq!(md.mode() & 0o7777, 0o600);
    assert_eq!((md.len(), md.nlink()), (4096, 1));
    host.region().write_at(10, b"named").unwrap();
    for spelling in [n.name.clone(), format!("/{}", n.name)] {
        let guest = MmapRegion::attach_shm(&spelling).unwrap();
        assert_eq!((guest.path(), guest.len()), (n.path.as_path(), 4096));
        let mut buf = [0u8; 5];
        guest.region().read_at(10, &mut buf).unwrap();
        assert_eq!(&buf, b"named");
    }
    // Growth and check_and_remap work as for paths.
    let mut guest = MmapRegion::attach_shm_read_only(&n.name).unwrap();
    host.resize(3 * 4096).unwrap();
    host.region().write_at(3 * 4096 - 4, b"tail").unwrap();
    assert!(guest.check_and_remap().unwrap());
    let mut buf = [0u8; 4];
    guest.region().read_at(3 * 4096 - 4, &mut buf).unwrap();
    assert_eq!((&buf, guest.len()), (b"tail", 3 * 4096));
    assert_eq!(
        guest.region().write_at(0, b"x").unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
}

#[test]
fn shm_names_that_are_empty_dots_slashed_nul_or_too_long_are_invalid_paths() {
    let overlong = "n".repeat(256);
    let longest = format!("shm-region-test-longest-{}-", std::process::id());
    let longest = format!("{longest}{}", "n".repeat(255 - longest.len()));
    for name in [
        "", "/", ".", "/.", "..", "/..", "//x", "a/b", "x/", "a\0b", &overlong,
    ] {
        let errs = [
            MmapRegion::create_shm(name, 4096, FileCleanup::Manual).unwrap_err(),
            MmapRegion::attach_shm(name).unwrap_err(),
            MmapRegion::attach_shm_read_only(name).unwrap_err(),
        ];
        let ops: Vec<_> = errs.iter().map(|e| (e.kind(), e.operation())).collect();
        assert_eq!(
            ops,
            [
                (ErrorKind::InvalidPath, "create_shm"),
                (ErrorKind::InvalidPath, "attach_shm"),
                (ErrorKind::InvalidPath, "attach_shm_read_only"),
            ],
            "{name:?}"
        );
    }
    // 255 bytes is the longest name, and it works.
    let n = ShmName {
        path: Path::new("/dev/shm").join(&longest),
        name: longest,
    };
    let host = MmapRegion::create_shm(&format!("/{}", n.name), 4096, FileCleanup::Manual).unwrap();
    assert_eq!(host.path(), n.path);
}

#[test]
fn create_shm_refuses_any_existing_name_and_leaves_it_untouched() {
    let n = ShmName::new("test", "exists");
    std::fs::write(&n.path, b"someone's").unwrap();
    let before = fingerprint(&n.path);
    let err = MmapRegion::create_shm(&n.name, 4096, FileCleanup::Manual).unwrap_err();
    assert_eq!(
        (err.kind(), err.operation(), err.path()),
        (
            ErrorKind::AlreadyExists,
            "create_shm",
            Some(n.path.as_path())
        )
    );
    assert_eq!(fingerprint(&n.path), before);
}

#[test]
fn a_symlink_planted_under_a_name_is_neither_followed_nor_replaced() {
    let n = ShmName::new("test", "symlink");
    let target = ShmName::new("test", "symlink-target");
    std::fs::write(&target.path, vec![7u8; 4096]).unwrap();
    std::fs::set_permissions(&target.path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&target.path, &n.path).unwrap();
    let before = fingerprint(&target.path);
    let attached = MmapRegion::attach_shm(&n.name).unwrap_err();
    assert_eq!(
        (attached.kind(), attached.operation()),
        (ErrorKind::NotRegularFile, "attach_shm")
    );
    let created = MmapRegion::create_shm(&n.name, 8192, FileCleanup::Manual).unwrap_err();
    assert_eq!(created.kind(), ErrorKind::AlreadyExists);
    assert_eq!(fingerprint(&target.path), before);
    assert!(std::fs::symlink_metadata(&n.path).unwrap().is_symlink());
}

/// Why Linux names go through the path code and not `rustix::shm::open`:
/// rustix's Linux backend opens `/dev/shm/<name>` without `O_NOFOLLOW`.
#[test]
fn rustix_shm_open_follows_a_planted_symlink_where_attach_shm_refuses_it() {
    let n = ShmName::new("test", "rustix-follows");
    let target = ShmName::new("test", "rustix-follows-target");
    std::fs::write(&target.path, b"victim").unwrap();
    std::os::unix::fs::symlink(&target.path, &n.path).unwrap();
    let fd = rustix::shm::open(
        n.name.as_str(),
        rustix::shm::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let st = rustix::fs::fstat(&fd).unwrap();
    assert_eq!(st.st_ino, ino(&target.path));
    assert_eq!(
        kind(MmapRegion::attach_shm(&n.name)),
        ErrorKind::NotRegularFile
    );
}

#[test]
fn attach_shm_checks_owner_mode_and_links_as_attach_does() {
    let n = ShmName::new("test", "policy");
    let host = MmapRegion::create_shm(&n.name, 4096, FileCleanup::Manual).unwrap();
    // Group-writable.
    std::fs::set_permissions(&n.path, std::fs::Permissions::from_mode(0o660)).unwrap();
    assert_eq!(
        kind(MmapRegion::attach_shm(&n.name)),
        ErrorKind::InsecureMode
    );
    let mut lax = MmapOptions::new();
    lax.allow_group_or_other_write(true);
    assert_eq!(lax.attach_shm(&n.name).unwrap().len(), 4096);
    std::fs::set_permissions(&n.path, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A second name.
    let link = ShmName::new("test", "policy-link");
    std::fs::hard_link(&n.path, &link.path).unwrap();
    assert_eq!(kind(MmapRegion::attach_shm(&n.name)), ErrorKind::HardLinked);
    std::fs::remove_file(&link.path).unwrap();
    // Another owner (as root: chown).
    assert!(is_root(), "this test chowns a file: run it as root");
    std::os::unix::fs::chown(&n.path, Some(65534), None).unwrap();
    assert_eq!(
        kind(MmapRegion::attach_shm(&n.name)),
        ErrorKind::UntrustedOwner
    );
    let mut other = MmapOptions::new();
    other.allow_other_owner(true);
    assert_eq!(other.attach_shm_read_only(&n.name).unwrap().len(), 4096);
    drop(host);
}

#[test]
fn dropping_the_creator_removes_the_name_only_if_it_still_names_its_segment() {
    let n = ShmName::new("test", "drop");
    let host = MmapRegion::create_shm(&n.name, 4096, FileCleanup::Manual).unwrap();
    let guest = MmapRegion::attach_shm(&n.name).unwrap();
    drop(guest); // an attached handle never removes it
    assert!(n.path.exists());
    drop(host);
    assert!(!n.path.exists());
    assert_eq!(kind(MmapRegion::attach_shm(&n.name)), ErrorKind::NotFound);

    // Replaced under the name: the creator leaves the other file alone.
    let host = MmapRegion::create_shm(&n.name, 4096, FileCleanup::Manual).unwrap();
    std::fs::remove_file(&n.path).unwrap();
    std::fs::write(&n.path, b"someone else's").unwrap();
    drop(host);
    assert_eq!(std::fs::read(&n.path).unwrap(), b"someone else's");

    // release_ownership keeps the name after the creator is gone.
    std::fs::remove_file(&n.path).unwrap();
    let mut host = MmapRegion::create_shm(&n.name, 4096, FileCleanup::Manual).unwrap();
    host.release_ownership();
    drop(host);
    assert_eq!(MmapRegion::attach_shm(&n.name).unwrap().len(), 4096);
}

#[test]
fn auto_cleanup_gives_a_segment_that_never_has_a_name() {
    let n = ShmName::new("test", "auto");
    let host = MmapRegion::create_shm(&n.name, 4096, FileCleanup::Auto).unwrap();
    assert!(!n.path.exists());
    assert_eq!(kind(MmapRegion::attach_shm(&n.name)), ErrorKind::NotFound);
    // Shared by descriptor instead.
    let fd = host.fd().unwrap().try_clone_to_owned().unwrap();
    host.region().write_at(0, b"anon").unwrap();
    let guest = MmapRegion::attach_fd(fd).unwrap();
    let mut buf = [0u8; 4];
    guest.region().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"anon");
}

#[test]
fn attach_shm_of_a_missing_name_is_not_found_naming_the_path() {
    let n = ShmName::new("test", "missing");
    let err = MmapRegion::attach_shm(&n.name).unwrap_err();
    assert_eq!(
        (err.kind(), err.operation(), err.path()),
        (ErrorKind::NotFound, "attach_shm", Some(n.path.as_path()))
    );
    assert_eq!(
        err.to_string(),
        format!(
            "attach_shm {}: nothing exists at the path (No such file or directory (os error 2))",
            n.path.display()
        )
    );
}

#[test]
fn a_fifo_planted_under_a_name_is_refused_promptly_by_every_attach() {
    let n = ShmName::new("test", "fifo");
    mkfifo(&n.path);
    let name = n.name.clone();
    let kinds = within(std::time::Duration::from_secs(5), move || {
        [
            kind(MmapRegion::attach_shm(&name)),
            kind(MmapRegion::attach_shm_read_only(&name)),
        ]
    });
    assert_eq!(
        kinds,
        [ErrorKind::NotRegularFile, ErrorKind::NotRegularFile]
    );
}

#[test]
fn create_shm_errors_name_the_operation_and_the_path() {
    let n = ShmName::new("test", "errors");
    let prefix = format!("create_shm {}: ", n.path.display());
    // A size of zero, a size past max_size, and an options-level refusal:
    // each names create_shm and /dev/shm/<name>, and leaves no name.
    let zero = MmapRegion::create_shm(&n.name, 0, FileCleanup::Manual).unwrap_err();
    let over = MmapOptions::new()
        .max_size(4096)
        .create_shm(&format!("/{}", n.name), 8192, FileCleanup::Manual)
        .unwrap_err();
    for (err, kind) in [
        (zero, ErrorKind::InvalidSize),
        (over, ErrorKind::FileTooLarge),
    ] {
        assert_eq!(
            (err.kind(), err.operation(), err.path()),
            (kind, "create_shm", Some(n.path.as_path()))
        );
        assert!(err.to_string().starts_with(&prefix), "{err}");
        assert!(!n.path.exists(), "{err}");
    }
    // attach_shm names its own operation and the path too.
    let missing = MmapRegion::attach_shm_read_only(&n.name).unwrap_err();
    assert_eq!(
        (missing.kind(), missing.operation(), missing.path()),
        (
            ErrorKind::NotFound,
            "attach_shm_read_only",
            Some(n.path.as_path())
        )
    );
}
