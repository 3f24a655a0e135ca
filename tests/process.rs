//! Behaviour across real process boundaries: a guest process follows the
//! host's growth, and space exhaustion on a small tmpfs is an error, never
//! SIGBUS.
#![cfg(all(unix, not(miri)))]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use shm_region::{ErrorKind, FileCleanup, MmapRegion, Region};

const STEP: usize = 0;
const ACK: usize = 8;
const SEEN_LEN: usize = 16;
const SUM: usize = 24;
const READY: usize = 32;
const CHUNK: usize = 64 * 1024;
const STEPS: u64 = 5;

fn pattern(step: u64, i: usize) -> u8 {
    // `i % 251` and `step` are small, so the sum fits a byte after `% 256`.
    u8::try_from((i % 251 + usize::try_from(step).unwrap()) % 256).unwrap()
}

fn checksum(r: &Region, from: usize, to: usize) -> u64 {
    let mut buf = vec![0u8; to - from];
    r.read_at(from, &mut buf).unwrap();
    buf.iter().map(|&b| u64::from(b)).sum()
}

fn len_for(step: u64) -> usize {
    (usize::try_from(step).unwrap() + 1) * CHUNK
}

/// The guest: attaches by path, follows each growth with `check_and_remap`,
/// verifies the host's bytes in the new tail and acknowledges through the
/// region itself.
fn guest(path: &str) {
    let mut g = MmapRegion::attach(path).unwrap();
    assert_eq!(g.len(), CHUNK, "attached before the first growth");
    g.region()
        .atomic_u64(READY)
        .unwrap()
        .store(1, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = 0;
    while done < STEPS {
        assert!(Instant::now() < deadline, "guest timed out at step {done}");
        let step = g.region().atomic_u64(STEP).unwrap().load(Ordering::Acquire);
        if step == done {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        assert_eq!(step, done + 1, "host skipped a step");
        assert!(
            g.check_and_remap().unwrap(),
            "growth not seen at step {step}"
        );
        assert_eq!(g.generation(), step);
        let r = g.region();
        assert_eq!(r.len(), len_for(step));
        let from = len_for(step - 1);
        let mut tail = vec![0u8; r.len() - from];
        r.read_at(from, &mut tail).unwrap();
        for (i, b) in tail.iter().enumerate() {
            assert_eq!(
                *b,
                pattern(step, from + i),
                "byte {} at step {step}",
                from + i
            );
        }
        r.atomic_u64(SEEN_LEN)
            .unwrap()
            .store(u64::try_from(r.len()).unwrap(), Ordering::Relaxed);
        r.atomic_u64(SUM)
            .unwrap()
            .store(checksum(&r, from, r.len()), Ordering::Relaxed);
        r.write_at(r.len() - 8, b"guest ok").unwrap();
        r.atomic_u64(ACK).unwrap().store(step, Ordering::Release);
        done = step;
    }
}

#[test]
fn guest_process_follows_growth_and_acknowledges_through_the_region() {
    const NAME: &str = "guest_process_follows_growth_and_acknowledges_through_the_region";
    if let Some(path) = role() {
        guest(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = seg(&dir);
    let mut host = MmapRegion::create(&path, CHUNK, FileCleanup::Manual).unwrap();
    let mut child = spawn_self(NAME, path.to_str().unwrap(), &[])
        .spawn()
        .unwrap();
    let base = host.region().as_ptr();
    let ready = host.region();
    wait_until(Duration::from_secs(60), "the guest to attach", || {
        ready.atomic_u64(READY).unwrap().load(Ordering::Acquire) == 1
    });
    for step in 1..=STEPS {
        let from = host.len();
        host.resize(len_for(step)).unwrap();
        let r = host.region();
        let tail: Vec<u8> = (from..r.len()).map(|i| pattern(step, i)).collect();
        r.write_at(from, &tail).unwrap();
        let expected_sum: u64 = tail.iter().map(|&b| u64::from(b)).sum();
        r.atomic_u64(STEP).unwrap().store(step, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(60);
        while r.atomic_u64(ACK).unwrap().load(Ordering::Acquire) != step {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("guest exited early at step {step}: {st}");
            }
            assert!(Instant::now() < deadline, "no ack for step {step}");
            std::thread::sleep(Duration::from_millis(1));
        }
        let seen = r.atomic_u64(SEEN_LEN).unwrap().load(Ordering::Relaxed);
        assert_eq!(seen, u64::try_from(len_for(step)).unwrap());
        assert_eq!(
            r.atomic_u64(SUM).unwrap().load(Ordering::Relaxed),
            expected_sum
        );
        let mut ok = [0u8; 8];
        r.read_at(r.len() - 8, &mut ok).unwrap();
        assert_eq!(&ok, b"guest ok");
        // The guest never changed the file's size.
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            u64::try_from(len_for(step)).unwrap()
        );
    }
    assert_child_succeeds(&mut child);
    assert_eq!(host.region().as_ptr(), base, "host grew in place");
    assert_eq!(host.generation(), STEPS);
}

#[test]
fn growth_beyond_free_space_on_tmpfs_is_an_error_and_the_region_stays_usable() {
    let fs = match Tmpfs::mount("2m") {
        Ok(fs) => fs,
        Err(why) => {
            skip(
                "growth_beyond_free_space_on_tmpfs_is_an_error_and_the_region_stays_usable",
                &why,
            );
            return;
        }
    };
    let path = fs.path().join("segment");
    let mut host = MmapRegion::create(&path, 1 << 20, FileCleanup::Manual).unwrap();
    let mut guest = MmapRegion::attach(&path).unwrap();
    host.region().write_at(0, b"before").unwrap();

    let err = host.resize(4 << 20).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull, "{err:?}");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::StorageFull
    );
    assert_eq!((host.len(), host.generation()), (1 << 20, 0));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
    assert!(
        !guest.check_and_remap().unwrap(),
        "a failed grow was visible"
    );

    // Still fully usable: every byte can be written and read back.
    let r = host.region();
    let ones = vec![0x5A; 1 << 20];
    r.write_at(0, &ones).unwrap();
    let mut back = vec![0; 1 << 20];
    r.read_at(0, &mut back).unwrap();
    assert_eq!(back, ones);

    // A growth that fits succeeds, and every byte of it is backed: touching
    // all of it (here and in the guest) cannot fault.
    host.resize(3 << 19).unwrap();
    let r = host.region();
    let all = vec![0xC3; 3 << 19];
    r.write_at(0, &all).unwrap();
    assert!(guest.check_and_remap().unwrap());
    let mut seen = vec![0; 3 << 19];
    guest.region().read_at(0, &mut seen).unwrap();
    assert_eq!(seen, all);
    drop((host, guest));
    assert!(!path.exists());
}

#[test]
fn create_beyond_free_space_on_tmpfs_fails_and_leaves_nothing() {
    let fs = match Tmpfs::mount("2m") {
        Ok(fs) => fs,
        Err(why) => {
            skip(
                "create_beyond_free_space_on_tmpfs_fails_and_leaves_nothing",
                &why,
            );
            return;
        }
    };
    let path = fs.path().join("segment");
    let err = MmapRegion::create(&path, 4 << 20, FileCleanup::Manual).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull);
    assert_eq!(std::fs::read_dir(fs.path()).unwrap().count(), 0);
    // The space is all still there.
    let ok = MmapRegion::create(&path, 2 << 20, FileCleanup::Manual).unwrap();
    ok.region().write_at((2 << 20) - 1, &[1]).unwrap();
}
