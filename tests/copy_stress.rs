//! Stress test of the large-copy paths through the public API:
//! random lengths up to 20 MiB and the length boundaries of the copy
//! choice, at random and chosen distances modulo 4096 between the mapping
//! and the caller's buffer, in both directions, with guard bytes around
//! both ends; and a racing writer during large copies (every byte read is
//! an old or a new value).
//!
//! `SHM_STRESS_ITERS` sets the random iterations (default 40, 6 in debug
//! builds). Not under Miri: megabytes of per-byte atomic copies would take
//! hours there (Miri runs the copy primitives' exactness tests in
//! `src/sys/copy.rs` on small buffers), and the guard-page test calls
//! `mmap`/`mprotect` itself.

#![cfg(all(unix, not(loom), not(miri)))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use shm_region::MmapRegion;

const MAX_LEN: usize = 20 << 20;
const PAGE: usize = 4096;
/// Room around the copied range in the region and the buffer.
const ROOM: usize = 2 * PAGE;
const GUARD: u8 = 0xEE;
const STALE: u8 = 0x01;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
}

fn data_byte(i: usize, seed: usize) -> u8 {
    u8::try_from(0x20 + (i * 37 + i / 4096 + seed) % 0xC0).unwrap()
}

/// One round trip of `len` bytes: region offset `roff`, buffer placed so
/// that (buffer address - region address) mod 4096 == `dist` (for
/// `write_at`, the buffer is the source; for `read_at`, the destination).
fn round_trip(
    region_host: &MmapRegion,
    buf: &mut [u8],
    len: usize,
    roff: usize,
    dist: usize,
    seed: usize,
) {
    let view = region_host.region();
    let data: Vec<u8> = (0..len).map(|i| data_byte(i, seed)).collect();
    // The mapping is page aligned (mmap), so the region address of roff is
    // roff mod 4096 past a page boundary.
    let base = buf.as_ptr() as usize;
    let want = (roff + dist) % PAGE;
    let b0 = ROOM + (want + PAGE - (base + ROOM) % PAGE) % PAGE;
    assert_eq!((base + b0) % PAGE, want);
    assert!(b0 + len + ROOM <= buf.len());
    let at = format!("len {len}, region offset {roff}, distance {dist}");

    // Only the buffer around the copy (ROOM bytes each side) is filled and
    // checked: the rest of it is never near a copy, and scanning 20 MiB per
    // round trip made the debug run take minutes.
    let (lo, hi) = (b0 - ROOM, b0 + len + ROOM);

    // write_at: the buffer is the source, the region the destination.
    buf[lo..hi].fill(GUARD);
    buf[b0..b0 + len].copy_from_slice(&data);
    view.write_at(roff - 16, &[GUARD; 16]).unwrap();
    view.write_at(roff + len, &[GUARD; 16]).unwrap();
    view.write_at(roff, &data)
        .unwrap_or_else(|e| panic!("write_at {at}: {e}"));
    let mut check = vec![0u8; len + 32];
    view.read_at(roff - 16, &mut check).unwrap();
    assert!(
        check[..16].iter().all(|&b| b == GUARD),
        "write_at before, {at}"
    );
    assert!(check[16..16 + len] == data[..], "write_at copied, {at}");
    assert!(
        check[16 + len..].iter().all(|&b| b == GUARD),
        "write_at after, {at}"
    );
    assert!(
        buf[lo..b0].iter().all(|&b| b == GUARD),
        "source before, {at}"
    );
    assert!(
        buf[b0 + len..hi].iter().all(|&b| b == GUARD),
        "source after, {at}"
    );

    // read_at: the region is the source, the buffer the destination.
    buf[lo..hi].fill(GUARD);
    buf[b0..b0 + len].fill(STALE);
    view.read_at(roff, &mut buf[b0..b0 + len])
        .unwrap_or_else(|e| panic!("read_at {at}: {e}"));
    assert!(
        buf[lo..b0].iter().all(|&b| b == GUARD),
        "read_at before, {at}"
    );
    if buf[b0..b0 + len] != data[..] {
        let first = (0..len).find(|&i| buf[b0 + i] != data[i]).unwrap();
        panic!("read_at copied, {at}: first wrong byte at {first}");
    }
    assert!(
        buf[b0 + len..hi].iter().all(|&b| b == GUARD),
        "read_at after, {at}"
    );
}

fn lengths_of_interest() -> Vec<usize> {
    let k = 1 << 10;
    let m = 1 << 20;
    let mut v = vec![0, 1, 255, 256, 257, 258, 289, 383, 384, 385, 511, 512, 513];
    for b in [4_usize * k, 16 * k, 32 * k, 64 * k, 128 * k, m, 16 * m] {
        // Debug builds (slow byte checks) take each boundary of 1 MiB and
        // more at -1, 0 and +1 only; release builds all nine.
        let deltas: &[isize] = if b >= m && cfg!(debug_assertions) {
            &[-1, 0, 1]
        } else {
            &[-33, -1, 0, 1, 31, 32, 33, 129, 257]
        };
        for &d in deltas {
            v.push(b.checked_add_signed(d).unwrap());
        }
    }
    v.push(MAX_LEN);
    v
}

fn distances() -> Vec<usize> {
    vec![
        0, 1, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 2048, 4031, 4032, 4064, 4095,
    ]
}

#[test]
fn read_at_and_write_at_are_exact_with_guards_intact_at_every_copy_path_boundary_length_and_distance(
) {
    let host = MmapRegion::in_memory(MAX_LEN + 2 * ROOM).unwrap();
    let mut buf = vec![GUARD; MAX_LEN + 3 * ROOM];
    for len in lengths_of_interest() {
        let ds: Vec<usize> = if len >= (1 << 20) - 64 {
            // Debug builds (slow byte checks): one distance in the
            // aliasing window and one out.
            if cfg!(debug_assertions) {
                vec![16, 4080]
            } else {
                vec![0, 1, 16, 63, 64, 4080]
            }
        } else {
            distances()
        };
        for (j, &dist) in ds.iter().enumerate() {
            let roff = ROOM + (j * 7) % 64;
            round_trip(&host, &mut buf, len, roff, dist, len + j);
        }
    }
}

#[test]
fn read_at_and_write_at_are_exact_at_random_lengths_to_20_mib_offsets_and_distances() {
    let iters: usize = std::env::var("SHM_STRESS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 6 } else { 40 });
    let seed: u64 = std::env::var("SHM_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    eprintln!("seed {seed}, {iters} iterations");
    let mut rng = Rng(seed | 1);
    let host = MmapRegion::in_memory(MAX_LEN + 2 * ROOM).unwrap();
    let mut buf = vec![GUARD; MAX_LEN + 3 * ROOM];
    for it in 0..iters {
        // Half the lengths small (every path below 1 MiB), half anywhere.
        let len = match rng.below(4) {
            0 => rng.below(4096),
            1 => rng.below(1 << 20),
            _ => rng.below(MAX_LEN + 1),
        };
        let roff = ROOM + rng.below(PAGE);
        let dist = if rng.below(2) == 0 {
            rng.below(70)
        } else {
            rng.below(PAGE)
        };
        round_trip(&host, &mut buf, len, roff, dist, it);
    }
}

/// A racing writer stores whole fills of A or B over the range while this
/// thread reads it with large copies: every byte must be INITIAL, A or B.
#[test]
fn a_read_at_racing_a_writer_reads_in_each_byte_only_values_written_there() {
    const LEN: usize = (16 << 20) + 4096;
    const INITIAL: u8 = 0x5A;
    const FILLS: [u8; 2] = [0x11, 0x22];
    let host = MmapRegion::in_memory(LEN + 2 * ROOM).unwrap();
    let view = host.region();
    view.write_at(0, &vec![INITIAL; LEN + 2 * ROOM]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let view = view.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let a = vec![FILLS[0]; LEN];
            let b = vec![FILLS[1]; LEN];
            let mut n = 0usize;
            // At least one write, however soon the reader is done.
            loop {
                let src = if n % 2 == 0 { &a } else { &b };
                let len = [300, 5000, 20 << 10, 70 << 10, 2 << 20, LEN][n % 6];
                view.write_at(ROOM + (n * 13) % 64, &src[..len]).unwrap();
                n += 1;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            n
        })
    };
    let mut buf = vec![0u8; LEN + 3 * ROOM];
    let base = buf.as_ptr() as usize;
    for (round, len) in [
        LEN,
        1 << 20,
        64 << 10,
        40 << 10,
        17 << 10,
        3000,
        LEN - 7,
        300,
    ]
    .iter()
    .cycle()
    // Debug builds (slow byte checks) read each length once.
    .take(if cfg!(debug_assertions) { 8 } else { 24 })
    .enumerate()
    {
        let roff = ROOM + (round * 5) % 64;
        let want = (roff + [0, 16, 1, 4000][round % 4]) % PAGE;
        let b0 = ROOM + (want + PAGE - (base + ROOM) % PAGE) % PAGE;
        buf.fill(GUARD);
        view.read_at(roff, &mut buf[b0..b0 + len]).unwrap();
        for (i, &b) in buf[b0..b0 + len].iter().enumerate() {
            assert!(
                b == INITIAL || FILLS.contains(&b),
                "round {round}: byte {i} of {len} read {b:#04x}"
            );
        }
        assert!(buf[..b0].iter().all(|&b| b == GUARD));
        assert!(buf[b0 + len..].iter().all(|&b| b == GUARD));
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    eprintln!("{writes} racing writes");
    assert!(writes > 0);
}

/// The other direction: this thread writes large fills while a reader
/// thread copies the range out; every byte it reads is old or new.
#[test]
fn a_reader_racing_a_large_write_at_sees_in_each_byte_only_values_written_there() {
    const LEN: usize = (16 << 20) + 4096;
    const INITIAL: u8 = 0x5A;
    const FILLS: [u8; 2] = [0x11, 0x22];
    let host = MmapRegion::in_memory(LEN + 2 * ROOM).unwrap();
    let view = host.region();
    view.write_at(0, &vec![INITIAL; LEN + 2 * ROOM]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let view = view.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; LEN];
            let mut n = 0usize;
            // At least one read, however soon the writer is done.
            loop {
                let len = [LEN, 300, 70 << 10, 1 << 20][n % 4];
                view.read_at(ROOM + (n * 3) % 64, &mut buf[..len]).unwrap();
                for &b in &buf[..len] {
                    assert!(b == INITIAL || FILLS.contains(&b), "read {b:#04x}");
                }
                n += 1;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            n
        })
    };
    for round in 0..16 {
        let data = vec![FILLS[round % 2]; LEN];
        let len = [LEN, 1 << 20, 32 << 10, 300][round % 4];
        view.write_at(ROOM + (round * 7) % 64, &data[..len])
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    eprintln!("{reads} racing reads");
    assert!(reads > 0);
}

/// `len` bytes of anonymous memory between two `PROT_NONE` pages, placed so
/// that the usable bytes start right after the first guard page (`at_end`
/// false) or end right before the last one (`at_end` true): an access one
/// byte outside faults.
struct Fenced {
    base: *mut u8,
    total: usize,
    start: usize,
    len: usize,
}

impl Fenced {
    fn new(len: usize, at_end: bool) -> Self {
        let pages = len.div_ceil(PAGE).max(1);
        let total = (pages + 2) * PAGE;
        // SAFETY: a fresh anonymous private mapping.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base.cast::<u8>();
        let last = base.wrapping_add(total - PAGE);
        for page in [base, last] {
            // SAFETY: the first or the last page of the mapping just made.
            let r = unsafe { libc::mprotect(page.cast(), PAGE, libc::PROT_NONE) };
            assert_eq!(r, 0);
        }
        let start = if at_end { total - PAGE - len } else { PAGE };
        Fenced {
            base,
            total,
            start,
            len,
        }
    }
    // A private anonymous mapping of this test, not shared memory.
    #[allow(clippy::disallowed_methods)]
    fn slice(&mut self) -> &mut [u8] {
        let p = self.base.wrapping_add(self.start);
        // SAFETY: `[p, p + len)` is inside the readable and writable middle
        // of this private mapping, borrowed through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(p, self.len) }
    }
}

impl Drop for Fenced {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), self.total) };
    }
}

#[test]
fn no_copy_reads_or_writes_a_byte_outside_a_buffer_between_prot_none_pages() {
    let iters: usize = std::env::var("SHM_STRESS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 6 } else { 40 });
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let host = MmapRegion::in_memory(MAX_LEN + 2 * ROOM).unwrap();
    let view = host.region();
    let mut lens = lengths_of_interest();
    for _ in 0..iters {
        lens.push(match rng.below(3) {
            0 => rng.below(4096),
            1 => rng.below(1 << 20),
            _ => rng.below(MAX_LEN + 1),
        });
    }
    for (j, &len) in lens.iter().enumerate() {
        // Debug builds (slow byte checks) stop at 1 MiB and a little more;
        // release builds (CI runs both) take every length to 20 MiB.
        if cfg!(debug_assertions) && len > (1 << 20) + 512 {
            continue;
        }
        for at_end in [false, true] {
            let mut f = Fenced::new(len, at_end);
            let data: Vec<u8> = (0..len).map(|i| data_byte(i, j)).collect();
            // Region offsets: distances 0, in the aliasing window, and not.
            let start = f.start;
            for dist in [0, 16, 63, 64, 2048] {
                let roff = ROOM + (start + PAGE - dist) % PAGE;
                f.slice().copy_from_slice(&data);
                view.write_at(roff, f.slice()).unwrap();
                f.slice().fill(STALE);
                view.read_at(roff, f.slice()).unwrap();
                assert!(
                    f.slice() == &data[..],
                    "len {len}, at_end {at_end}, dist {dist}"
                );
            }
        }
    }
}
