//! Scale check: a region grown to 16 GiB sparse (block reservation off) and
//! to 1 GiB with block reservation on, then attached by 32 processes at
//! once, each verifying a checksum of markers the host wrote every MiB.
//! Prints the time of each phase and the peak memory seen.
//!
//! ```text
//! cargo run --release --example scale_check            # both cases, 32 guests, on /dev/shm
//! cargo run --release --example scale_check -- 8       # 8 guests
//! ```

#[cfg(not(unix))]
fn main() {
    println!("scale_check: sparse files, block counts and /dev/shm need Unix");
}

#[cfg(unix)]
fn main() -> unix::Res {
    unix::main()
}

#[cfg(unix)]
mod unix {
    use std::error::Error;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use shm_region::{FileCleanup, MmapOptions, MmapRegion, Region};

    pub(super) type Res<T = ()> = Result<T, Box<dyn Error>>;

    const MIB: usize = 1 << 20;

    fn marker(i: u64) -> u64 {
        // splitmix64
        let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Reads the marker at the start of every MiB after the header page and
    /// folds them into a checksum.
    fn checksum(r: &Region) -> Res<(u64, u64)> {
        let mut sum = 0u64;
        let mut count = 0u64;
        let mut at = MIB;
        while at + 8 <= r.len() {
            let mut b = [0u8; 8];
            r.read_at(at, &mut b)?;
            sum = sum.rotate_left(7) ^ u64::from_le_bytes(b);
            count += 1;
            at += MIB;
        }
        Ok((sum, count))
    }

    /// The number (in KiB) on the line starting with `key` in a /proc file.
    fn proc_kib(file: &str, key: &str) -> u64 {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn vm_hwm_kib() -> u64 {
        proc_kib("/proc/self/status", "VmHWM:")
    }

    fn shmem_kib() -> u64 {
        proc_kib("/proc/meminfo", "Shmem:")
    }

    fn guest(path: &Path) -> Res {
        let start = Instant::now();
        let region = MmapRegion::attach(path)?;
        let view = region.region();
        let mut head = [0u8; 16];
        view.read_at(8, &mut head)?;
        let want_sum = u64::from_le_bytes(head[..8].try_into()?);
        let want_count = u64::from_le_bytes(head[8..].try_into()?);
        let (sum, count) = checksum(&view)?;
        if (sum, count) != (want_sum, want_count) {
            return Err(
                format!("checksum mismatch: {sum:x}/{count} vs {want_sum:x}/{want_count}").into(),
            );
        }
        println!("{} {}", start.elapsed().as_micros(), vm_hwm_kib());
        Ok(())
    }

    fn case(dir: &Path, name: &str, size: usize, reserve: bool, guests: usize) -> Res {
        let path = dir.join(name);
        let shmem_before = shmem_kib();
        let t = Instant::now();
        let mut host =
            MmapOptions::new()
                .reserve_blocks(reserve)
                .create(&path, MIB, FileCleanup::Manual)?;
        let base = host.region().as_ptr();
        let mut len = MIB;
        while len < size {
            len = (len * 2).min(size);
            host.resize(len)?;
        }
        let grow = t.elapsed();

        let t = Instant::now();
        let r = host.region();
        let mut sum = 0u64;
        let mut count = 0u64;
        let mut at = MIB;
        while at + 8 <= r.len() {
            let m = marker(count);
            r.write_at(at, &m.to_le_bytes())?;
            sum = sum.rotate_left(7) ^ m;
            count += 1;
            at += MIB;
        }
        r.write_at(8, &sum.to_le_bytes())?;
        r.write_at(16, &count.to_le_bytes())?;
        let fill = t.elapsed();

        let t = Instant::now();
        let children: Vec<_> = (0..guests)
            .map(|_| {
                Command::new(std::env::current_exe()?)
                    .arg("guest")
                    .arg(&path)
                    .stdout(Stdio::piped())
                    .spawn()
                    .map_err(Into::into)
            })
            .collect::<Res<_>>()?;
        let mut worst_us = 0u64;
        let mut peak_kib = 0u64;
        for c in children {
            let out = c.wait_with_output()?;
            if !out.status.success() {
                return Err(format!("a guest failed: {}", out.status).into());
            }
            let text = String::from_utf8(out.stdout)?;
            let mut it = text.split_whitespace().map(str::parse::<u64>);
            worst_us = worst_us.max(it.next().ok_or("no time")??);
            peak_kib = peak_kib.max(it.next().ok_or("no rss")??);
        }
        let attach_all = t.elapsed();
        let shmem = shmem_kib().saturating_sub(shmem_before);
        let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&path)?) * 512;

        println!(
        "| {name} | {} GiB | {} | {:.1} ms | {:.1} ms | {guests} | {:.1} ms | {:.1} ms | {} MiB | {} MiB | {} MiB | {} |",
        size >> 30,
        if reserve { "on" } else { "off" },
        grow.as_secs_f64() * 1e3,
        fill.as_secs_f64() * 1e3,
        attach_all.as_secs_f64() * 1e3,
        f64::from(u32::try_from(worst_us).unwrap_or(u32::MAX)) / 1e3,
        blocks >> 20,
        shmem >> 10,
        peak_kib >> 10,
        if host.region().as_ptr() == base { "no" } else { "yes" },
    );
        Ok(())
    }

    pub(super) fn main() -> Res {
        let args: Vec<String> = std::env::args().collect();
        if args.get(1).map(String::as_str) == Some("guest") {
            return guest(Path::new(args.get(2).ok_or("guest needs a path")?));
        }
        let guests: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(32);
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        println!(
            "directory: {} (host VmHWM before: {} MiB)",
            dir.path().display(),
            vm_hwm_kib() >> 10
        );
        println!("| case | size | blocks reserved | grow from 1 MiB (doubling) | write markers | guests | all guests attach + verify | slowest guest | file blocks | Shmem delta | peak guest RSS | base moved |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        case(dir.path(), "sparse16g", 16 << 30, false, guests)?;
        case(dir.path(), "reserved1g", 1 << 30, true, guests)?;
        println!("host VmHWM after: {} MiB", vm_hwm_kib() >> 10);
        Ok(())
    }
}
