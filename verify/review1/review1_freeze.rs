//! Review 1 reproducer: `freeze` allocates whatever size a peer holding a
//! writable descriptor grew the memfd to (not part of the suite).
#![cfg(all(target_os = "linux", not(miri)))]

use std::os::fd::{AsFd, AsRawFd};

use shm_region::MmapRegion;

fn shmem_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap();
    s.lines()
        .find(|l| l.starts_with("Shmem:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

fn rss_shmem_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("RssShmem:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn review1_freeze_allocates_the_size_a_peer_grew_the_file_to() {
    let region = MmapRegion::create_sealed("small", 4096).unwrap();
    // The peer: a writable reopening of the descriptor it was sent.
    let peer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!(
            "/proc/self/fd/{}",
            region.fd().unwrap().as_fd().as_raw_fd()
        ))
        .unwrap();
    let grown: u64 = 2 << 30;
    peer.set_len(grown).unwrap(); // sparse: costs the peer nothing
    let before = shmem_kib();
    let t = std::time::Instant::now();
    let frozen = region.freeze().map_err(|e| e.to_string()).unwrap();
    println!(
        "region of 4096 bytes froze into a Frozen of {} bytes in {:?}; system Shmem grew by {} MiB; RssShmem now {} MiB",
        frozen.len(),
        t.elapsed(),
        (shmem_kib().saturating_sub(before)) / 1024,
        rss_shmem_kib() / 1024
    );
}
