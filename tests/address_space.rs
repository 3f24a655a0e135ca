//! The address-space budget: under a finite `RLIMIT_AS` the default
//! reservation takes at most an eighth of what the limit leaves, an
//! explicit `address_space` is used as given, and a region grows past its
//! reservation by making a new mapping. `max_size` bounds every
//! reservation; default reservations share a process-wide budget (an
//! eighth of the address space, or of what a finite `RLIMIT_AS` leaves);
//! without `max_size` a file past a quarter of the address space left is
//! refused, and all the mappings made without it map half of the address
//! space at most, together.
//!
//! `RLIMIT_AS` is process-wide, so each test runs its body in a child
//! process (this binary re-run with a role) and asserts that it succeeded.
#![cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
#![cfg(unix)]

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

            // Past the reservation: a new mapping, the data is kept. (At
            // most a quarter of what the limit leaves: the share of the
            // regions this process creates without max_size.)
            const GROWN: usize = 384 * MIB;
            region.resize(GROWN).unwrap();
            let grown = region.region();
            assert_eq!((region.generation(), grown.len()), (1, GROWN));
            assert_ne!(grown.as_ptr(), first.as_ptr());
            assert!(mapping_len_at(grown.as_ptr()) >= GROWN);
            let mut buf = [0u8; 4];
            grown.read_at(0, &mut buf).unwrap();
            assert_eq!(&buf, b"head");
            grown.write_at(GROWN - 4, b"tail").unwrap();

            // A peer attaching under the same limit sees both ends, once
            // it admits the size: with the defaults a file past a quarter
            // of the address space left, or past the eighth that files
            // attached by path share, is refused.
            let refused = MmapRegion::attach(&path).unwrap_err();
            assert_eq!(refused.kind(), shm_region::ErrorKind::FileTooLarge);
            let peer = MmapOptions::new().max_size(GROWN).attach(&path).unwrap();
            assert_eq!(peer.len(), GROWN);
            peer.region().read_at(GROWN - 4, &mut buf).unwrap();
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

const TIB: usize = 1 << 40;

/// A sparse memfd of `len` bytes as the kernel makes it (mode 0777).
fn sparse_memfd(len: usize) -> std::os::fd::OwnedFd {
    let fd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, u64::try_from(len).unwrap()).unwrap();
    fd
}

/// The length of every mapping by its start, from one read of
/// `/proc/self/maps`.
fn mapping_lens() -> std::collections::HashMap<usize, usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|l| {
            let (start, end) = l.split(' ').next()?.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            Some((start, usize::from_str_radix(end, 16).ok()? - start))
        })
        .collect()
}

#[test]
fn max_size_bounds_every_reservation_a_handle_makes() {
    in_child("max_size_bounds_every_reservation_a_handle_makes", || {
        let ps = rustix::param::page_size();
        let dir = tempfile::tempdir().unwrap();
        let max = 8 * MIB + 1; // rounded up to pages: 8 MiB + one page
        let bound = 8 * MIB + ps;
        let mut opts = MmapOptions::new();
        opts.max_size(max).reserve_blocks(false);

        // Default reservation (1 GiB wanted): max_size rounded up instead.
        let path = seg(&dir);
        let mut host = opts.create(&path, 4096, FileCleanup::Manual).unwrap();
        assert_eq!(mapping_len_at(host.region().as_ptr()), bound);
        // Growth stays in place up to max_size, and never beyond.
        let base = host.region().as_ptr();
        host.resize(max).unwrap();
        assert_eq!(host.region().as_ptr(), base);
        assert_eq!(
            host.resize(max + 1).unwrap_err().kind(),
            shm_region::ErrorKind::FileTooLarge
        );
        // Attach, by path and by descriptor, and a peer: the same bound.
        let guest = opts.attach(&path).unwrap();
        assert_eq!(mapping_len_at(guest.region().as_ptr()), bound);
        let by_fd = opts.attach_fd(sparse_memfd(4096)).unwrap();
        assert_eq!(mapping_len_at(by_fd.region().as_ptr()), bound);
        let peer = by_fd.peer().unwrap();
        assert_eq!(mapping_len_at(peer.region().as_ptr()), bound);
        // An explicit address space larger than max_size is bounded too.
        let mut wide = opts.clone();
        wide.address_space(GIB);
        let sealed = wide.create_sealed("bounded", 4096).unwrap();
        assert_eq!(mapping_len_at(sealed.region().as_ptr()), bound);
        // A growth followed past the first mapping: a new one, bounded.
        let mut exact = opts.clone();
        exact.address_space(0);
        let mut grower = exact
            .create(seg_named(&dir, "grow"), 4096, FileCleanup::Manual)
            .unwrap();
        let mut follower = opts.attach(seg_named(&dir, "grow")).unwrap();
        grower.resize(2 * MIB).unwrap();
        assert!(follower.check_and_remap().unwrap());
        assert_eq!(mapping_len_at(follower.region().as_ptr()), bound);
        // In-memory capacity likewise. The kernel merges private anonymous
        // memory with a neighbouring mapping of the same flags (a thread's
        // stack, an allocator's arena), which would make the line in
        // /proc/self/maps longer than the reservation: `dont_dump` gives the
        // region flags of its own.
        let mut own = opts.clone();
        own.dont_dump(true);
        let mem = own.in_memory(4096).unwrap();
        assert_eq!(mapping_len_at(mem.region().as_ptr()), bound);
    });
}

fn seg_named(dir: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
    dir.path().join(name)
}

#[test]
fn fifteen_hundred_sparse_two_gib_memfds_attach_with_the_defaults_and_stay_mapped() {
    in_child(
        "fifteen_hundred_sparse_two_gib_memfds_attach_with_the_defaults_and_stay_mapped",
        || {
            const N: usize = 1500;
            const POOL: usize = 2 * GIB;
            // The regions keep their descriptors: raise the soft limit.
            let nofile = getrlimit(Resource::Nofile);
            let want = 4096_u64.min(nofile.maximum.unwrap_or(u64::MAX));
            assert!(
                want >= 2 * N as u64,
                "RLIMIT_NOFILE hard limit {want} is too low"
            );
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(want),
                    maximum: nofile.maximum,
                },
            )
            .unwrap();
            assert_eq!(getrlimit(Resource::As).current, None, "needs no RLIMIT_AS");

            let mut regions = Vec::with_capacity(N);
            for i in 0..N {
                let region = MmapRegion::attach_fd(sparse_memfd(POOL))
                    .unwrap_or_else(|e| panic!("pool {i}: {e}"));
                region
                    .region()
                    .write_at(POOL - 8, &i.to_le_bytes())
                    .unwrap();
                regions.push(region);
            }
            // Each default reservation is either whole (64 x 2 GiB) or the
            // length; the whole ones hold at most the budget beyond their
            // lengths: an eighth of the 2^47-byte address space of x86_64.
            let lens = mapping_lens();
            let reserved: Vec<usize> = regions
                .iter()
                .map(|r| lens[&(r.region().as_ptr() as usize)])
                .collect();
            let whole = reserved.iter().filter(|&&n| n == 64 * POOL).count();
            let exact = reserved.iter().filter(|&&n| n == POOL).count();
            assert_eq!(whole + exact, N, "{reserved:?}");
            let budget = if cfg!(target_arch = "x86_64") {
                16 * TIB
            } else {
                whole * 63 * POOL
            };
            assert_eq!(whole, budget / (63 * POOL), "whole reservations");
            assert!(
                whole >= 1 && exact >= N - 130,
                "{whole} whole, {exact} exact"
            );
            // Every pool stays mapped and keeps its bytes.
            for (i, r) in regions.iter().enumerate() {
                let mut buf = [0u8; 8];
                r.region().read_at(POOL - 8, &mut buf).unwrap();
                assert_eq!(usize::from_le_bytes(buf), i);
            }
            // A pool mapped exactly grows by moving; its bytes move along.
            let i = reserved.iter().position(|&n| n == POOL).unwrap();
            let before = regions[i].region().as_ptr();
            regions[i].resize(POOL + 4096).unwrap();
            assert_ne!(regions[i].region().as_ptr(), before);
            let mut buf = [0u8; 8];
            regions[i].region().read_at(POOL - 8, &mut buf).unwrap();
            assert_eq!(usize::from_le_bytes(buf), i);
            // Dropping the pools with whole reservations gives the budget
            // back: the next pool reserves in whole again.
            let whole_ones: Vec<usize> = (0..N).filter(|&i| reserved[i] == 64 * POOL).collect();
            for &i in whole_ones.iter().rev() {
                regions.swap_remove(i);
            }
            let next = MmapRegion::attach_fd(sparse_memfd(POOL)).unwrap();
            assert_eq!(mapping_len_at(next.region().as_ptr()), 64 * POOL);
        },
    );
}

#[test]
fn a_file_past_a_quarter_of_the_address_space_left_needs_an_explicit_max_size() {
    in_child(
        "a_file_past_a_quarter_of_the_address_space_left_needs_an_explicit_max_size",
        || {
            const HUGE: usize = 64 * TIB;
            let fd = sparse_memfd(HUGE);
            let err = MmapRegion::attach_fd(fd.try_clone().unwrap()).unwrap_err();
            assert_eq!(err.kind(), shm_region::ErrorKind::FileTooLarge);
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("attach_fd: size {HUGE} is past a quarter of the "))
                    && msg.ends_with(
                        " bytes of address space left; an explicit MmapOptions::max_size allows it"
                    ),
                "{msg}"
            );
            assert_eq!(
                kind(MmapRegion::attach_fd_read_only(fd.try_clone().unwrap())),
                shm_region::ErrorKind::FileTooLarge
            );
            // The number in the message is what the process has left, and
            // a quarter of it is below the file.
            let left: usize = msg
                .trim_start_matches(&format!("attach_fd: size {HUGE} is past a quarter of the "))
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(left / 4 < HUGE && left <= 128 * TIB, "{left}");

            // Past the quarter but short of half of what is left: refused
            // too, by the quarter rule (checked before the shares).
            let between = ((user_address_space() - vm_size()) / 8 * 3) & !0xfff;
            let err = MmapRegion::attach_fd(sparse_memfd(between)).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!(
                    "attach_fd: size {between} is past a quarter of the "
                )),
                "{err}"
            );

            // An explicit max_size that admits it maps it, and no more.
            let region = MmapOptions::new().max_size(HUGE).attach_fd(fd).unwrap();
            assert_eq!(region.len(), HUGE);
            assert_eq!(mapping_len_at(region.region().as_ptr()), HUGE);
            region.region().write_at(HUGE - 4, b"tail").unwrap();
            let mut buf = [0u8; 4];
            region.region().read_at(HUGE - 4, &mut buf).unwrap();
            assert_eq!(&buf, b"tail");
            drop(region);

            // A peer growing a file past the quarter is not followed.
            let fd = sparse_memfd(4096);
            let mut follower = MmapRegion::attach_fd(fd.try_clone().unwrap()).unwrap();
            rustix::fs::ftruncate(&fd, u64::try_from(HUGE).unwrap()).unwrap();
            let err = follower.check_and_remap().unwrap_err();
            assert_eq!(err.kind(), shm_region::ErrorKind::FileTooLarge);
            assert_eq!((follower.len(), follower.generation()), (4096, 0));
        },
    );
}

/// The user address space as the crate reckons it: the end of the highest
/// mapping (`[vsyscall]` aside) rounded up to a power of two.
fn user_address_space() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| !l.ends_with("[vsyscall]"))
        .filter_map(|l| {
            let end = l.split(' ').next()?.split_once('-')?.1;
            usize::from_str_radix(end, 16).ok()
        })
        .max()
        .unwrap()
        .next_power_of_two()
}

/// The message of a refusal by the share of files received by descriptor.
fn received_refusal(len: usize, cap: usize) -> String {
    share_refusal(
        "attach_fd",
        "files received by descriptor",
        "an eighth",
        len,
        cap,
    )
}

/// The message of a refusal by one origin's share of the address space.
fn share_refusal(op: &str, what: &str, part: &str, len: usize, cap: usize) -> String {
    format!(
        "{op}: mapping {len} bytes would take the mappings of {what} made without a max_size \
         past {cap} bytes, {part} of the address space, together; an explicit \
         MmapOptions::max_size allows it"
    )
}

/// The cap in a refusal by a share ([`share_refusal`]).
fn cap_in(msg: &str) -> usize {
    msg.split(" made without a max_size past ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no share in {msg:?}"))
}

#[test]
fn files_received_by_descriptor_without_max_size_map_at_most_an_eighth_of_the_address_space_together(
) {
    in_child(
        "files_received_by_descriptor_without_max_size_map_at_most_an_eighth_of_the_address_space_together",
        || {
            // Files of 2 TiB each pass the quarter rule one by one (the
            // address space left stays far above 8 TiB), as a hostile sender
            // would make them: sparse, costing it nothing.
            const FILE: usize = 2 * TIB;
            assert_eq!(getrlimit(Resource::As).current, None, "needs no RLIMIT_AS");
            let size = user_address_space();
            let cap = size / 8;
            let before = vm_size();
            let mut held = Vec::new();
            let err = loop {
                match MmapRegion::attach_fd(sparse_memfd(FILE)) {
                    Ok(region) => held.push(region),
                    Err(e) => break e,
                }
                assert!(held.len() <= cap / FILE, "{} files mapped", held.len());
            };
            // Exactly as many as fit in the share, then the refusal naming
            // max_size.
            assert_eq!(held.len(), cap / FILE);
            assert_eq!(err.kind(), shm_region::ErrorKind::FileTooLarge);
            assert_eq!(err.to_string(), received_refusal(FILE, cap));
            // The files and the reservations' budget (an eighth) at most.
            let grew = vm_size() - before;
            assert!(
                grew >= cap && grew <= cap + size / 8,
                "VmSize grew by {grew}"
            );
            // Read-only attaches and peers count too.
            assert_eq!(
                kind(MmapRegion::attach_fd_read_only(sparse_memfd(FILE))),
                shm_region::ErrorKind::FileTooLarge
            );
            assert_eq!(
                held[0].peer().unwrap_err().to_string(),
                received_refusal(FILE, cap).replacen("attach_fd", "peer", 1)
            );
            // An explicit max_size maps past the share.
            let bounded = MmapOptions::new()
                .max_size(FILE)
                .attach_fd(sparse_memfd(FILE))
                .unwrap();
            assert_eq!(bounded.len(), FILE);
            // A dropped mapping gives its share back.
            drop(held.pop());
            held.push(MmapRegion::attach_fd(sparse_memfd(FILE)).unwrap());
            assert_eq!(
                MmapRegion::attach_fd(sparse_memfd(FILE))
                    .unwrap_err()
                    .to_string(),
                received_refusal(FILE, cap)
            );
        },
    );
}

#[test]
fn threads_attaching_at_once_never_pass_the_share_together() {
    in_child(
        "threads_attaching_at_once_never_pass_the_share_together",
        || {
            const FILE: usize = 2 * TIB;
            const THREADS: usize = 8;
            assert_eq!(getrlimit(Resource::As).current, None, "needs no RLIMIT_AS");
            let cap = user_address_space() / 8;
            // The descriptors are made first, so that the threads race only
            // in attach_fd.
            let fds: Vec<Vec<_>> = (0..THREADS)
                .map(|_| (0..cap / FILE).map(|_| sparse_memfd(FILE)).collect())
                .collect();
            let start = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
            let threads: Vec<_> = fds
                .into_iter()
                .map(|fds| {
                    let start = std::sync::Arc::clone(&start);
                    std::thread::spawn(move || {
                        start.wait();
                        let mut mine = Vec::new();
                        for fd in fds {
                            match MmapRegion::attach_fd(fd) {
                                Ok(region) => mine.push(region),
                                Err(e) => {
                                    assert_eq!(e.to_string(), received_refusal(FILE, cap));
                                }
                            }
                        }
                        mine
                    })
                })
                .collect();
            let held: Vec<_> = threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect();
            assert_eq!(held.len(), cap / FILE);
        },
    );
}

/// A sparse file of `len` bytes (mode 0600) in `/dev/shm` under a name of
/// this test process; removed on drop.
struct ShmFile(String);

impl ShmFile {
    fn new(tag: &str, len: usize) -> Self {
        use std::os::unix::fs::OpenOptionsExt;
        let name = format!("shm-region-as-{tag}-{}", std::process::id());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(format!("/dev/shm/{name}"))
            .unwrap();
        file.set_len(u64::try_from(len).unwrap()).unwrap();
        Self(name)
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

#[test]
fn hostile_sparse_memfds_attached_first_leave_the_process_its_creations_and_path_attaches() {
    in_child(
        "hostile_sparse_memfds_attached_first_leave_the_process_its_creations_and_path_attaches",
        || {
            // Issue 23: four sparse 16 TiB memfds (four ftruncates for the
            // sender) attached with the defaults used to fill the half that
            // every mapping without max_size shared.
            assert_eq!(getrlimit(Resource::As).current, None, "needs no RLIMIT_AS");
            let size = user_address_space();
            let received = size / 8;
            let hostile: Vec<_> = (0..4).map(|_| sparse_memfd(16 * TIB)).collect();
            let mut taken = Vec::new();
            for fd in hostile {
                match MmapRegion::attach_fd(fd) {
                    Ok(region) => taken.push(region),
                    Err(e) => assert_eq!(e.to_string(), received_refusal(16 * TIB, received)),
                }
            }
            // With a 47-bit address space the first fills the share of
            // received files exactly; the others are refused.
            assert_eq!(taken.len(), received / (16 * TIB));

            // The process's own regions, with the defaults: created, attached
            // by path and by name, grown, and followed.
            let dir = tempfile::tempdir().unwrap();
            let path = seg(&dir);
            let mut sealed = MmapRegion::create_sealed("own", 4096).unwrap();
            let mut created = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
            let mut attached = MmapRegion::attach(&path).unwrap();
            let shm_name = format!("shm-region-as-own-{}", std::process::id());
            let mut by_name = MmapRegion::create_shm(&shm_name, 4096, FileCleanup::Manual).unwrap();
            let mut name_peer = MmapRegion::attach_shm(&shm_name).unwrap();
            sealed.resize(64 * MIB).unwrap();
            created.resize(64 * MIB).unwrap();
            by_name.resize(64 * MIB).unwrap();
            assert!(attached.check_and_remap().unwrap());
            assert!(name_peer.check_and_remap().unwrap());
            created.region().write_at(64 * MIB - 4, b"tail").unwrap();
            let mut buf = [0u8; 4];
            attached.region().read_at(64 * MIB - 4, &mut buf).unwrap();
            assert_eq!(&buf, b"tail");
            sealed.region().write_at(64 * MIB - 4, b"seal").unwrap();
            by_name.region().write_at(0, b"name").unwrap();
            name_peer.region().read_at(0, &mut buf).unwrap();
            assert_eq!(&buf, b"name");
            // And a peer of a created region is the creator's, not received.
            let sealed_peer = sealed.peer().unwrap();
            sealed_peer
                .region()
                .read_at(64 * MIB - 4, &mut buf)
                .unwrap();
            assert_eq!(&buf, b"seal");
            // The received share is still full.
            assert_eq!(
                MmapRegion::attach_fd(sparse_memfd(4096))
                    .unwrap_err()
                    .to_string(),
                received_refusal(4096, received)
            );
        },
    );
}

#[test]
fn without_rlimit_as_each_origin_admits_exactly_its_share_and_refuses_one_page_more() {
    in_child(
        "without_rlimit_as_each_origin_admits_exactly_its_share_and_refuses_one_page_more",
        || {
            assert_eq!(getrlimit(Resource::As).current, None, "needs no RLIMIT_AS");
            let page = rustix::param::page_size();
            let size = user_address_space();
            let mut sparse = MmapOptions::new();
            sparse.reserve_blocks(false);
            // Each share filled exactly, all three held at once. (Attached
            // first: each attached file must also pass the quarter rule, a
            // quarter of what is left, which under AddressSanitizer's shadow
            // memory a 16 TiB file passes only before the 32 TiB region.)
            let received = MmapRegion::attach_fd(sparse_memfd(size / 8)).unwrap();
            let file = ShmFile::new("named", size / 8);
            let named = MmapRegion::attach_shm(&file.0).unwrap();
            let created = sparse.create_sealed("created", size / 4).unwrap();
            assert_eq!(
                (created.len(), named.len(), received.len()),
                (size / 4, size / 8, size / 8)
            );
            // One page more is refused, by each share, naming its cap.
            let err = sparse.create_sealed("more", page).unwrap_err();
            assert_eq!(
                err.to_string(),
                share_refusal(
                    "create_sealed",
                    "regions this process created",
                    "a quarter",
                    page,
                    size / 4
                )
            );
            let more = ShmFile::new("more", page);
            let err = MmapRegion::attach_shm(&more.0).unwrap_err();
            assert_eq!(
                err.to_string(),
                share_refusal(
                    &format!("attach_shm /dev/shm/{}", more.0),
                    "files attached by path or name",
                    "an eighth",
                    page,
                    size / 8
                )
            );
            let err = MmapRegion::attach_fd(sparse_memfd(page)).unwrap_err();
            assert_eq!(err.to_string(), received_refusal(page, size / 8));
            // Given back, each share admits exactly its cap again; and the
            // peers of a created region, and growth of it that a holder of
            // its descriptor made, draw on the created share.
            drop((created, named, received));
            let mut exact = sparse.clone();
            exact.address_space(0);
            let created = sparse
                .create_sealed("created", size / 4 - 2 * page)
                .unwrap();
            let mut grown = exact.create_sealed("grown", page).unwrap();
            let peer = grown.peer().unwrap();
            let created_refusal = |op: &str, len: usize| {
                share_refusal(
                    op,
                    "regions this process created",
                    "a quarter",
                    len,
                    size / 4,
                )
            };
            assert_eq!(
                peer.peer().unwrap_err().to_string(),
                created_refusal("peer", page)
            );
            assert_eq!(
                kind(sparse.create_sealed("page", page)),
                shm_region::ErrorKind::FileTooLarge
            );
            drop(peer);
            let holder = grown.fd().unwrap().try_clone_to_owned().unwrap();
            rustix::fs::ftruncate(&holder, u64::try_from(2 * page).unwrap()).unwrap();
            // The new mapping is made while the old one is held.
            assert_eq!(
                grown.check_and_remap().unwrap_err().to_string(),
                created_refusal("check_and_remap", 2 * page)
            );
            assert_eq!(grown.len(), page);
            drop(created);
            assert!(grown.check_and_remap().unwrap());
            assert_eq!(grown.len(), 2 * page);
            let received = MmapRegion::attach_fd(sparse_memfd(size / 8 - page)).unwrap();
            let last_received = MmapRegion::attach_fd(sparse_memfd(page)).unwrap();
            assert_eq!(
                kind(MmapRegion::attach_fd(sparse_memfd(page))),
                shm_region::ErrorKind::FileTooLarge
            );
            assert_eq!(
                (received.len(), last_received.len()),
                (size / 8 - page, page)
            );
        },
    );
}

/// Sets the soft `RLIMIT_AS` to `limit`.
fn set_address_space_limit(limit: usize) {
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(u64::try_from(limit).unwrap()),
            maximum: getrlimit(Resource::As).maximum,
        },
    )
    .unwrap();
}

#[test]
fn under_rlimit_as_each_share_is_exactly_its_part_of_what_the_limit_leaves_it() {
    in_child(
        "under_rlimit_as_each_share_is_exactly_its_part_of_what_the_limit_leaves_it",
        || {
            // What the limit leaves a share is the limit less everything else
            // the process maps: the share's own mappings are not "else". Each
            // share (received by descriptor, attached by name, attached by
            // path, created) is pinned exactly (a third, or the use read as 0 or 1
            // byte, would move the cap), and admits exactly its cap less what
            // it holds, refusing one page more.
            let page = rustix::param::page_size();
            let limit = vm_size() + 4 * GIB;
            set_address_space_limit(limit);
            // No reservation beyond the length: nothing else moves VmSize.
            let mut exact = MmapOptions::new();
            exact.address_space(0).reserve_blocks(false);
            let held = 64 * MIB;
            type Map<'a> = &'a dyn Fn(usize) -> Result<MmapRegion, shm_region::Error>;
            // A file attached by name or path is unlinked once mapped, so
            // that the next one can take its name.
            let by_name = |len| {
                let file = ShmFile::new("exact-share", len);
                exact.attach_shm(&file.0)
            };
            let dir = tempfile::tempdir().unwrap();
            let by_path = |len| {
                let path = dir.path().join("exact-share");
                let file = std::fs::File::create_new(&path).unwrap();
                file.set_len(u64::try_from(len).unwrap()).unwrap();
                let r = exact.attach(&path);
                std::fs::remove_file(&path).unwrap();
                r
            };
            let cases: [(Map, usize, &str); 4] = [
                (&|len| exact.attach_fd(sparse_memfd(len)), 8, "attach_fd"),
                (&by_name, 8, "attach_shm"),
                (&by_path, 8, "attach"),
                (&|len| exact.create_sealed("share", len), 4, "create_sealed"),
            ];
            for (map, divisor, op) in cases {
                let first = map(held).unwrap();
                // Past the share, within the quarter rule of attach_fd.
                let probe = ((limit - vm_size()) / 4) & !(page - 1);
                let before = vm_size();
                let err = map(probe).unwrap_err();
                assert_eq!(vm_size(), before, "{op}: VmSize moved");
                let cap = cap_in(&err.to_string());
                assert_eq!(cap, (limit - (before - held)) / divisor, "{op}: {err}");
                let room = (cap - held) & !(page - 1);
                let fits = map(room).unwrap();
                assert_eq!(fits.len(), room);
                drop(fits);
                let err = map(room + page).unwrap_err();
                assert_eq!(cap_in(&err.to_string()), cap, "{op}: {err}");
                drop(first);
            }
        },
    );
}

/// A memfd of `len` bytes, every one written (`b'f'`), sealed with
/// `F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK`.
fn frozen_memfd(len: usize) -> std::os::fd::OwnedFd {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create("frozen", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .unwrap();
    let chunk = vec![b'f'; MIB];
    let mut off = 0;
    while off < len {
        let n = chunk.len().min(len - off);
        off += rustix::io::pwrite(&fd, &chunk[..n], u64::try_from(off).unwrap()).unwrap();
    }
    rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK)
        .unwrap();
    fd
}

#[test]
fn one_sealed_file_received_a_thousand_times_is_mapped_once_and_leaves_room_to_allocate_and_create()
{
    in_child(
        "one_sealed_file_received_a_thousand_times_is_mapped_once_and_leaves_room_to_allocate_and_create",
        || {
            // Issue 23: a 64 MiB sealed memfd sent 128 times used to be
            // mapped 128 times, until ENOMEM under a finite RLIMIT_AS.
            const LEN: usize = 64 * MIB;
            const SENDS: usize = 1000;
            let file = frozen_memfd(LEN);
            let (tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
            let before = vm_size();
            set_address_space_limit(before + GIB);
            let mut frozen = Vec::with_capacity(SENDS);
            for i in 0..SENDS {
                shm_region::fdpass::send(&tx, std::os::fd::AsFd::as_fd(&file)).unwrap();
                let fd = shm_region::fdpass::recv(&rx).unwrap();
                frozen.push(
                    shm_region::Frozen::attach_fd(fd).unwrap_or_else(|e| panic!("send {i}: {e}")),
                );
            }
            // One mapping, one descriptor: every handle shares them.
            let first = frozen[0].as_ptr();
            assert!(frozen.iter().all(|f| f.as_ptr() == first && f.len() == LEN));
            let raw = std::os::fd::AsRawFd::as_raw_fd(&frozen[0].fd());
            assert!(frozen
                .iter()
                .all(|f| std::os::fd::AsRawFd::as_raw_fd(&f.fd()) == raw));
            assert_eq!(mapping_len_at(first), LEN);
            let grew = vm_size() - before;
            assert!((LEN..LEN + MIB).contains(&grew), "VmSize grew by {grew}");
            assert!(frozen[SENDS - 1].iter().all(|&b| b == b'f'));
            // The rest of the limit is the program's.
            let mut big: Vec<u8> = Vec::new();
            big.try_reserve_exact(64 * MIB).unwrap();
            big.resize(64 * MIB, 1);
            let region = MmapRegion::create_sealed("after", 4096).unwrap();
            region.region().write_at(0, b"room").unwrap();
            // Dropped, the mapping goes; the next receipt maps it anew.
            drop(frozen);
            assert!(!shm_region_maps(first));
            shm_region::fdpass::send(&tx, std::os::fd::AsFd::as_fd(&file)).unwrap();
            let again = shm_region::Frozen::attach_fd(shm_region::fdpass::recv(&rx).unwrap())
                .unwrap();
            assert_eq!(again.len(), LEN);
        },
    );
}

/// Whether a mapping starts at `addr`.
fn shm_region_maps(addr: *const u8) -> bool {
    mapping_lens().contains_key(&(addr as usize))
}

#[test]
fn distinct_frozen_files_take_the_share_of_received_files_and_give_it_back() {
    in_child(
        "distinct_frozen_files_take_the_share_of_received_files_and_give_it_back",
        || {
            const LEN: usize = 16 * MIB;
            // The files are made first: what making them allocates (under
            // AddressSanitizer, kept mapped in its quarantine) then cannot
            // move the use that the share is reckoned from.
            let mut files: Vec<_> = (0..12).map(|_| frozen_memfd(LEN)).collect();
            let limit = vm_size() + GIB;
            set_address_space_limit(limit);
            let before = vm_size();
            let cap = (limit - before) / 8;
            let mut frozen = Vec::new();
            let err = loop {
                match shm_region::Frozen::attach_fd(files.pop().unwrap()) {
                    Ok(f) => frozen.push(f),
                    Err(e) => break e,
                }
                assert!(frozen.len() <= cap / LEN, "{} mapped", frozen.len());
            };
            assert_eq!(frozen.len(), cap / LEN);
            assert_eq!(err.kind(), shm_region::ErrorKind::FileTooLarge);
            assert_eq!(
                err.to_string(),
                format!(
                    "Frozen::attach_fd: mapping {LEN} bytes would take the mappings of files \
                     received by descriptor made without a max_size past {cap} bytes, an eighth \
                     of the address space, together; Frozen::attach_fd takes no max_size: \
                     MmapOptions::max_size with attach_fd_read_only maps it as a region"
                )
            );
            // Regions received by descriptor share it; created ones do not.
            assert_eq!(
                MmapRegion::attach_fd(sparse_memfd(LEN))
                    .unwrap_err()
                    .to_string(),
                received_refusal(LEN, cap)
            );
            // A dropped Frozen gives its share back.
            drop(frozen.pop());
            frozen.push(shm_region::Frozen::attach_fd(files.pop().unwrap()).unwrap());
            assert_eq!(
                kind(shm_region::Frozen::attach_fd(files.pop().unwrap())),
                shm_region::ErrorKind::FileTooLarge
            );
            let own = MmapRegion::create_sealed("own", LEN).unwrap();
            own.region().write_at(LEN - 3, b"own").unwrap();
        },
    );
}

/// A region this process created and then froze stays in the share of
/// created regions: the files it receives by descriptor still map exactly
/// the received share (reckoned as in the test above) beside it.
#[test]
fn a_region_this_process_created_and_froze_takes_the_created_share_not_the_received_one() {
    in_child(
        "a_region_this_process_created_and_froze_takes_the_created_share_not_the_received_one",
        || {
            const LEN: usize = 16 * MIB;
            let mut files: Vec<_> = (0..12).map(|_| frozen_memfd(LEN)).collect();
            let own = MmapRegion::create_sealed("own", LEN).unwrap();
            own.region().write_at(LEN - 3, b"own").unwrap();
            let own = own.freeze().unwrap();
            assert_eq!(&own[LEN - 3..], b"own");
            let limit = vm_size() + GIB;
            set_address_space_limit(limit);
            let before = vm_size();
            let cap = (limit - before) / 8;
            let mut frozen = Vec::new();
            let err = loop {
                match shm_region::Frozen::attach_fd(files.pop().unwrap()) {
                    Ok(f) => frozen.push(f),
                    Err(e) => break e,
                }
                assert!(frozen.len() <= cap / LEN, "{} mapped", frozen.len());
            };
            assert_eq!(frozen.len(), cap / LEN, "received files mapped beside it");
            assert_eq!(err.kind(), shm_region::ErrorKind::FileTooLarge);
            assert_eq!(
                MmapRegion::attach_fd(sparse_memfd(LEN))
                    .unwrap_err()
                    .to_string(),
                received_refusal(LEN, cap)
            );
            drop(own);
        },
    );
}

#[test]
fn under_rlimit_as_default_reservations_take_an_eighth_of_what_the_limit_leaves_together() {
    in_child(
        "under_rlimit_as_default_reservations_take_an_eighth_of_what_the_limit_leaves_together",
        || {
            const POOLS: usize = 64;
            let page = rustix::param::page_size();
            let mut held = Vec::with_capacity(POOLS);
            let before = vm_size();
            let limit = before + 4 * GIB;
            setrlimit(
                Resource::As,
                Rlimit {
                    current: Some(u64::try_from(limit).unwrap()),
                    maximum: getrlimit(Resource::As).maximum,
                },
            )
            .unwrap();
            for _ in 0..POOLS {
                held.push(MmapRegion::attach_fd(sparse_memfd(page)).unwrap());
            }
            // An eighth of the 4 GiB the limit left (with the pools' own
            // pages), and a little for the allocator.
            let grew = vm_size() - before;
            assert!(
                grew >= GIB / 8 && grew <= GIB / 2 + POOLS * page + 8 * MIB,
                "VmSize grew by {grew}"
            );
            // The rest of the limit is still there for the program.
            let mut big: Vec<u8> = Vec::new();
            big.try_reserve_exact(3 * GIB).unwrap();
        },
    );
}
