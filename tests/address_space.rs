//! The address-space budget: under a finite `RLIMIT_AS` the default
//! reservation takes at most an eighth of what the limit leaves, an
//! explicit `address_space` is used as given, and a region grows past its
//! reservation by making a new mapping.
//!
//! `RLIMIT_AS` is process-wide, so each test runs its body in a child
//! process (this binary re-run with a role) and asserts that it succeeded.
#![cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]

mod common;

use common::*;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use shm_region::{FileCleanup, MmapOptions, MmapRegion};

const GIB: usize = 1 << 30;
const MIB: usize = 1 << 20;

/// Runs `body` when this process is the child; otherwise starts the child
/// (this binary, running only `test`) and asserts that it succeeded.
fn in_child(test: &str, body: impl FnOnce()) {
    if role().as_deref() == Some("limited") {
        body();
        return;
    }
    let mut child = spawn_self(test, "limited", &[]).spawn().unwrap();
    assert_child_succeeds(&mut child);
}

/// This process's address-space use (`VmSize`) in bytes.
fn vm_size() -> usize {
    proc_status_bytes("VmSize:")
}

/// Sets `RLIMIT_AS` (soft) to the current use plus 2 GiB; returns it.
fn limit_address_space() -> usize {
    let limit = vm_size() + 2 * GIB;
    let old = getrlimit(Resource::As);
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(u64::try_from(limit).unwrap()),
            maximum: old.maximum,
        },
    )
    .unwrap();
    assert_eq!(
        getrlimit(Resource::As).current,
        Some(u64::try_from(limit).unwrap())
    );
    limit
}

/// The length of the mapping that starts at `addr`, from `/proc/self/maps`.
fn mapping_len_at(addr: *const u8) -> usize {
    let addr = addr as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .find_map(|l| {
            let (start, end) = l.split(' ').next()?.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            (start == addr).then(|| usize::from_str_radix(end, 16).unwrap() - start)
        })
        .unwrap_or_else(|| panic!("no mapping starts at {addr:#x}"))
}

#[test]
fn default_reservation_leaves_most_of_a_finite_address_space_limit() {
    in_child(
        "default_reservation_leaves_most_of_a_finite_address_space_limit",
        || {
            let dir = tempfile::tempdir().unwrap();
            let limit = limit_address_space();
            let left = limit - vm_size();
            let region = MmapRegion::create(seg(&dir), 4096, FileCleanup::Manual).unwrap();
            let reserved = mapping_len_at(region.region().as_ptr());
            assert!(
                (4096..=left / 8).contains(&reserved),
                "reserved {reserved} of {left} left"
            );
            region.region().write_at(0, b"still works").unwrap();

            // 70% of what the limit left still fits beside the region.
            // (Of what it left, not of the whole limit: under AddressSanitizer
            // the limit also covers terabytes of shadow memory reserved
            // before the test starts, and this runs there too.)
            let n = left / 10 * 7;
            let mut v = Vec::<u8>::new();
            v.try_reserve_exact(n)
                .unwrap_or_else(|e| panic!("reserving {n} of limit {limit}: {e}"));
            assert!(v.capacity() >= n);

            let mut buf = [0u8; 11];
            region.region().read_at(0, &mut buf).unwrap();
            assert_eq!(&buf, b"still works");
        },
    );
}

#[test]
fn explicit_address_space_is_honoured_under_a_finite_address_space_limit() {
    in_child(
        "explicit_address_space_is_honoured_under_a_finite_address_space_limit",
        || {
            let dir = tempfile::tempdir().unwrap();
            limit_address_space();
            let mut region = MmapOptions::new()
                .address_space(GIB)
                .reserve_blocks(false)
                .create(seg(&dir), 4096, FileCleanup::Manual)
                .unwrap();
            let base = region.region().as_ptr();
            assert_eq!(mapping_len_at(base), GIB);
            region.region().write_at(0, b"head").unwrap();

            region.resize(512 * MIB).unwrap();
            assert_eq!(region.generation(), 1);
            assert_eq!(region.len(), 512 * MIB);
            assert_eq!(region.region().as_ptr(), base, "grown in place");
            region.region().write_at(512 * MIB - 4, b"tail").unwrap();
            let mut buf = [0u8; 4];
            region.region().read_at(0, &mut buf).unwrap();
            assert_eq!(&buf, b"head");
        },
    );
}

#[test]
fn region_grows_past_the_capped_default_reservation_and_keeps_its_data() {
    in_child(
        "region_grows_past_the_capped_default_reservation_and_keeps_its_data",
        || {
            let dir = tempfile::tempdir().unwrap();
            let path = seg(&dir);
            limit_address_space();
            let mut region = MmapOptions::new()
                .reserve_blocks(false)
                .create(&path, 4096, FileCleanup::Manual)
                .unwrap();
            let first = region.region();
            let reserved = mapping_len_at(first.as_ptr());
            assert!(reserved <= 256 * MIB, "reserved {reserved}");
            first.write_at(0, b"head").unwrap();

            // Past the reservation: a new mapping, the data is kept.
            region.resize(512 * MIB).unwrap();
            let grown = region.region();
            assert_eq!((region.generation(), grown.len()), (1, 512 * MIB));
            assert_ne!(grown.as_ptr(), first.as_ptr());
            assert!(mapping_len_at(grown.as_ptr()) >= 512 * MIB);
            let mut buf = [0u8; 4];
            grown.read_at(0, &mut buf).unwrap();
            assert_eq!(&buf, b"head");
            grown.write_at(512 * MIB - 4, b"tail").unwrap();

            // A peer attaching under the same limit sees both ends.
            let peer = MmapRegion::attach(&path).unwrap();
            assert_eq!(peer.len(), 512 * MIB);
            peer.region().read_at(512 * MIB - 4, &mut buf).unwrap();
            assert_eq!(&buf, b"tail");
            peer.region().read_at(0, &mut buf).unwrap();
            assert_eq!(&buf, b"head");
        },
    );
}

#[test]
fn growth_that_cannot_be_mapped_is_file_too_large_and_reserves_no_blocks() {
    // The new mapping is made before any block is reserved, so running out
    // of address space leaves the file exactly as it was: size and blocks.
    in_child(
        "growth_that_cannot_be_mapped_is_file_too_large_and_reserves_no_blocks",
        || {
            use std::os::unix::fs::MetadataExt;
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("segment");
            let mut r = MmapOptions::new()
                .address_space(0)
                .create(&path, 4096, FileCleanup::Manual)
                .unwrap();
            let blocks = std::fs::metadata(&path).unwrap().blocks();
            limit_address_space();
            let err = r.resize(3 * GIB).unwrap_err();
            assert_eq!(err.kind(), shm_region::ErrorKind::FileTooLarge);
            let md = std::fs::metadata(&path).unwrap();
            assert_eq!((md.len(), md.blocks()), (4096, blocks));
            assert_eq!((r.len(), r.generation()), (4096, 0));
            r.region().write_at(4095, &[1]).unwrap();
        },
    );
}
