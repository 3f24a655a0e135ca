//! `flush`, `advise` and `populate` do what they say to the mapping, seen in
//! `/proc/self/smaps`: after `flush` no page of the mapping is dirty (the
//! file system wrote them back), and after `advise(DontNeed)` none is
//! resident, while the bytes stay in the file.
//!
//! Write-back needs a file system that writes back (tmpfs keeps pages dirty
//! in memory), so the flush test uses the temporary directory where it is
//! not tmpfs, else Cargo's `target/tmp`, and records a skip (`common::skip`)
//! if both are.
#![cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
#![cfg(unix)]

mod common;

use common::*;
use shm_region::{Advice, FileCleanup, MmapRegion};

const PAGE: usize = 4096;
const PAGES: usize = 64;

/// The `Rss` and dirty (`Shared_Dirty` + `Private_Dirty`) kilobytes of the
/// mapping that starts at `addr`.
fn resident_and_dirty_kib(addr: *const u8) -> (u64, u64) {
    let start = format!("{:x}-", addr as usize);
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
    assert!(lines.next().is_some(), "no mapping starts at {addr:?}");
    let (mut rss, mut dirty) = (None, 0);
    for l in lines {
        if l.starts_with("VmFlags:") {
            break;
        }
        let mut f = l.split_whitespace();
        let (Some(key), Some(kib)) = (f.next(), f.next()) else {
            continue;
        };
        let kib: u64 = kib.parse().unwrap_or(0);
        match key {
            "Rss:" => rss = Some(kib),
            "Shared_Dirty:" | "Private_Dirty:" => dirty += kib,
            _ => {}
        }
    }
    (rss.expect("an Rss line"), dirty)
}

fn is_tmpfs(dir: &std::path::Path) -> bool {
    const TMPFS_MAGIC: u32 = 0x0102_1994;
    let st = rustix::fs::statfs(dir).unwrap();
    u32::try_from(st.f_type).is_ok_and(|t| t == TMPFS_MAGIC)
}

fn dirty_region(dir: &tempfile::TempDir) -> MmapRegion {
    let region = MmapRegion::create(seg(dir), PAGES * PAGE, FileCleanup::Manual).unwrap();
    for i in 0..PAGES {
        region.region().write_at(i * PAGE, &[0xA5; 8]).unwrap();
    }
    region
}

#[test]
fn flush_writes_every_dirty_page_back() {
    // The temporary directory, or Cargo's scratch directory under
    // target/ where the temporary directory is tmpfs.
    let mut dir = tempfile::tempdir().unwrap();
    if is_tmpfs(dir.path()) {
        dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    }
    if is_tmpfs(dir.path()) {
        skip(
            "flush_writes_every_dirty_page_back",
            "the temporary directory and target/tmp are on tmpfs",
        );
        return;
    }
    let region = dirty_region(&dir);
    let base = region.region().as_ptr();
    let (_, dirty) = resident_and_dirty_kib(base);
    assert_eq!(dirty, u64::try_from(PAGES * PAGE / 1024).unwrap());
    region.flush().unwrap();
    assert_eq!(resident_and_dirty_kib(base).1, 0);
}

#[test]
fn advise_dont_need_drops_the_pages_from_the_mapping_and_keeps_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let region = dirty_region(&dir);
    let base = region.region().as_ptr();
    let (rss, _) = resident_and_dirty_kib(base);
    assert_eq!(rss, u64::try_from(PAGES * PAGE / 1024).unwrap());
    region.advise(Advice::DontNeed).unwrap();
    assert_eq!(resident_and_dirty_kib(base).0, 0);
    // A shared file mapping loses no data: the pages come back from the
    // file (page cache) on the next access.
    let mut b = [0u8; 8];
    for i in 0..PAGES {
        region.region().read_at(i * PAGE, &mut b).unwrap();
        assert_eq!(b, [0xA5; 8], "page {i}");
    }
}

#[test]
fn advise_range_drops_exactly_the_pages_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let region = dirty_region(&dir);
    let base = region.region().as_ptr();
    let last = (PAGES - 1) * PAGE;
    region.flush_range(last, PAGE).unwrap();
    region.advise_range(last, PAGE, Advice::DontNeed).unwrap();
    let all = u64::try_from(PAGES * PAGE / 1024).unwrap();
    assert_eq!(resident_and_dirty_kib(base).0, all - 4);
    // One byte in the last page rounds to that page.
    region.region().read_at(last, &mut [0u8; 1]).unwrap();
    assert_eq!(resident_and_dirty_kib(base).0, all);
    region
        .advise_range(last + 100, 1, Advice::DontNeed)
        .unwrap();
    assert_eq!(resident_and_dirty_kib(base).0, all - 4);
    // A page in the middle: that one, not the ones after it.
    region
        .advise_range(10 * PAGE + 1, PAGE - 1, Advice::DontNeed)
        .unwrap();
    assert_eq!(resident_and_dirty_kib(base).0, all - 8);

    // The last page of a region whose reservation ends with it.
    let tight = shm_region::MmapOptions::new()
        .address_space(PAGES * PAGE)
        .create(dir.path().join("tight"), PAGES * PAGE, FileCleanup::Manual)
        .unwrap();
    tight.flush_range(last, PAGE).unwrap();
    tight.advise_range(last, PAGE, Advice::DontNeed).unwrap();
}

#[test]
fn populate_on_a_read_only_attach_faults_every_page_in() {
    let dir = tempfile::tempdir().unwrap();
    let host = dirty_region(&dir);
    host.advise(Advice::DontNeed).unwrap();
    let reader = shm_region::MmapOptions::new()
        .populate(true)
        .attach_read_only(seg(&dir))
        .unwrap();
    // Every page is in the reader's mapping before any access (read
    // populate: on a read-only mapping a write populate would be refused).
    let (rss, _) = resident_and_dirty_kib(reader.region().as_ptr());
    assert_eq!(rss, u64::try_from(PAGES * PAGE / 1024).unwrap());
    let mut b = [0u8; 8];
    reader.region().read_at(PAGE, &mut b).unwrap();
    assert_eq!(b, [0xA5; 8]);
}
