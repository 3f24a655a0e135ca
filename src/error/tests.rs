use super::*;
use rustix::io::Errno;
use std::sync::atomic::Ordering;

#[test]
fn errno_classification_gives_matchable_kinds() {
    assert_eq!(
        Error::os("x", Errno::EXIST).kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(Error::os("x", Errno::NOENT).kind(), ErrorKind::NotFound);
    assert_eq!(Error::os("x", Errno::NOSPC).kind(), ErrorKind::StorageFull);
    assert_eq!(Error::os("x", Errno::DQUOT).kind(), ErrorKind::StorageFull);
    let other = Error::os("x", Errno::ACCESS);
    assert_eq!(other.kind(), ErrorKind::Os);
    assert_eq!(other.io_kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(other.raw_os_error(), Some(Errno::ACCESS.raw_os_error()));
}

#[test]
fn conversion_into_io_error_keeps_kind_and_inner_error() {
    let cases = [
        (ErrorKind::InvalidSize, io::ErrorKind::InvalidInput),
        (ErrorKind::AlreadyExists, io::ErrorKind::AlreadyExists),
        (ErrorKind::NotFound, io::ErrorKind::NotFound),
        (ErrorKind::EmptyFile, io::ErrorKind::InvalidData),
        (ErrorKind::Truncated, io::ErrorKind::InvalidData),
        (ErrorKind::UntrustedOwner, io::ErrorKind::PermissionDenied),
        (ErrorKind::InsecureMode, io::ErrorKind::PermissionDenied),
        (ErrorKind::HardLinked, io::ErrorKind::PermissionDenied),
        (ErrorKind::OutOfBounds, io::ErrorKind::InvalidInput),
        (ErrorKind::Misaligned, io::ErrorKind::InvalidInput),
        (ErrorKind::ShrinkRefused, io::ErrorKind::InvalidInput),
        (ErrorKind::StorageFull, io::ErrorKind::StorageFull),
        (ErrorKind::Unsupported, io::ErrorKind::Unsupported),
        (ErrorKind::NotSealed, io::ErrorKind::PermissionDenied),
        (ErrorKind::ReadOnly, io::ErrorKind::PermissionDenied),
        (ErrorKind::MissingDescriptor, io::ErrorKind::InvalidData),
        (ErrorKind::ExtraDescriptors, io::ErrorKind::InvalidData),
        (ErrorKind::MessageTruncated, io::ErrorKind::InvalidData),
        (ErrorKind::InvalidOrdering, io::ErrorKind::InvalidInput),
        (ErrorKind::LockLimit, io::ErrorKind::OutOfMemory),
        (ErrorKind::Sealed, io::ErrorKind::PermissionDenied),
        (ErrorKind::Busy, io::ErrorKind::ResourceBusy),
        (ErrorKind::UnexpectedEof, io::ErrorKind::UnexpectedEof),
        (ErrorKind::OutOfMemory, io::ErrorKind::OutOfMemory),
        (ErrorKind::SigbusRegistry, io::ErrorKind::OutOfMemory),
        (ErrorKind::NotEventfd, io::ErrorKind::InvalidInput),
        (ErrorKind::NotConnected, io::ErrorKind::NotConnected),
    ];
    for (kind, io_kind) in cases {
        let e: io::Error = Error::new(kind, "op").into();
        assert_eq!(e.kind(), io_kind, "{kind:?}");
        let inner = e.get_ref().unwrap().downcast_ref::<Error>().unwrap();
        assert_eq!(inner.kind(), kind);
    }
}

#[test]
fn seal_messages_name_each_seal_and_unknown_bits() {
    assert_eq!(
        Error::missing_seals("op", 0x8 | 0x4, "needed").to_string(),
        "op: descriptor is not sealed with F_SEAL_GROW | F_SEAL_WRITE (needed)"
    );
    assert_eq!(
        Error::sealed("op", "why", 0x3f | 0x40).to_string(),
        "op: why (the file's seals: F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC | 0x40)"
    );
    assert_eq!(
        Error::sealed("op", "why", 0).to_string(),
        "op: why (the file's seals: none)"
    );
    let e = Error::sealed("op", "why", 0x40);
    assert_eq!(e.kind(), ErrorKind::Sealed);
    assert_eq!(e.to_string(), "op: why (the file's seals: 0x40)");
    assert!(format!("{e:?}").contains("seals: 0x40"));
}

#[test]
fn display_names_operation_kind_and_os_error() {
    assert_eq!(
        Error::os("resize", Errno::NOSPC).to_string(),
        format!(
            "resize: no space left for the region ({})",
            io::Error::from_raw_os_error(Errno::NOSPC.raw_os_error())
        )
    );
    let e = Error::os("resize", Errno::NOSPC);
    let s = e.to_string();
    assert!(
        s.starts_with("resize: no space left for the region ("),
        "{s}"
    );
    assert_eq!(
        Error::new(ErrorKind::EmptyFile, "attach").to_string(),
        "attach: file is empty"
    );
}

#[test]
fn error_and_unit_result_are_one_pointer_wide_and_at_most_16_bytes() {
    use std::mem::size_of;
    assert_eq!(size_of::<Error>(), size_of::<usize>());
    assert_eq!(size_of::<Result<()>>(), size_of::<usize>());
    assert!(size_of::<Error>() <= 16);
    assert!(size_of::<Result<()>>() <= 16);
}

#[test]
fn error_is_send_sync_unwind_safe_and_static() {
    fn check<T: Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe + 'static>() {}
    check::<Error>();
}

#[test]
fn display_gives_each_detail_with_its_numbers() {
    use rustix::fs::FileType;
    let nomem = io::Error::from_raw_os_error(Errno::NOMEM.raw_os_error());
    let perm = io::Error::from_raw_os_error(Errno::PERM.raw_os_error());
    let cases = [
        (Error::invalid_size("create", 0), "create: size 0 is invalid: a region is never empty".to_owned()),
        (
            Error::invalid_size("create", usize::MAX),
            format!("create: size {} is too large to map (over isize::MAX or the largest file offset)", usize::MAX),
        ),
        (
            Error::too_large("resize", 9000_u64, Limit::MaxSize(8192)),
            "resize: size 9000 is past max_size 8192; a larger MmapOptions::max_size allows it".to_owned(),
        ),
        (
            Error::too_large("attach_fd", 1_u64 << 46, Limit::AddressSpaceShare(1 << 47)),
            "attach_fd: size 70368744177664 is past a quarter of the 140737488355328 bytes of \
             address space left; an explicit MmapOptions::max_size allows it"
                .to_owned(),
        ),
        (
            Error::too_large(
                "attach_fd",
                1_u64 << 40,
                Limit::UnboundedShare { cap: 1 << 44, origin: crate::map::Origin::Received },
            ),
            "attach_fd: mapping 1099511627776 bytes would take the mappings of files \
             received by descriptor made without a max_size past 17592186044416 bytes, an \
             eighth of the address space, together; an explicit MmapOptions::max_size \
             allows it"
                .to_owned(),
        ),
        (
            Error::too_large(
                "create",
                1_u64 << 40,
                Limit::UnboundedShare { cap: 1 << 45, origin: crate::map::Origin::Created },
            ),
            "create: mapping 1099511627776 bytes would take the mappings of regions this \
             process created made without a max_size past 35184372088832 bytes, a quarter \
             of the address space, together; an explicit MmapOptions::max_size allows it"
                .to_owned(),
        ),
        (
            Error::too_large(
                "attach",
                1_u64 << 40,
                Limit::UnboundedShare { cap: 1 << 44, origin: crate::map::Origin::Named },
            ),
            "attach: mapping 1099511627776 bytes would take the mappings of files attached \
             by path or name made without a max_size past 17592186044416 bytes, an eighth \
             of the address space, together; an explicit MmapOptions::max_size allows it"
                .to_owned(),
        ),
        (
            Error::too_large(
                FROZEN_ATTACH,
                1_u64 << 40,
                Limit::UnboundedShare { cap: 1 << 44, origin: crate::map::Origin::Received },
            ),
            "Frozen::attach_fd: mapping 1099511627776 bytes would take the mappings of files \
             received by descriptor made without a max_size past 17592186044416 bytes, an \
             eighth of the address space, together; Frozen::attach_fd takes no max_size: \
             MmapOptions::max_size with attach_fd_read_only maps it as a region"
                .to_owned(),
        ),
        (
            Error::too_large(FROZEN_ATTACH, 1_u64 << 46, Limit::AddressSpaceShare(1 << 47)),
            "Frozen::attach_fd: size 70368744177664 is past a quarter of the \
             140737488355328 bytes of address space left; Frozen::attach_fd takes no \
             max_size: MmapOptions::max_size with attach_fd_read_only maps it as a region"
                .to_owned(),
        ),
        (
            Error::too_large("attach", u64::MAX, Limit::Mappable),
            format!(
                "attach: size {} is past isize::MAX ({}), the most a mapping can hold",
                u64::MAX,
                isize::MAX
            ),
        ),
        (
            Error::too_large("resize", 1_usize << 20, Limit::FileSize(65536)),
            "resize: size 1048576 is past the file-size limit 65536 (RLIMIT_FSIZE)".to_owned(),
        ),
        (
            Error::too_large("resize", 1_u64 << 40, Limit::AddressSpace).with_errno_of(Errno::NOMEM),
            format!("resize: no address space or mapping slots left to map 1099511627776 bytes ({nomem})"),
        ),
        (
            Error::untrusted_owner("attach_fd", 1000, 0),
            "attach_fd: file is owned by uid 1000, not 0 (our effective uid); MmapOptions::allow_other_owner(true) accepts it".to_owned(),
        ),
        (
            Error::insecure_mode("attach_fd", 0o100_666_u32),
            "attach_fd: file is writable by group or others (mode 0666); MmapOptions::allow_group_or_other_write(true) accepts it".to_owned(),
        ),
        (
            Error::insecure_mode("attach_fd", 0o102_022_u32),
            "attach_fd: file is writable by group or others (mode 2022); MmapOptions::allow_group_or_other_write(true) accepts it".to_owned(),
        ),
        (Error::hard_linked("peer", 3_u64), "peer: file has 3 hard links, not 1; MmapOptions::allow_hard_links(true) accepts it".to_owned()),
        (
            Error::shrink_refused("resize", 8192, 0),
            "resize: cannot shrink from 8192 to 0 bytes: a region can only grow".to_owned(),
        ),
        (
            Error::truncated("check_and_remap", 8192, 0),
            "check_and_remap: file was truncated below the mapped length 8192 (it is 0 bytes now)".to_owned(),
        ),
        (
            Error::out_of_bounds("read_at", 1, 2, 3),
            "read_at: access out of bounds: 2 bytes at offset 1, accessible length 3".to_owned(),
        ),
        (
            Error::misaligned("atomic_u32", 6, 4),
            "atomic_u32: misaligned atomic access: offset 6 is not a multiple of 4".to_owned(),
        ),
        (
            Error::invalid_ordering("load_u32", Ordering::AcqRel),
            "load_u32: AcqRel is not an ordering a load can use".to_owned(),
        ),
        (
            Error::lock_limit("resize", 65536, Errno::PERM),
            format!("resize: cannot lock 65536 bytes in memory (RLIMIT_MEMLOCK, or no privilege to lock) ({perm})"),
        ),
        (
            Error::new(ErrorKind::Unsupported, "attach").because("file is on hugetlbfs"),
            "attach: file is on hugetlbfs".to_owned(),
        ),
        (
            Error::not_regular("attach_fd", FileType::Socket.as_raw_mode()),
            "attach_fd: not a regular file: a socket".to_owned(),
        ),
        (
            Error::not_regular("attach_fd", FileType::CharacterDevice.as_raw_mode()),
            "attach_fd: not a regular file: a character device".to_owned(),
        ),
        (
            Error::not_regular("attach_fd", FileType::BlockDevice.as_raw_mode()),
            "attach_fd: not a regular file: a block device".to_owned(),
        ),
        (
            Error::not_regular("fdpass::recv", FileType::Directory.as_raw_mode()),
            "fdpass::recv: not a regular file: a directory".to_owned(),
        ),
        (
            Error::not_regular("attach_fd", FileType::Symlink.as_raw_mode()),
            "attach_fd: not a regular file: a symbolic link".to_owned(),
        ),
        (
            Error::not_regular("attach_fd", FileType::Fifo.as_raw_mode()),
            "attach_fd: not a regular file: a FIFO".to_owned(),
        ),
        (Error::not_regular("attach_fd", 0), "attach_fd: not a regular file: of an unknown type".to_owned()),
        (
            Error::unexpected_eof("read_exact_from_fd", 4096, 65536),
            "read_exact_from_fd: end of input after 4096 of 65536 bytes".to_owned(),
        ),
        (
            Error::new(ErrorKind::ExtraDescriptors, "fdpass::recv"),
            "fdpass::recv: message carried more than one descriptor".to_owned(),
        ),
        (
            Error::extra_descriptors("fdpass::recv_with", 3, false, 2),
            "fdpass::recv_with: message carried 3 descriptors, more than the 2 asked for (all closed)".to_owned(),
        ),
        (
            Error::extra_descriptors("fdpass::recv_with", 4, true, 3),
            "fdpass::recv_with: message carried more than 4 descriptors (control message truncated), more than the 3 asked for (all closed)".to_owned(),
        ),
        (
            Error::message_truncated("fdpass::recv_with", 4),
            "fdpass::recv_with: message was longer than the 4-byte buffer and was cut (its descriptors were closed)".to_owned(),
        ),
    ];
    for (e, expected) in cases {
        assert_eq!(e.to_string(), expected, "{e:?}");
    }
}

#[test]
fn debug_names_the_kind_operation_path_numbers_os_error_and_message() {
    assert_eq!(
        format!("{:?}", Error::new(ErrorKind::EmptyFile, "attach")),
        r#"Error { kind: EmptyFile, op: "attach", message: "attach: file is empty" }"#
    );
    assert_eq!(
        format!(
            "{:?}",
            Error::too_large("create", 10_u64, Limit::MaxSize(5)).with_path(Path::new("/x"))
        ),
        r#"Error { kind: FileTooLarge, op: "create", path: "/x", size: 10, max_size: 5, message: "create /x: size 10 is past max_size 5; a larger MmapOptions::max_size allows it" }"#
    );
    assert_eq!(
        format!(
            "{:?}",
            Error::too_large("attach", 10_u64, Limit::AddressSpaceShare(20))
        ),
        r#"Error { kind: FileTooLarge, op: "attach", size: 10, address_space_left: 20, message: "attach: size 10 is past a quarter of the 20 bytes of address space left; an explicit MmapOptions::max_size allows it" }"#
    );
    assert_eq!(
        format!("{:?}", Error::too_large("attach", 10_u64, Limit::Mappable)),
        format!(
            r#"Error {{ kind: FileTooLarge, op: "attach", size: 10, limit: {m}, message: "attach: size 10 is past isize::MAX ({m}), the most a mapping can hold" }}"#,
            m = isize::MAX
        )
    );
    assert_eq!(
        format!(
            "{:?}",
            Error::too_large("resize", 10_u64, Limit::FileSize(5))
        ),
        r#"Error { kind: FileTooLarge, op: "resize", size: 10, rlimit_fsize: 5, message: "resize: size 10 is past the file-size limit 5 (RLIMIT_FSIZE)" }"#
    );
    let nomem = io::Error::from_raw_os_error(Errno::NOMEM.raw_os_error());
    assert_eq!(
        format!(
            "{:?}",
            Error::too_large("resize", 10_u64, Limit::AddressSpace).with_errno_of(Errno::NOMEM)
        ),
        format!(
            r#"Error {{ kind: FileTooLarge, op: "resize", size: 10, os: {nomem:?}, message: "resize: no address space or mapping slots left to map 10 bytes ({nomem})" }}"#,
        )
    );
    assert_eq!(
        format!("{:?}", Error::untrusted_owner("attach_fd", 1000, 0)),
        r#"Error { kind: UntrustedOwner, op: "attach_fd", uid: 1000, euid: 0, message: "attach_fd: file is owned by uid 1000, not 0 (our effective uid); MmapOptions::allow_other_owner(true) accepts it" }"#
    );
    assert_eq!(
        format!(
            "{:?}",
            Error::insecure_mode("attach_shm", 0o100_666_u32).with_path(Path::new("/dev/shm/seg"))
        ),
        r#"Error { kind: InsecureMode, op: "attach_shm", path: "/dev/shm/seg", mode: 0o666, message: "attach_shm /dev/shm/seg: file is writable by group or others (mode 0666); MmapOptions::allow_group_or_other_write(true) accepts it" }"#
    );
    assert_eq!(
        format!("{:?}", Error::hard_linked("attach_fd", 2_u64)),
        r#"Error { kind: HardLinked, op: "attach_fd", links: 2, message: "attach_fd: file has 2 hard links, not 1; MmapOptions::allow_hard_links(true) accepts it" }"#
    );
    let perm = io::Error::from_raw_os_error(Errno::PERM.raw_os_error());
    assert_eq!(
        format!("{:?}", Error::lock_limit("create", 4096, Errno::PERM)),
        format!(
            r#"Error {{ kind: LockLimit, op: "create", len: 4096, os: {perm:?}, message: "create: cannot lock 4096 bytes in memory (RLIMIT_MEMLOCK, or no privilege to lock) ({perm})" }}"#,
        )
    );
    assert_eq!(
        format!(
            "{:?}",
            Error::new(ErrorKind::Unsupported, "x").because("why \"quoted\"")
        ),
        r#"Error { kind: Unsupported, op: "x", message: "x: why \"quoted\"" }"#
    );
    assert_eq!(
        format!(
            "{:?}",
            Error::cut("for_each_chunk", 16384, 16384, 20000).within(0, 65536)
        ),
        r#"Error { kind: Truncated, op: "for_each_chunk", offset: 16384, len: 16384, cut: 20000, asked_offset: 0, asked_len: 65536, message: "for_each_chunk: 16384 bytes at offset 16384 (of the 65536 bytes at offset 0 asked for) reach pages the file lost under the mapping (a contained SIGBUS; gone from offset 20000)" }"#
    );
    assert_eq!(
        format!("{:?}", Error::past_truncation("read_at", 8192, 8, 4096)),
        r#"Error { kind: Truncated, op: "read_at", offset: 8192, len: 8, truncated_at: 4096, message: "read_at: 8 bytes at offset 8192 reach past offset 4096, where this handle found the file truncated" }"#
    );
}

#[test]
fn source_is_the_os_error_and_none_without_one() {
    let e = Error::os("attach", Errno::ACCESS);
    let source = std::error::Error::source(&e).unwrap();
    let io = source.downcast_ref::<io::Error>().unwrap();
    assert_eq!(io.raw_os_error(), Some(Errno::ACCESS.raw_os_error()));
    let e = Error::too_large("x", 1_u64, Limit::AddressSpace).with_errno_of(Errno::NOMEM);
    assert_eq!(e.raw_os_error(), Some(Errno::NOMEM.raw_os_error()));
    let source = std::error::Error::source(&e).unwrap();
    assert_eq!(
        source.downcast_ref::<io::Error>().unwrap().raw_os_error(),
        Some(Errno::NOMEM.raw_os_error())
    );
    assert!(std::error::Error::source(&Error::new(ErrorKind::EmptyFile, "x")).is_none());
    assert!(std::error::Error::source(&Error::out_of_bounds("x", 1, 1, 1)).is_none());
}

#[test]
fn clones_are_equal_and_any_difference_is_unequal() {
    let base = Error::os("attach", Errno::ACCESS).with_path(Path::new("/a"));
    assert_eq!(base.clone(), base);
    assert_eq!(
        base.clone().raw_os_error(),
        Some(Errno::ACCESS.raw_os_error())
    );
    assert_eq!(base.clone().to_string(), base.to_string());
    assert_ne!(
        base,
        Error::os("attach", Errno::PERM).with_path(Path::new("/a"))
    );
    assert_ne!(
        base,
        Error::os("attach", Errno::ACCESS).with_path(Path::new("/b"))
    );
    assert_ne!(base, Error::os("attach", Errno::ACCESS));
    assert_ne!(
        base,
        Error::os("create", Errno::ACCESS).with_path(Path::new("/a"))
    );
    assert_ne!(Error::misaligned("x", 4, 8), Error::misaligned("x", 2, 8));
    assert_ne!(
        Error::new(ErrorKind::Unsupported, "x").because("a"),
        Error::new(ErrorKind::Unsupported, "x")
    );
}

#[test]
fn too_large_to_map_names_isize_max_or_max_size() {
    let over = u64::try_from(isize::MAX).unwrap() + 1;
    assert_eq!(
        Error::too_large_to_map("attach", over, Some(4096)),
        Error::too_large("attach", over, Limit::Mappable)
    );
    assert_eq!(
        Error::too_large_to_map("attach", 8192, Some(4096)),
        Error::too_large("attach", 8192_u64, Limit::MaxSize(4096))
    );
    assert_eq!(
        Error::too_large_to_map("attach", 8192, None),
        Error::too_large("attach", 8192_u64, Limit::Mappable)
    );
}

#[test]
fn with_path_puts_the_path_after_the_operation() {
    let e = Error::new(ErrorKind::EmptyFile, "attach").with_path(Path::new("/dev/shm/x"));
    assert_eq!(e.path(), Some(Path::new("/dev/shm/x")));
    assert_eq!(e.to_string(), "attach /dev/shm/x: file is empty");
    assert_eq!(Error::new(ErrorKind::EmptyFile, "attach").path(), None);
}
