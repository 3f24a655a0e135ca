//! The main job: a host process creates a region, a guest process attaches
//! to it, the host grows it several times while the guest follows, and both
//! exchange data through it.
//!
//! ```text
//! cargo run --example host_guest
//! ```
//!
//! Layout of the region's first bytes (all little-endian atomics):
//! `0` host step, `8` guest ack, `16` guest's checksum of the step's tail,
//! `24` guest's length seen; the guest's reply text sits in the last 32
//! bytes of each step.

use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shm_region::{FileCleanup, MmapRegion, Region};

const STEP: usize = 0;
const ACK: usize = 8;
const SUM: usize = 16;
const SEEN: usize = 24;
const SIZES: [usize; 5] = [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20];

type Res<T = ()> = Result<T, Box<dyn Error>>;

fn byte_at(step: u64, i: usize) -> u8 {
    // Both operands are reduced below 256 before the conversion.
    u8::try_from((i % 253 + usize::try_from(step % 256).unwrap_or(0)) % 256).unwrap_or(0)
}

fn sum(r: &Region, from: usize, to: usize) -> Res<u64> {
    let mut buf = vec![0u8; to - from];
    r.read_at(from, &mut buf)?;
    Ok(buf.iter().map(|&b| u64::from(b)).sum())
}

fn wait_for(what: &str, mut cond: impl FnMut() -> Res<bool>) -> Res {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond()? {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

fn host() -> Res {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("host_guest.shm");
    let mut region = MmapRegion::create(&path, SIZES[0], FileCleanup::Manual)?;
    let base = region.region().as_ptr();
    println!(
        "host : created {} ({} bytes, generation {})",
        path.display(),
        region.len(),
        region.generation()
    );

    let mut guest = Command::new(std::env::current_exe()?)
        .arg("guest")
        .arg(&path)
        .spawn()?;
    let r = region.region();
    wait_for("the guest to attach", || {
        Ok(r.atomic_u64(ACK)?.load(Ordering::Acquire) == 1)
    })?;

    for (step, &size) in (2u64..).zip(&SIZES[1..]) {
        let from = region.len();
        region.resize(size)?;
        let r = region.region();
        let tail: Vec<u8> = (from..size).map(|i| byte_at(step, i)).collect();
        r.write_at(from, &tail)?;
        let expect: u64 = tail.iter().map(|&b| u64::from(b)).sum();
        r.atomic_u64(STEP)?.store(step, Ordering::Release);
        println!(
            "host : grew to {size} bytes, generation {}, base {}, tail checksum {expect}",
            region.generation(),
            if r.as_ptr() == base {
                "unchanged"
            } else {
                "moved"
            },
        );
        wait_for("the guest's ack", || {
            Ok(r.atomic_u64(ACK)?.load(Ordering::Acquire) == step)
        })?;
        let got = r.atomic_u64(SUM)?.load(Ordering::Relaxed);
        let seen = r.atomic_u64(SEEN)?.load(Ordering::Relaxed);
        let mut reply = [0u8; 32];
        r.read_at(size - 32, &mut reply)?;
        let reply = String::from_utf8_lossy(&reply);
        println!(
            "host : guest saw {seen} bytes, checksum {got}, replied {:?}",
            reply.trim_end_matches('\0')
        );
        if got != expect || seen != u64::try_from(size)? {
            return Err(
                format!("guest disagrees at step {step}: {seen} bytes, checksum {got}").into(),
            );
        }
    }
    let status = guest.wait()?;
    if !status.success() {
        return Err(format!("guest failed: {status}").into());
    }
    println!(
        "host : done: {} bytes, generation {}, base {} across all growth",
        region.len(),
        region.generation(),
        if region.region().as_ptr() == base {
            "never moved"
        } else {
            "moved"
        }
    );
    Ok(())
}

fn guest(path: &Path) -> Res {
    let mut region = MmapRegion::attach(path)?;
    let base = region.region().as_ptr();
    println!(
        "guest: attached {} bytes, generation {}",
        region.len(),
        region.generation()
    );
    region.region().atomic_u64(ACK)?.store(1, Ordering::Release);
    let mut done = 1;
    while done < 1 + u64::try_from(SIZES.len() - 1)? {
        let step = region.region().atomic_u64(STEP)?.load(Ordering::Acquire);
        if step <= done {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let from = region.len();
        let grew = region.check_and_remap()?;
        let r = region.region();
        let checksum = sum(&r, from, r.len())?;
        println!(
            "guest: step {step}: check_and_remap -> {grew}, now {} bytes, generation {}, base {}, tail checksum {checksum}",
            r.len(),
            r.generation(),
            if r.as_ptr() == base { "unchanged" } else { "moved" },
        );
        r.atomic_u64(SUM)?.store(checksum, Ordering::Relaxed);
        r.atomic_u64(SEEN)?
            .store(u64::try_from(r.len())?, Ordering::Relaxed);
        let mut reply = [0u8; 32];
        let text = format!("guest got step {step}");
        reply[..text.len()].copy_from_slice(text.as_bytes());
        r.write_at(r.len() - 32, &reply)?;
        r.atomic_u64(ACK)?.store(step, Ordering::Release);
        done = step;
    }
    println!("guest: done after {} generations", region.generation());
    Ok(())
}

fn main() -> Res {
    let args: Vec<_> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("guest") => guest(Path::new(args.get(2).ok_or("guest needs a path")?)),
        _ => host(),
    }
}
