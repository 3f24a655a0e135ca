//! `MmapOptions::dont_dump` and `dont_fork` (Linux): every mapping a handle
//! makes is marked, over its whole reservation, through growth in place,
//! moving remaps, peers, staged, sealed and in-memory regions; a core dump
//! holds none of a `dont_dump` region's bytes; a child made by `fork` gets
//! no part of a `dont_fork` mapping.
//!
//! The marks are read from `/proc/self/smaps` (`VmFlags`: `dd` for
//! `MADV_DONTDUMP`, `dc` for `MADV_DONTFORK`). The fork check runs in a real
//! child: std's `Command` forks when a `pre_exec` hook is set, and the hook
//! asks the kernel, in the child between `fork` and `exec`, whether the
//! range is mapped there. The dump check makes a child process dump core
//! and looks for the regions' bytes in the core file.
#![cfg(all(target_os = "linux", not(miri)))]
#![cfg(unix)]
// The fork probe needs `Command::pre_exec` and `madvise`; each unsafe block
// says why it is sound. The crate's own unsafe code stays in src/sys/.
#![allow(unsafe_code)]

mod common;

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::time::Duration;

use common::*;
use shm_region::{FileCleanup, MmapOptions, MmapRegion, Region};

const PAGE: usize = 4096;
/// The address-space reservation of the file mappings in these tests.
const RESERVE: usize = 16 * PAGE;

/// The entries covering `[addr, addr + len)`, which must all be mapped.
/// Other threads of the test binary map and unmap meanwhile, and a read of
/// smaps is not atomic, so it is read again until the entries found cover
/// the range without a gap.
fn vmas_over(addr: usize, len: usize) -> Vec<Vma> {
    for _ in 0..20 {
        let mut over: Vec<Vma> = read_smaps()
            .into_iter()
            .filter(|v| v.start < addr + len && v.end > addr)
            .collect();
        over.sort_by_key(|v| v.start);
        let mut next = addr;
        for v in &over {
            if v.start > next {
                break;
            }
            next = next.max(v.end);
        }
        if next >= addr + len {
            return over;
        }
    }
    panic!("[{addr:#x}, +{len:#x}) is not mapped");
}

/// Whether every page of `[addr, addr + len)` has `flag` in its `VmFlags`
/// (`Some(true)`), none has (`Some(false)`), or some have (`None`).
fn flag_over(addr: usize, len: usize, flag: &str) -> Option<bool> {
    let over = vmas_over(addr, len);
    let with = over.iter().filter(|v| v.flags.iter().any(|f| f == flag));
    match with.count() {
        0 => Some(false),
        n if n == over.len() => Some(true),
        _ => None,
    }
}

fn base(r: &Region) -> usize {
    r.as_ptr() as usize
}

/// The reservation of a mapping of `len` bytes made with [`RESERVE`].
fn reservation(len: usize) -> usize {
    len.max(RESERVE).next_multiple_of(PAGE)
}

/// Asserts that the whole reservation of the mapping behind `r` has `flag`
/// and not `other`.
fn assert_marked(r: &Region, flag: &str, other: &str, what: &str) {
    let len = reservation(r.len());
    assert_eq!(flag_over(base(r), len, flag), Some(true), "{what}: {flag}");
    assert_eq!(
        flag_over(base(r), len, other),
        Some(false),
        "{what}: {other}"
    );
}

/// Every kind of mapping a handle with `opts` makes carries `flag` (and not
/// `other`) over its whole reservation.
fn every_mapping_is_marked(opts: &MmapOptions, flag: &str, other: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut host = opts.create(&path, PAGE, FileCleanup::Manual).unwrap();
    let first = host.region();
    assert_marked(&first, flag, other, "create");

    host.resize(8 * PAGE).unwrap();
    assert_eq!(base(&host.region()), base(&first), "grown in place");
    assert_marked(&host.region(), flag, other, "growth in place");

    let mut guest = opts.attach(&path).unwrap();
    assert_marked(&guest.region(), flag, other, "attach");
    let reader = opts.attach_read_only(&path).unwrap();
    assert_marked(&reader.region(), flag, other, "attach_read_only");
    let fd = host.fd().unwrap().try_clone_to_owned().unwrap();
    let by_fd = opts.attach_fd(fd).unwrap();
    assert_marked(&by_fd.region(), flag, other, "attach_fd");
    let peer = host.peer().unwrap();
    assert_marked(&peer.region(), flag, other, "peer");

    // Past the reservation: the host's new mapping moves, and so does the
    // guest's when it follows.
    host.resize(4 * RESERVE).unwrap();
    assert_ne!(base(&host.region()), base(&first), "moved");
    assert_marked(&host.region(), flag, other, "growth that moves");
    let before = base(&guest.region());
    assert!(guest.check_and_remap().unwrap());
    assert_ne!(base(&guest.region()), before, "moved");
    assert_marked(&guest.region(), flag, other, "check_and_remap that moves");
    drop((first, reader, by_fd, peer));

    let sealed = opts.create_sealed("secrets", PAGE).unwrap();
    assert_marked(&sealed.region(), flag, other, "create_sealed");

    let mut staged = opts.stage(dir.path().join("staged"), PAGE).unwrap();
    assert_marked(&staged.region(), flag, other, "stage");
    staged.handle().resize(4 * RESERVE).unwrap();
    assert_marked(&staged.region(), flag, other, "staged growth that moves");
    let published = staged.publish().unwrap();
    assert_marked(&published.region(), flag, other, "published");

    let memory = opts.in_memory(PAGE).unwrap();
    assert_marked(&memory.region(), flag, other, "in_memory");
    let memory_peer = memory.peer().unwrap();
    assert_marked(&memory_peer.region(), flag, other, "in-memory peer");
}

#[test]
fn dont_dump_marks_every_mapping_dd_over_its_whole_reservation_through_growth() {
    let mut opts = MmapOptions::new();
    opts.address_space(RESERVE).dont_dump(true);
    every_mapping_is_marked(&opts, "dd", "dc");
}

#[test]
fn dont_fork_marks_every_mapping_dc_over_its_whole_reservation_through_growth() {
    let mut opts = MmapOptions::new();
    opts.address_space(RESERVE).dont_fork(true);
    every_mapping_is_marked(&opts, "dc", "dd");
}

#[test]
fn without_dont_dump_or_dont_fork_no_mapping_is_marked() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = MmapOptions::new();
    opts.address_space(RESERVE);
    let file = opts.create(seg(&dir), PAGE, FileCleanup::Manual).unwrap();
    let memory = opts.in_memory(PAGE).unwrap();
    for r in [file.region(), memory.region()] {
        for flag in ["dd", "dc"] {
            assert_eq!(flag_over(base(&r), RESERVE, flag), Some(false), "{flag}");
        }
    }
    // The plain constructors use the defaults: nothing is marked either.
    let plain = MmapRegion::create(dir.path().join("plain"), PAGE, FileCleanup::Manual).unwrap();
    for flag in ["dd", "dc"] {
        assert_eq!(flag_over(base(&plain.region()), PAGE, flag), Some(false));
    }
}

/// Whether all of `[addr, addr + len)` is mapped in a child made by
/// `fork`. std's `Command` forks when a `pre_exec` hook is set; the hook
/// runs in the child before `exec` and asks with `madvise(MADV_NORMAL)`,
/// which fails with `ENOMEM` when part of the range is not mapped. The
/// hook's error comes back from `spawn`; without one the child execs this
/// test binary with a filter that matches no test.
fn mapped_in_a_forked_child(addr: usize, len: usize) -> bool {
    // An errno no step of `spawn` itself reports, to tell the answer
    // "unmapped" from a failure to fork or exec.
    let unmapped = rustix::io::Errno::NOTRECOVERABLE.raw_os_error();
    let probe = move || -> io::Result<()> {
        let ptr = addr as *mut std::ffi::c_void;
        // SAFETY: `MADV_NORMAL` only resets read-ahead hints of whatever is
        // mapped in the range, in this child, which is about to exec and
        // keeps none of it; on an unmapped part it changes nothing.
        let res = unsafe { rustix::mm::madvise(ptr, len, rustix::mm::Advice::Normal) };
        match res {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::NOMEM) => Err(io::Error::from_raw_os_error(unmapped)),
            Err(e) => Err(e.into()),
        }
    };
    let mut cmd = spawn_self("no test has this name", "fork-probe", &[]);
    // SAFETY: the hook runs in the child between `fork` and `exec`, where
    // only async-signal-safe work is allowed (other threads of the test
    // binary may have held locks at the fork): it makes one system call
    // (rustix's `madvise`) and builds an `io::Error` from an error code,
    // which allocates nothing and takes no lock.
    unsafe { cmd.pre_exec(probe) };
    match cmd.spawn() {
        Ok(mut child) => {
            assert_child_succeeds(&mut child);
            true
        }
        Err(e) if e.raw_os_error() == Some(unmapped) => false,
        Err(e) => panic!("the fork probe failed: {e}"),
    }
}

/// The first page, the page at the end of the data and the last page of
/// the reservation of the mapping behind `r`: all absent from a child.
fn assert_absent_in_a_forked_child(r: &Region, what: &str) {
    let end = reservation(r.len());
    let data_end = r.len().next_multiple_of(PAGE);
    for at in [0, data_end - PAGE, end - PAGE] {
        assert!(
            !mapped_in_a_forked_child(base(r) + at, PAGE),
            "{what}: page at {at:#x} is mapped in the child"
        );
    }
}

#[test]
fn a_child_made_by_fork_gets_no_part_of_a_dont_fork_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let mut plain = MmapOptions::new();
    plain.address_space(RESERVE);
    // The probe can say "mapped": without the option the child has all of it.
    let shared = plain.create(seg(&dir), PAGE, FileCleanup::Manual).unwrap();
    assert!(mapped_in_a_forked_child(base(&shared.region()), RESERVE));
    let memory = plain.in_memory(PAGE).unwrap();
    assert!(mapped_in_a_forked_child(base(&memory.region()), RESERVE));

    let mut opts = plain.clone();
    opts.dont_fork(true);
    let mut host = opts
        .create(dir.path().join("secret"), PAGE, FileCleanup::Manual)
        .unwrap();
    host.region().write_at(0, b"secret").unwrap();
    assert_absent_in_a_forked_child(&host.region(), "create");
    host.resize(8 * PAGE).unwrap();
    assert_absent_in_a_forked_child(&host.region(), "growth in place");
    host.resize(4 * RESERVE).unwrap();
    assert_absent_in_a_forked_child(&host.region(), "growth that moves");
    let memory = opts.in_memory(PAGE).unwrap();
    assert_absent_in_a_forked_child(&memory.region(), "in_memory");

    // The parent's own mapping is untouched by all this.
    let mut b = [0u8; 6];
    host.region().read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"secret");
}

/// 64 bytes that exist only in the region they are written to: the child
/// writes them one at a time, so no buffer of the child holds the run.
fn marker(seed: usize, i: usize) -> u8 {
    u8::try_from((i * i * 31 + i * 7 + seed * 101 + 3) % 251).unwrap()
}

const MARKER_LEN: usize = 64;

fn marker_bytes(seed: usize) -> Vec<u8> {
    (0..MARKER_LEN).map(|i| marker(seed, i)).collect()
}

/// Seeds of the regions made with `dont_dump` (in-memory, sealed memfd,
/// file with a name) and of the same kinds made without it.
const HIDDEN: [usize; 3] = [1, 2, 3];
const SHOWN: [usize; 3] = [4, 5, 6];

/// The child: allows itself a core file, asks the kernel to dump every
/// kind of mapping the regions are (`coredump_filter` 0x3b: private and
/// shared anonymous memory, shared file mappings, ELF headers, private
/// huge pages), makes the regions, writes their markers and aborts.
fn dump_core_with_regions(dir: &std::path::Path) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let hard = getrlimit(Resource::Core).maximum;
    setrlimit(
        Resource::Core,
        Rlimit {
            current: hard,
            maximum: hard,
        },
    )
    .unwrap();
    std::fs::write("/proc/self/coredump_filter", "0x3b").unwrap();
    let mut regions = Vec::new();
    for (dont_dump, seeds) in [(true, HIDDEN), (false, SHOWN)] {
        let mut opts = MmapOptions::new();
        opts.address_space(RESERVE).dont_dump(dont_dump);
        let named = dir.join(format!("named-{dont_dump}"));
        regions.push((seeds[0], opts.in_memory(PAGE).unwrap()));
        regions.push((seeds[1], opts.create_sealed("dump", PAGE).unwrap()));
        let file = opts.create(&named, PAGE, FileCleanup::Manual).unwrap();
        regions.push((seeds[2], file));
    }
    for (seed, region) in &regions {
        let r = region.region();
        for i in 0..MARKER_LEN {
            r.write_at(PAGE / 2 + i, &[marker(*seed, i)]).unwrap();
        }
    }
    std::process::abort();
}

#[test]
fn a_core_dump_leaves_out_every_dont_dump_region_and_keeps_the_others() {
    const NAME: &str = "a_core_dump_leaves_out_every_dont_dump_region_and_keeps_the_others";
    if let Some(dir) = role() {
        dump_core_with_regions(dir.as_ref());
        return;
    }
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let hard = rustix::process::getrlimit(rustix::process::Resource::Core).maximum;
    if core_pattern.starts_with('|') || core_pattern.contains('/') || hard == Some(0) {
        skip(
            NAME,
            &format!(
                "core files are not written to the working directory \
                 (core_pattern {:?}, hard RLIMIT_CORE {hard:?})",
                core_pattern.trim()
            ),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_self(NAME, dir.path().to_str().unwrap(), &[])
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    assert_eq!(status.signal(), Some(6), "the child aborts: {status}");
    assert!(status.core_dumped(), "the child dumped core: {status}");
    let core = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("core"))
        .expect("a core file in the child's working directory");
    let core = std::fs::read(core).unwrap();
    // An ELF core file holds each dumped mapping page by page from a
    // page-aligned offset, so a marker written at `PAGE / 2` of a page is
    // at that place of a page of the file, if anywhere. (The regions made
    // without `dont_dump` are found there: that checks the layout too.)
    let found = |seed: usize| {
        let m = marker_bytes(seed);
        core.chunks_exact(PAGE)
            .any(|page| page[PAGE / 2..PAGE / 2 + MARKER_LEN] == m[..])
    };
    for seed in SHOWN {
        assert!(
            found(seed),
            "region {seed}, made without dont_dump, is in the core"
        );
    }
    for seed in HIDDEN {
        assert!(
            !found(seed),
            "region {seed}, made with dont_dump, is in the core"
        );
    }
}
