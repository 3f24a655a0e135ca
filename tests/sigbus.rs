//! `SIGBUS` containment (`shm_region::sigbus`, Linux): a peer truncating a
//! path-backed file under our mappings never kills a process that installed
//! the guard, checked accessors report `Truncated` instead of bytes from
//! replaced pages, and faults that are not the crate's still reach the
//! previous disposition.
//!
//! Every test runs its body in a child process (this binary re-run with a
//! role): installing the handler is process-wide, and a death must be seen
//! as the child's exit status, not as a crash of the harness.
#![cfg(all(target_os = "linux", not(miri)))]
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use shm_region::{sigbus, ErrorKind, FileCleanup, MmapRegion, Region};

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;
/// The length the truncating peer cuts the file to (never below it).
const KEPT: usize = 4096;
/// How long the truncating peer runs, and so how long the host loops.
const DURATION: Duration = Duration::from_secs(3);
const PATH_VAR: &str = "SHM_SIGBUS_PATH";

/// The byte the host writes at position `i`: never 0, so a 0 can only be
/// a byte the peer's truncation removed.
fn pattern(i: usize) -> u8 {
    u8::try_from(i % 251).unwrap() + 1
}

/// Re-runs `test` as a child in `role`, with ASan (when the suite runs
/// under it) leaving `SIGBUS` alone, so the child dies of the signal as a
/// plain build does instead of ASan reporting it.
fn child(test: &str, role: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = spawn_self(test, role, env);
    let asan = std::env::var("ASAN_OPTIONS").unwrap_or_default();
    cmd.env("ASAN_OPTIONS", format!("{asan}:handle_sigbus=0"));
    cmd
}

/// Runs `test` in `role` to its end (at most a minute) and returns its
/// status and what it printed.
fn run_child(test: &str, role: &str, env: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut c = child(test, role, env)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read on another thread, so that a child that hangs (a handler that
    // loops) is killed at the time limit instead of blocking the read.
    let mut stdout = c.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    let status = wait_with_timeout(&mut c, Duration::from_secs(60));
    let out = reader.join().unwrap();
    print!("{out}");
    (status, out)
}

fn base_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

/// The truncating peer: cuts the file at `PATH_VAR` to `KEPT` bytes and
/// grows it back to 1 MiB, with plain `std::fs::File::set_len`, for
/// `DURATION`; prints how many times.
fn truncator() {
    let path = std::env::var(PATH_VAR).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let start = Instant::now();
    let mut cycles = 0u64;
    while start.elapsed() < DURATION {
        file.set_len(u64::try_from(KEPT).unwrap()).unwrap();
        std::thread::sleep(Duration::from_micros(500));
        file.set_len(u64::try_from(MIB).unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        cycles += 1;
    }
    // The host may be dead (unguarded run): ignore a closed pipe.
    let _ = writeln!(std::io::stdout(), "truncations by the peer: {cycles}");
}

/// A small xorshift generator: no dependency, reproducible per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % (1 << 40)).unwrap()
    }
}

/// Asserts what an `Ok` read may hold: at each position `i` the byte the
/// host writes there (`pattern(i)`), or 0 where the peer's truncation
/// removed it (a truncation zeroes everything past `KEPT` in the file, and
/// the host may not have written the byte again since). Below `KEPT`,
/// which the peer never cuts, exactly the pattern.
fn assert_written_or_truncated(offset: usize, bytes: &[u8]) {
    for (k, &b) in bytes.iter().enumerate() {
        let i = offset + k;
        if i < KEPT {
            assert_eq!(b, pattern(i), "byte {i} below the kept length");
        } else {
            assert!(b == pattern(i) || b == 0, "byte {i} is {b:#04x}");
        }
    }
}

/// The host: a 1 MiB path-backed region, the guard installed unless
/// `guard` is false, a truncating peer, and `read_at`, `write_at` and
/// `load_u64` at random places of the whole region until the peer ends.
/// Every call must be `Ok` (with bytes as `assert_written_or_truncated`
/// says) or `Truncated`; after a `Truncated` the host attaches anew (the
/// old mapping is cut for good) once the file is 1 MiB again.
fn host(test: &str, guard: bool) {
    let dir = base_dir();
    let path = dir.path().join("segment");
    let creator = MmapRegion::create(&path, MIB, FileCleanup::Manual).unwrap();
    let first: Vec<u8> = (0..MIB).map(pattern).collect();
    creator.region().write_at(0, &first).unwrap();
    if guard {
        sigbus::install().unwrap();
        assert!(sigbus::is_installed());
    }
    let path_str = path.to_str().unwrap();
    let mut peer = child(test, "truncator", &[(PATH_VAR, path_str)])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut calls, mut ok, mut truncated, mut attaches) = (0u64, 0u64, 0u64, 0u64);
    let mut handle: Option<MmapRegion> = None;
    let mut view: Region = creator.region();
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    while peer.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "peer never ended"
        );
        calls += 1;
        let len = 1 + rng.next() % buf.len();
        let offset = rng.next() % (MIB - len + 1);
        let res = match rng.next() % 3 {
            0 => view
                .read_at(offset, &mut buf[..len])
                .map(|()| assert_written_or_truncated(offset, &buf[..len])),
            1 => view.write_at(offset, &first[offset..offset + len]),
            _ => {
                let at = offset & !7;
                view.load_u64(at, Ordering::Relaxed)
                    .map(|v| assert_written_or_truncated(at, &v.to_ne_bytes()))
            }
        };
        match res {
            Ok(()) => ok += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
                truncated += 1;
                // The cut mapping stays cut: attach anew once the file is
                // whole again.
                drop(view);
                drop(handle.take());
                let reattached = loop {
                    let h = MmapRegion::attach(&path).unwrap();
                    if h.len() == MIB || peer.try_wait().unwrap().is_some() {
                        break h;
                    }
                    std::thread::yield_now();
                };
                attaches += 1;
                view = reattached.region();
                handle = Some(reattached);
            }
        }
    }
    drop(handle);
    let mut peer_out = String::new();
    peer.stdout
        .take()
        .unwrap()
        .read_to_string(&mut peer_out)
        .unwrap();
    assert!(peer.wait().unwrap().success());
    print!("{peer_out}");
    println!(
        "host calls: {calls}, ok: {ok}, truncated: {truncated}, attaches: {attaches}, in {:.2?}",
        start.elapsed()
    );
    let cycles: u64 = peer_out
        .lines()
        .find_map(|l| l.split("truncations by the peer: ").nth(1))
        .expect("the peer's count")
        .parse()
        .unwrap();
    assert!(cycles >= 100, "only {cycles} truncations");
    assert!(truncated > 0, "no access ever met a truncated page");
}

#[test]
fn a_peer_truncating_the_file_hundreds_of_times_never_kills_a_guarded_host() {
    const TEST: &str = "a_peer_truncating_the_file_hundreds_of_times_never_kills_a_guarded_host";
    match role().as_deref() {
        Some("host") => return host(TEST, true),
        Some("truncator") => return truncator(),
        _ => {}
    }
    let (status, out) = run_child(TEST, "host", &[]);
    assert_eq!(status.signal(), None, "the guarded host died: {status}");
    assert!(status.success(), "{status}");
    assert!(out.contains("host calls:"), "{out}");
}

#[test]
fn without_install_the_same_truncation_kills_the_host_with_sigbus() {
    const TEST: &str = "without_install_the_same_truncation_kills_the_host_with_sigbus";
    match role().as_deref() {
        Some("host") => {
            host(TEST, false);
            // Reached only if no access ever faulted.
            std::process::exit(3);
        }
        Some("truncator") => return truncator(),
        _ => {}
    }
    let (status, _) = run_child(TEST, "host", &[]);
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

/// Maps two pages of a new file with memmap2 (code that is not the
/// crate's), truncates the file to nothing and reads the second page.
fn fault_in_a_foreign_mapping(dir: &tempfile::TempDir) -> ! {
    let path = dir.path().join("foreign");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    file.set_len(u64::try_from(2 * PAGE).unwrap()).unwrap();
    // SAFETY: the file is this test's own and nothing else maps it; the
    // truncation below is the point of the test (the access faults).
    let map = unsafe { memmap2::MmapOptions::new().len(2 * PAGE).map(&file) }.unwrap();
    FOREIGN.store(map.as_ptr() as usize + PAGE, Ordering::SeqCst);
    file.set_len(0).unwrap();
    // SAFETY: the pointer is inside the mapping, which lives until the end
    // of this function; the page is past the file's end, so the read
    // raises SIGBUS.
    let b = unsafe { std::ptr::read_volatile(map.as_ptr().wrapping_add(PAGE)) };
    panic!("read {b} past the end of a truncated file without a fault");
}

/// The address `fault_in_a_foreign_mapping` touches.
static FOREIGN: AtomicUsize = AtomicUsize::new(0);

/// Makes one contained fault in a crate mapping first, so that both kinds
/// of fault meet the same installed handler.
fn contained_fault(dir: &tempfile::TempDir) -> MmapRegion {
    let path = dir.path().join("segment");
    let region = MmapRegion::create(&path, 4 * PAGE, FileCleanup::Manual).unwrap();
    peer_set_len(&path, PAGE);
    let mut b = [0u8; 8];
    let err = region.region().read_at(2 * PAGE, &mut b).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    region
}

/// Runs `test` in a child that calls `setup`, makes one contained fault in
/// a crate mapping and then one in a mapping that is not the crate's, and
/// returns the child's status and what it printed (the foreign fault never
/// returns).
fn foreign_fault_after(test: &str, setup: impl FnOnce()) -> (ExitStatus, String) {
    if role().as_deref() == Some("child") {
        setup();
        let dir = base_dir();
        let _region = contained_fault(&dir);
        fault_in_a_foreign_mapping(&dir);
    }
    run_child(test, "child", &[])
}

#[test]
fn a_fault_in_a_mapping_the_crate_did_not_make_still_kills_after_install() {
    const TEST: &str = "a_fault_in_a_mapping_the_crate_did_not_make_still_kills_after_install";
    let (status, _) = foreign_fault_after(TEST, || {
        sigbus::install().unwrap();
    });
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

/// Exit code of the previous handler when it saw the foreign fault at the
/// expected address, and when at another.
const SAW_IT: i32 = 42;
const SAW_OTHER: i32 = 43;

extern "C" fn previous_handler(
    _sig: libc::c_int,
    info: *mut libc::siginfo_t,
    _ctx: *mut libc::c_void,
) {
    // SAFETY: installed with SA_SIGINFO, so `info` is valid.
    let info = unsafe { &*info };
    // SAFETY: for a fault `si_addr` is the filled-in member of the union.
    let addr = unsafe { info.si_addr() } as usize;
    let code = if addr == FOREIGN.load(Ordering::SeqCst) {
        SAW_IT
    } else {
        SAW_OTHER
    };
    // SAFETY: `_exit` is async-signal-safe and ends the process.
    unsafe { libc::_exit(code) }
}

#[test]
fn a_previous_sa_siginfo_handler_still_receives_the_faults_that_are_not_ours() {
    const TEST: &str = "a_previous_sa_siginfo_handler_still_receives_the_faults_that_are_not_ours";
    let (status, _) = foreign_fault_after(TEST, || {
        let handler = previous_handler
            as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as libc::sighandler_t;
        set_disposition(handler, libc::SA_SIGINFO);
        sigbus::install().unwrap();
    });
    assert_eq!(status.code(), Some(SAW_IT), "{status}");
}

#[test]
fn install_from_many_threads_installs_once_and_still_forwards_foreign_faults() {
    const TEST: &str = "install_from_many_threads_installs_once_and_still_forwards_foreign_faults";
    let (status, _) = foreign_fault_after(TEST, || {
        assert!(!sigbus::is_installed());
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..100 {
                        sigbus::install().unwrap();
                        assert!(sigbus::is_installed());
                    }
                });
            }
        });
        // Installed once: had a later install recorded the crate's own
        // handler as the previous one, this foreign fault would forward to
        // itself forever (or overflow the stack) instead of dying.
    });
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

#[test]
fn a_fault_midway_through_a_copy_is_truncated_and_the_cut_is_sticky() {
    const TEST: &str = "a_fault_midway_through_a_copy_is_truncated_and_the_cut_is_sticky";
    if !in_child(TEST) {
        return;
    }
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let mut host = MmapRegion::create(&path, 16 * PAGE, FileCleanup::Manual).unwrap();
    let view = host.region();
    let bytes: Vec<u8> = (0..16 * PAGE).map(pattern).collect();
    view.write_at(0, &bytes).unwrap();
    peer_set_len(&path, 4 * PAGE + 100);

    // Starts in the file, faults at page 5 (the first past the end).
    let mut buf = vec![0u8; 8 * PAGE];
    let err = view.read_at(0, &mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert!(err.to_string().contains("from offset 20480"), "{err}");
    // Below the cut: the file's bytes.
    view.read_at(0, &mut buf[..5 * PAGE]).unwrap();
    assert_eq!(buf[..4 * PAGE + 100], bytes[..4 * PAGE + 100]);
    // Past it, every checked access: Truncated, also with no new fault.
    assert_eq!(
        kind(view.load_u64(6 * PAGE, Ordering::Relaxed)),
        ErrorKind::Truncated
    );
    assert_eq!(
        kind(view.write_at(10 * PAGE, b"lost")),
        ErrorKind::Truncated
    );
    assert_eq!(kind(view.atomic_u64(5 * PAGE)), ErrorKind::Truncated);
    assert_eq!(kind(view.shared_u32(7 * PAGE)), ErrorKind::Truncated);
    assert_eq!(
        kind(view.wait_u32(8 * PAGE, 0, Some(Duration::from_secs(5)))),
        ErrorKind::Truncated,
        "a cut word must not be waited on"
    );
    // Out of the view is still OutOfBounds.
    assert_eq!(
        kind(view.read_at(16 * PAGE, &mut buf[..1])),
        ErrorKind::OutOfBounds
    );

    // The peer grows the file back: the cut stays, for every view of the
    // handle and for the handle itself.
    peer_set_len(&path, 16 * PAGE);
    assert_eq!(
        kind(view.read_at(8 * PAGE, &mut buf[..8])),
        ErrorKind::Truncated
    );
    assert_eq!(
        kind(host.region().read_at(6 * PAGE, &mut buf[..8])),
        ErrorKind::Truncated
    );
    assert_eq!(kind(host.check_and_remap()), ErrorKind::Truncated);
    assert_eq!(kind(host.resize(32 * PAGE)), ErrorKind::Truncated);
    // Raw pointers (documented): the replaced area runs from the first
    // fault (page 5) to the mapping's end, so pages 6 and 10 both read the
    // replacement's zeros, not what a peer wrote there after growing the
    // file back.
    {
        use std::os::unix::fs::FileExt;
        let peer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        for page in [6, 10] {
            let at = u64::try_from(page * PAGE).unwrap();
            peer.write_all_at(&[0x5A], at).unwrap();
        }
    }
    let raw = |page: usize| {
        // SAFETY: the pointer is inside the view's mapping, which `view`
        // keeps alive; pages 6 and 10 are replacement memory now, and no
        // one writes either now.
        unsafe { std::ptr::read_volatile(view.as_ptr().wrapping_add(page * PAGE)) }
    };
    let (replaced, regrown) = (raw(6), raw(10));
    assert_eq!((replaced, regrown), (0, 0));
    // `write_at` into the cut never reached the file.
    let file = std::fs::read(&path).unwrap();
    assert_eq!(&file[10 * PAGE..10 * PAGE + 4], &[0x5A, 0, 0, 0]);

    // A new attach maps the regrown file whole.
    let again = MmapRegion::attach(&path).unwrap();
    again.region().write_at(10 * PAGE, b"back").unwrap();
    let mut b = [0u8; 4];
    again.region().read_at(10 * PAGE, &mut b).unwrap();
    assert_eq!(&b, b"back");
}

#[test]
fn registry_slots_are_reused_after_mappings_are_dropped() {
    const TEST: &str = "registry_slots_are_reused_after_mappings_are_dropped";
    if !in_child(TEST) {
        return;
    }
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let host = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    // More mappings over time than the registry holds at once (4096).
    for _ in 0..5000 {
        let r = MmapRegion::attach_fd(host.fd().unwrap().try_clone_to_owned().unwrap()).unwrap();
        drop(r);
    }
    // Each was registered: the last one still contains a fault.
    let mut r = MmapRegion::attach_fd(host.fd().unwrap().try_clone_to_owned().unwrap()).unwrap();
    r.resize(4 * PAGE).unwrap_or_else(|e| panic!("{e}"));
    peer_set_len(&path, PAGE);
    let mut b = [0u8; 1];
    assert_eq!(
        kind(r.region().read_at(3 * PAGE, &mut b)),
        ErrorKind::Truncated
    );
}

/// The registry's high-water mark (how far the handler looks in a chunk)
/// only ever rises: two threads register and unregister in an order that
/// barriers force, so that the last registration takes a slot freed below
/// a live one. That registration must not lower the mark under the live
/// mapping: a fault there is still contained (`Truncated`), where a mark
/// stored instead of raised hides the slot from the handler and the child
/// dies of `SIGBUS`.
#[test]
fn a_slot_reused_below_a_live_mapping_leaves_that_mapping_guarded() {
    const TEST: &str = "a_slot_reused_below_a_live_mapping_leaves_that_mapping_guarded";
    if !in_child(TEST) {
        return;
    }
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let host = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    let dup = || host.fd().unwrap().try_clone_to_owned().unwrap();
    let barrier = std::sync::Barrier::new(2);
    let (victim, late) = std::thread::scope(|s| {
        // Thread A registers the lower slot, and frees it once B holds
        // the one above.
        s.spawn(|| {
            let low = MmapRegion::attach_fd(dup()).unwrap();
            barrier.wait(); // 1: `low` is registered.
            barrier.wait(); // 2: the victim is registered above it.
            drop(low);
            barrier.wait(); // 3: `low`'s slot is free.
        });
        // Thread B registers the victim above it at 1, and at 3 (after
        // `low` left) the late mapping, which takes the lowest free slot:
        // the one `low` left, below the victim's.
        let b = s.spawn(|| {
            barrier.wait();
            let mut victim = MmapRegion::attach_fd(dup()).unwrap();
            victim.resize(4 * PAGE).unwrap();
            barrier.wait();
            barrier.wait();
            let late = MmapRegion::attach_fd(dup()).unwrap();
            (victim, late)
        });
        b.join().unwrap()
    });
    peer_set_len(&path, PAGE);
    let mut b = [0u8; 1];
    assert_eq!(
        kind(victim.region().read_at(3 * PAGE, &mut b)),
        ErrorKind::Truncated
    );
    // The late mapping (in the reused slot) is guarded too, and the page
    // the file kept still reads.
    assert_eq!(late.len(), 4 * PAGE);
    assert_eq!(
        kind(late.region().read_at(3 * PAGE, &mut b)),
        ErrorKind::Truncated
    );
    victim.region().read_at(0, &mut b).unwrap();
}

/// Runs the calling test's body in a child process (this binary re-run
/// with the role "child") and asserts that the child succeeded; returns
/// `true` in the child, where the caller then runs the body.
fn in_child(test: &str) -> bool {
    if role().as_deref() == Some("child") {
        return true;
    }
    let (status, _) = run_child(test, "child", &[]);
    assert!(status.success(), "{status}");
    false
}

/// Installs the guard and creates a path-backed region of `len` bytes in a
/// new directory (kept alive by the returned `TempDir`).
fn guarded_region(len: usize) -> (tempfile::TempDir, std::path::PathBuf, MmapRegion) {
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let region = MmapRegion::create(&path, len, FileCleanup::Manual).unwrap();
    (dir, path, region)
}

/// The entries of `/proc/self/smaps` overlapping `[addr, addr + len)`.
/// The tests that call it run single-threaded in their child, so the
/// mappings do not change while it reads.
fn vmas_over(addr: usize, len: usize) -> Vec<Vma> {
    let mut vmas = read_smaps();
    vmas.retain(|v| v.start < addr + len && v.end > addr);
    vmas
}

/// The inode of the file at `path`.
fn file_inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// Whether `vma` is a replacement for pages of the file at `path`: shared
/// (`sh`), and not the file.
fn is_replacement(vma: &Vma, path: &std::path::Path) -> bool {
    vma.inode != file_inode(path) && vma.flags.iter().any(|f| f == "sh")
}

fn base_of(view: &Region) -> usize {
    view.as_ptr() as usize
}

#[test]
fn a_fault_in_a_region_whose_reservation_exceeds_memory_is_contained_without_reserving_it() {
    // A 1 GiB region's default reservation is 64 GiB, more than this
    // machine's memory: the replacement of the rest of the reservation is
    // shared anonymous memory without reserved swap (`MAP_NORESERVE`), so
    // it costs nothing until touched, and the process lives.
    const TEST: &str =
        "a_fault_in_a_region_whose_reservation_exceeds_memory_is_contained_without_reserving_it";
    if !in_child(TEST) {
        return;
    }
    const GIB: usize = 1 << 30;
    sigbus::install().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment");
    let region = shm_region::MmapOptions::new()
        .reserve_blocks(false)
        .create(&path, GIB, FileCleanup::Manual)
        .unwrap();
    let view = region.region();
    let at = 900 << 20;
    view.write_at(at, b"far away").unwrap();
    peer_set_len(&path, 0);
    let mut b = [0xAAu8; 8];
    let err = view.read_at(at, &mut b).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
    // The replacement runs from the faulting page to the mapping's end:
    // one shared mapping that is not the file, after the file's below it.
    let base = base_of(&view);
    let vmas = vmas_over(base + at - PAGE, 2 * PAGE);
    assert_eq!(vmas.len(), 2, "{vmas:?}");
    assert_eq!(vmas[0].inode, file_inode(&path));
    assert!(is_replacement(&vmas[1], &path), "{vmas:?}");
    assert_eq!(vmas[1].start, base + at);
    assert!(vmas[1].end >= base + GIB, "{vmas:?}");
}

#[test]
fn faults_over_consecutive_pages_leave_one_anonymous_mapping_not_one_per_page() {
    // One replacement per fault must not exhaust vm.max_map_count: the
    // first fault replaces the rest of the mapping, so the others do not
    // fault at all.
    const TEST: &str = "faults_over_consecutive_pages_leave_one_anonymous_mapping_not_one_per_page";
    if !in_child(TEST) {
        return;
    }
    let (_dir, path, region) = guarded_region(MIB);
    let view = region.region();
    view.write_at(0, &vec![7u8; MIB]).unwrap();
    peer_set_len(&path, 0);
    let mut buf = vec![0u8; MIB];
    // 256 faults, one per page, in one copy.
    assert_eq!(kind(view.read_at(0, &mut buf)), ErrorKind::Truncated);
    let base = base_of(&view);
    let vmas = vmas_over(base, MIB);
    assert_eq!(vmas.len(), 1, "{vmas:?}");
    assert!(is_replacement(&vmas[0], &path), "{vmas:?}");
    assert_eq!(vmas[0].start, base);
    assert!(vmas[0].end >= base + MIB, "{vmas:?}");
}

#[test]
fn scattered_faults_below_and_above_the_cut_leave_at_most_seventeen_replacement_mappings() {
    // A peer cannot run the process out of mapping slots
    // (`vm.max_map_count`) by making it fault on every second page: the
    // replacements fill the range between the faults, and after 16 pieces
    // below the cut the area is made one mapping again.
    const TEST: &str =
        "scattered_faults_below_and_above_the_cut_leave_at_most_seventeen_replacement_mappings";
    if !in_child(TEST) {
        return;
    }
    const LEN: usize = 64 * MIB;
    const MIDDLE: usize = 32 * MIB;
    const HIGHEST: usize = 48 * MIB;
    sigbus::install().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment");
    let region = shm_region::MmapOptions::new()
        .reserve_blocks(false)
        .create(&path, LEN, FileCleanup::Manual)
        .unwrap();
    let view = region.region();
    peer_set_len(&path, 0);
    // Checked loads, downwards from the middle, every second page: each
    // is below the cut the one before left, so it is allowed, and faults.
    let mut truncated = 0;
    for at in (0..=MIDDLE).rev().step_by(2 * PAGE) {
        assert_eq!(
            kind(view.load_u64(at, Ordering::Relaxed)),
            ErrorKind::Truncated
        );
        truncated += 1;
    }
    assert_eq!(truncated, MIDDLE / (2 * PAGE) + 1);
    // Raw reads upwards from the middle, every second page (the checked
    // accessors refuse them without touching memory).
    for at in (MIDDLE + 2 * PAGE..=HIGHEST).step_by(2 * PAGE) {
        // SAFETY: `at` is inside the view's mapping, which `view` keeps
        // alive; the page is past the file's end, so the read faults and
        // is contained (the value is zero).
        let b = unsafe { std::ptr::read_volatile(view.as_ptr().wrapping_add(at)) };
        assert_eq!(b, 0);
    }
    // From offset 0 (the lowest fault) to the end: replacements only,
    // gap-free, at most 17 of them (4,097 faults below the cut).
    let base = base_of(&view);
    let vmas = vmas_over(base, LEN);
    assert!((1..=17).contains(&vmas.len()), "{}", vmas.len());
    assert_eq!(vmas[0].start, base);
    assert!(vmas.last().unwrap().end >= base + LEN);
    for (v, next) in vmas.iter().zip(vmas.iter().skip(1)) {
        assert_eq!(v.end, next.start, "{vmas:?}");
    }
    assert!(vmas.iter().all(|v| is_replacement(v, &path)), "{vmas:?}");
}

#[test]
fn replacement_pages_keep_dont_dump_and_dont_fork() {
    const TEST: &str = "replacement_pages_keep_dont_dump_and_dont_fork";
    if !in_child(TEST) {
        return;
    }
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let region = shm_region::MmapOptions::new()
        .dont_dump(true)
        .dont_fork(true)
        .create(&path, 16 * PAGE, FileCleanup::Manual)
        .unwrap();
    let view = region.region();
    peer_set_len(&path, 4 * PAGE);
    assert_eq!(
        kind(view.write_at(8 * PAGE, b"secret")),
        ErrorKind::Truncated
    );
    let at = base_of(&view) + 8 * PAGE;
    let vmas = vmas_over(at, PAGE);
    assert_eq!(vmas.len(), 1, "{vmas:?}");
    assert!(is_replacement(&vmas[0], &path), "not replaced: {vmas:?}");
    for flag in ["dd", "dc"] {
        assert!(
            vmas[0].flags.iter().any(|f| f == flag),
            "no {flag}: {vmas:?}"
        );
    }
}

/// What a fork child reports through `pre_exec` (as the error of
/// `spawn`) when an access did not end as the test expects.
const CHILD_SAW_OK: i32 = 1001;
const CHILD_SAW_OTHER_ERROR: i32 = 1002;

#[test]
fn a_fork_child_contains_faults_in_the_mappings_it_inherited() {
    const TEST: &str = "a_fork_child_contains_faults_in_the_mappings_it_inherited";
    if !in_child(TEST) {
        return;
    }
    use std::os::unix::process::CommandExt;
    let (_dir, path, region) = guarded_region(4 * PAGE);
    let view = region.region();
    let peer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let mut cmd = Command::new("true");
    // SAFETY: the closure runs in the child between fork and exec; this
    // process is single-threaded apart from the harness's waiting main
    // thread, and glibc's malloc is usable after fork (the error of a
    // `Truncated` read is allocated).
    unsafe {
        cmd.pre_exec(move || {
            peer.set_len(u64::try_from(PAGE).unwrap())?;
            let mut b = [0u8; 8];
            match view.read_at(2 * PAGE, &mut b) {
                Err(e) if e.kind() == ErrorKind::Truncated => Ok(()),
                Ok(()) => Err(std::io::Error::from_raw_os_error(CHILD_SAW_OK)),
                Err(_) => Err(std::io::Error::from_raw_os_error(CHILD_SAW_OTHER_ERROR)),
            }
        });
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "{status}");
    // The parent's mapping of the same file is contained on its own.
    let mut b = [0u8; 8];
    assert_eq!(
        kind(region.region().read_at(2 * PAGE, &mut b)),
        ErrorKind::Truncated
    );
}

#[test]
fn a_fork_child_never_replaces_what_it_mapped_where_a_dont_fork_region_was() {
    // The child inherits the registry entry of a `dont_fork` region but not
    // its range. It maps a file of its own there, and a fault in that
    // mapping is not the crate's: it must end the child, not be papered
    // over with zeros (whatever the child's PID: nothing compares PIDs).
    const TEST: &str = "a_fork_child_never_replaces_what_it_mapped_where_a_dont_fork_region_was";
    if !in_child(TEST) {
        return;
    }
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let region = shm_region::MmapOptions::new()
        .dont_fork(true)
        .address_space(4 * PAGE)
        .create(&path, 4 * PAGE, FileCleanup::Manual)
        .unwrap();
    let addr = base_of(&region.region());
    let own = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.path().join("own"))
        .unwrap();
    own.set_len(u64::try_from(2 * PAGE).unwrap()).unwrap();
    let mut cmd = Command::new("true");
    #[allow(
        clippy::disallowed_methods,
        reason = "the child maps memory of its own where the region was, as an unrelated library would"
    )]
    let in_the_child = move || {
        // SAFETY: this runs in the child between fork and exec, where the
        // range at `addr` is free (`MADV_DONTFORK`): the fixed mapping
        // (`MAP_FIXED_NOREPLACE`) replaces nothing.
        let p = unsafe {
            rustix::mm::mmap(
                addr as *mut std::ffi::c_void,
                2 * PAGE,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED | rustix::mm::MapFlags::FIXED_NOREPLACE,
                own.as_fd(),
                0,
            )
        }?;
        if p as usize != addr {
            return Err(std::io::Error::from_raw_os_error(CHILD_SAW_OTHER_ERROR));
        }
        rustix::fs::ftruncate(&own, 0)?;
        // SAFETY: the page is inside the mapping just made, which lives on;
        // it is past the end of the truncated file, so the read faults,
        // which is the point of the test.
        let _ = unsafe { std::ptr::read_volatile(p.cast::<u8>().wrapping_add(PAGE)) };
        Err(std::io::Error::from_raw_os_error(CHILD_SAW_OK))
    };
    // SAFETY: the closure only makes system calls and touches memory it
    // mapped itself.
    unsafe {
        cmd.pre_exec(in_the_child);
    }
    let status = cmd.status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

/// Installs `handler` for `SIGBUS` with `flags`.
fn set_disposition(handler: libc::sighandler_t, flags: libc::c_int) {
    set_disposition_of(libc::SIGBUS, handler, flags);
}

/// Sets `sig`'s disposition to `handler` with `flags` (empty mask).
fn set_disposition_of(sig: libc::c_int, handler: libc::sighandler_t, flags: libc::c_int) {
    // SAFETY: an all-zero `sigaction` is a valid C struct (no flags, empty
    // mask); the handler and flags are set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = flags;
    // SAFETY: `action` is initialised; the handlers the tests pass only
    // call async-signal-safe functions.
    let rc = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}

/// The current `SIGBUS` handler's address.
fn disposition() -> libc::sighandler_t {
    // SAFETY: as in `set_disposition`.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the disposition.
    let rc = unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0);
    old.sa_sigaction
}

/// Sends `SIGBUS` to the calling thread (`si_code` is `SI_TKILL`, as for
/// any signal a process sends): handled before `pthread_kill` returns.
fn tkill_bus() {
    // SAFETY: `pthread_self` has no preconditions.
    let me = unsafe { libc::pthread_self() };
    // SAFETY: `pthread_kill` with this thread's own id and a valid signal
    // has no memory-safety preconditions.
    let rc = unsafe { libc::pthread_kill(me, libc::SIGBUS) };
    assert_eq!(rc, 0);
}

#[test]
fn a_sent_sigbus_meets_std_s_handler_as_without_the_guard_and_the_guard_stays_on() {
    // Without the guard, Rust's handler takes the first `kill -BUS` (it
    // resets SIGBUS to the default and returns) and the second one kills.
    // With it, the same, and containment never lapses in between.
    const TEST: &str =
        "a_sent_sigbus_meets_std_s_handler_as_without_the_guard_and_the_guard_stays_on";
    if role().as_deref() == Some("child") {
        assert_ne!(disposition(), libc::SIG_DFL, "Rust's runtime installs one");
        sigbus::install().unwrap();
        tkill_bus();
        assert!(sigbus::is_installed());
        let dir = base_dir();
        drop(contained_fault(&dir));
        println!("contained after the first signal");
        tkill_bus();
        println!("survived the second signal");
        std::process::exit(0);
    }
    let (status, out) = run_child(TEST, "child", &[]);
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
    assert!(out.contains("contained after the first signal"), "{out}");
    assert!(!out.contains("survived"), "{out}");
}

#[test]
fn a_kill_from_another_process_leaves_the_guard_on() {
    const TEST: &str = "a_kill_from_another_process_leaves_the_guard_on";
    if !in_child(TEST) {
        return;
    }
    sigbus::install().unwrap();
    let pid = std::process::id().to_string();
    let status = Command::new("kill").args(["-BUS", &pid]).status().unwrap();
    assert!(status.success());
    // Delivered to some thread of this process, maybe after `kill` ends;
    // std's handler resets SIGBUS to the default and the crate's puts
    // itself back right after (a short gap, documented), well within this
    // wait.
    std::thread::sleep(Duration::from_millis(200));
    assert!(sigbus::is_installed());
    let dir = base_dir();
    drop(contained_fault(&dir));
}

/// How often [`sysv_handler`] ran.
static SYSV_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A handler in the System V style: it installs itself again each time.
extern "C" fn sysv_handler(_sig: libc::c_int) {
    SYSV_CALLS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: an all-zero `sigaction` is a valid C struct.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = sysv_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `sigaction` is async-signal-safe; `action` is initialised.
    unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
}

#[test]
fn a_previous_handler_that_installs_itself_again_leaves_the_guard_on() {
    const TEST: &str = "a_previous_handler_that_installs_itself_again_leaves_the_guard_on";
    if !in_child(TEST) {
        return;
    }
    set_disposition(
        sysv_handler as extern "C" fn(libc::c_int) as libc::sighandler_t,
        0,
    );
    sigbus::install().unwrap();
    tkill_bus();
    assert_eq!(SYSV_CALLS.load(Ordering::SeqCst), 1);
    assert!(sigbus::is_installed());
    let dir = base_dir();
    drop(contained_fault(&dir));
    tkill_bus();
    assert_eq!(SYSV_CALLS.load(Ordering::SeqCst), 2);
    assert!(sigbus::is_installed());
}

/// How often [`counting_handler`] ran.
static COUNTED: AtomicUsize = AtomicUsize::new(0);

/// A handler that counts and leaves the disposition alone.
extern "C" fn counting_handler(_sig: libc::c_int) {
    COUNTED.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn a_previous_handler_that_leaves_the_disposition_alone_gets_every_sent_signal() {
    const TEST: &str =
        "a_previous_handler_that_leaves_the_disposition_alone_gets_every_sent_signal";
    if !in_child(TEST) {
        return;
    }
    set_disposition(
        counting_handler as extern "C" fn(libc::c_int) as libc::sighandler_t,
        0,
    );
    sigbus::install().unwrap();
    for n in 1..=3 {
        tkill_bus();
        assert_eq!(COUNTED.load(Ordering::SeqCst), n);
        assert!(sigbus::is_installed());
    }
    let dir = base_dir();
    drop(contained_fault(&dir));
}

#[test]
fn install_arms_the_guard_again_after_sigbus_was_reset_to_the_default() {
    const TEST: &str = "install_arms_the_guard_again_after_sigbus_was_reset_to_the_default";
    let (status, _) = foreign_fault_after(TEST, || {
        sigbus::install().unwrap();
        set_disposition(libc::SIG_DFL, 0);
        assert!(!sigbus::is_installed());
        sigbus::install().unwrap();
        assert!(sigbus::is_installed());
        // What is not ours now meets the default, as it would have.
    });
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

#[test]
fn install_refuses_to_replace_a_handler_installed_after_it() {
    const TEST: &str = "install_refuses_to_replace_a_handler_installed_after_it";
    if !in_child(TEST) {
        return;
    }
    sigbus::install().unwrap();
    let theirs = plain_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    set_disposition(theirs, 0);
    assert!(!sigbus::is_installed());
    let err = sigbus::install().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Os, "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
    assert_eq!(disposition(), theirs);
    assert!(!sigbus::is_installed());
}

/// Exit code of [`plain_handler`].
const SAW_PLAIN: i32 = 44;

extern "C" fn plain_handler(_sig: libc::c_int) {
    // SAFETY: `_exit` is async-signal-safe and ends the process.
    unsafe { libc::_exit(SAW_PLAIN) }
}

#[test]
fn a_previous_plain_handler_still_receives_the_faults_that_are_not_ours() {
    const TEST: &str = "a_previous_plain_handler_still_receives_the_faults_that_are_not_ours";
    let (status, _) = foreign_fault_after(TEST, || {
        set_disposition(
            plain_handler as extern "C" fn(libc::c_int) as libc::sighandler_t,
            0,
        );
        sigbus::install().unwrap();
    });
    assert_eq!(status.code(), Some(SAW_PLAIN), "{status}");
}

#[test]
fn a_previous_sa_nodefer_handler_still_receives_the_faults_that_are_not_ours() {
    const TEST: &str = "a_previous_sa_nodefer_handler_still_receives_the_faults_that_are_not_ours";
    let (status, _) = foreign_fault_after(TEST, || {
        let handler = previous_handler
            as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as libc::sighandler_t;
        set_disposition(handler, libc::SA_SIGINFO | libc::SA_NODEFER);
        sigbus::install().unwrap();
    });
    assert_eq!(status.code(), Some(SAW_IT), "{status}");
}

#[test]
fn with_sigbus_ignored_before_install_kill_is_ignored_and_a_foreign_fault_still_kills() {
    const TEST: &str =
        "with_sigbus_ignored_before_install_kill_is_ignored_and_a_foreign_fault_still_kills";
    let (status, out) = foreign_fault_after(TEST, || {
        set_disposition(libc::SIG_IGN, 0);
        sigbus::install().unwrap();
        tkill_bus();
        // Still alive, and still guarded.
        assert!(sigbus::is_installed());
        println!("survived the sent signal");
    });
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
    assert!(out.contains("survived the sent signal"), "{out}");
}

/// A field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kb: usize = line.trim().trim_end_matches(" kB").trim().parse().unwrap();
    kb * 1024
}

fn set_soft_limit(resource: libc::__rlimit_resource_t, soft: libc::rlim_t) {
    // SAFETY: a valid, writable `rlimit`.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is valid and writable.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut lim) }, 0);
    lim.rlim_cur = soft;
    // SAFETY: `lim` is initialised.
    assert_eq!(unsafe { libc::setrlimit(resource, &lim) }, 0);
}

#[test]
fn a_guarded_process_survives_faults_with_64_mib_of_data_limit_headroom() {
    // Replacement pages are shared anonymous memory, which the kernel does
    // not count as data: `RLIMIT_DATA` never refuses them, and they take
    // none of the room the process's own allocations need.
    const TEST: &str = "a_guarded_process_survives_faults_with_64_mib_of_data_limit_headroom";
    if in_child(TEST) {
        survives_faults_with_64_mib_of_headroom_under(libc::RLIMIT_DATA, "VmData");
    }
}

#[test]
fn a_guarded_process_survives_faults_with_64_mib_of_address_space_limit_headroom() {
    // A replacement takes the place of pages of the same mapping, so the
    // address space in use does not grow: `RLIMIT_AS` never refuses one.
    const TEST: &str =
        "a_guarded_process_survives_faults_with_64_mib_of_address_space_limit_headroom";
    if in_child(TEST) {
        survives_faults_with_64_mib_of_headroom_under(libc::RLIMIT_AS, "VmSize");
    }
}

/// Two 256 MiB mappings of a file, a word taken from one, then `limit`
/// set 64 MiB above the current `field` of `/proc/self/status`; the file
/// is truncated to nothing and faulted through both mappings and the word:
/// each access is contained, `field` grows by less than 4 MiB, and the
/// process's own allocations still have their room.
fn survives_faults_with_64_mib_of_headroom_under(limit: libc::__rlimit_resource_t, field: &str) {
    const LEN: usize = 256 * MIB;
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let region = shm_region::MmapOptions::new()
        .reserve_blocks(false)
        .address_space(LEN)
        .create(&path, LEN, FileCleanup::Manual)
        .unwrap();
    let other = shm_region::MmapOptions::new()
        .address_space(LEN)
        .attach(&path)
        .unwrap();
    let word = region.region().shared_u32(200 * MIB).unwrap();
    let before = status_bytes(field);
    set_soft_limit(limit, libc::rlim_t::try_from(before + 64 * MIB).unwrap());
    peer_set_len(&path, 0);
    let view = region.region();
    let mut b = [0u8; 8];
    assert_eq!(kind(view.read_at(LEN / 2, &mut b)), ErrorKind::Truncated);
    assert_eq!(kind(view.read_at(0, &mut b)), ErrorKind::Truncated);
    // Through another handle of the file, and through a word taken before.
    assert_eq!(
        kind(other.region().read_at(LEN / 4, &mut b)),
        ErrorKind::Truncated
    );
    assert_eq!(word.load(Ordering::Relaxed), 0);
    word.store(7, Ordering::Relaxed);
    // Nothing was charged for the 256 MiB replaced twice over.
    let after = status_bytes(field);
    assert!(after < before + 4 * MIB, "{field} {before} -> {after}");
    let v = vec![1u8; 32 * MIB];
    assert_eq!(v.iter().map(|&b| usize::from(b)).sum::<usize>(), 32 * MIB);
}

#[test]
fn a_cut_in_an_earlier_generation_is_sticky_for_the_handle_after_the_file_grows_back() {
    const TEST: &str =
        "a_cut_in_an_earlier_generation_is_sticky_for_the_handle_after_the_file_grows_back";
    if !in_child(TEST) {
        return;
    }
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let mut region = shm_region::MmapOptions::new()
        .address_space(4 * PAGE)
        .create(&path, 4 * PAGE, FileCleanup::Manual)
        .unwrap();
    // A word of generation 0, then growth past the reservation: generation
    // 1 is a new mapping.
    let word = region.region().shared_u32(2 * PAGE).unwrap();
    let old_base = base_of(&region.region());
    region.resize(64 * PAGE).unwrap();
    assert_ne!(base_of(&region.region()), old_base, "not a new mapping");
    assert_eq!(region.region().generation(), 1);
    // The peer truncates; the kept word faults (contained, zero); the peer
    // grows the file back.
    peer_set_len(&path, PAGE);
    assert_eq!(word.load(Ordering::Relaxed), 0);
    peer_set_len(&path, 64 * PAGE);
    // The current view: the cut offset is Truncated, below it works.
    let view = region.region();
    let mut b = [0u8; 4];
    assert_eq!(kind(view.read_at(2 * PAGE, &mut b)), ErrorKind::Truncated);
    assert_eq!(
        kind(view.load_u32(3 * PAGE, Ordering::Relaxed)),
        ErrorKind::Truncated
    );
    view.read_at(PAGE, &mut b).unwrap();
    // The handle: sticky, whatever the file's size.
    assert_eq!(kind(region.check_and_remap()), ErrorKind::Truncated);
    assert_eq!(kind(region.resize(128 * PAGE)), ErrorKind::Truncated);
    assert_eq!(
        kind(region.region().read_at(40 * PAGE, &mut b)),
        ErrorKind::Truncated
    );
}

/// The truncated mapping the `SIGUSR1` handler of the nested-fault test
/// reads, its length, and how many pages it has read.
static NESTED_BASE: AtomicUsize = AtomicUsize::new(0);
static NESTED_LEN: AtomicUsize = AtomicUsize::new(0);
static NESTED_READS: AtomicUsize = AtomicUsize::new(0);

/// Reads the next page of the truncated mapping, going down, so that each
/// read is below the cut and faults.
extern "C" fn read_a_truncated_page(_sig: libc::c_int) {
    let base = NESTED_BASE.load(Ordering::SeqCst);
    let pages = NESTED_LEN.load(Ordering::SeqCst) / PAGE;
    let n = NESTED_READS.fetch_add(1, Ordering::SeqCst);
    if base != 0 && n < pages {
        let at = (base + (pages - 1 - n) * PAGE) as *const u8;
        // SAFETY: `at` is inside the mapping the test keeps alive until the
        // sender thread stopped; the read faults and is contained.
        let _ = unsafe { std::ptr::read_volatile(at) };
    }
}

#[test]
fn a_fault_in_a_signal_handler_arriving_while_faults_are_handled_is_contained() {
    const TEST: &str = "a_fault_in_a_signal_handler_arriving_while_faults_are_handled_is_contained";
    if !in_child(TEST) {
        return;
    }
    const LEN: usize = 16 * MIB;
    sigbus::install().unwrap();
    let dir = base_dir();
    let options = {
        let mut o = shm_region::MmapOptions::new();
        o.reserve_blocks(false).address_space(LEN);
        o
    };
    let main = options
        .create(dir.path().join("main"), LEN, FileCleanup::Manual)
        .unwrap();
    let nested = options
        .create(dir.path().join("nested"), LEN, FileCleanup::Manual)
        .unwrap();
    peer_set_len(&dir.path().join("main"), 0);
    peer_set_len(&dir.path().join("nested"), 0);
    let (main_view, nested_view) = (main.region(), nested.region());
    NESTED_LEN.store(LEN, Ordering::SeqCst);
    NESTED_BASE.store(base_of(&nested_view), Ordering::SeqCst);
    set_disposition_of(
        libc::SIGUSR1,
        read_a_truncated_page as extern "C" fn(libc::c_int) as libc::sighandler_t,
        0,
    );
    // SAFETY: `gettid` has no preconditions.
    let tid = unsafe { libc::gettid() };
    let pid = std::process::id();
    let pid = libc::pid_t::try_from(pid).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                // SAFETY: sends SIGUSR1 to this process's main thread, whose
                // handler is `read_a_truncated_page`.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_micros(20));
            }
        });
        // Page by page, downwards, so that every read is below the cut and
        // faults: 4,096 handler runs for SIGUSR1 to arrive in.
        for page in (0..LEN / PAGE).rev() {
            // SAFETY: inside the mapping `main_view` keeps alive; the read
            // faults and is contained.
            let _ =
                unsafe { std::ptr::read_volatile(main_view.as_ptr().wrapping_add(page * PAGE)) };
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert!(
        NESTED_READS.load(Ordering::SeqCst) > 0,
        "no SIGUSR1 handled"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    let mut b = [0u8; 1];
    assert_eq!(kind(main_view.read_at(0, &mut b)), ErrorKind::Truncated);
    assert_eq!(
        kind(nested_view.read_at(LEN - PAGE, &mut b)),
        ErrorKind::Truncated
    );
}

#[test]
fn ten_thousand_guarded_mappings_are_registered_and_the_last_still_contains_a_fault() {
    const TEST: &str =
        "ten_thousand_guarded_mappings_are_registered_and_the_last_still_contains_a_fault";
    if !in_child(TEST) {
        return;
    }
    const MAPPINGS: usize = 10_000;
    // Each handle keeps its descriptor: room for all of them.
    // SAFETY: a valid, writable `rlimit`.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is valid and writable.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    assert!(
        lim.rlim_max >= 10_100,
        "RLIMIT_NOFILE hard limit {} is below the 10,100 descriptors this test needs",
        lim.rlim_max
    );
    set_soft_limit(libc::RLIMIT_NOFILE, lim.rlim_max);
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let host = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    let mut options = shm_region::MmapOptions::new();
    options.address_space(PAGE);
    let held: Vec<MmapRegion> = (0..MAPPINGS)
        .map(|i| {
            options
                .attach_fd(host.fd().unwrap().try_clone_to_owned().unwrap())
                .unwrap_or_else(|e| panic!("mapping {i}: {e}"))
        })
        .collect();
    peer_set_len(&path, 0);
    let mut b = [0u8; 1];
    let last = held.last().unwrap();
    assert_eq!(kind(last.region().read_at(0, &mut b)), ErrorKind::Truncated);
    assert_eq!(
        kind(held[0].region().read_at(0, &mut b)),
        ErrorKind::Truncated
    );
    drop(host);
}

#[test]
fn a_registry_that_cannot_grow_refuses_new_mappings_with_its_own_kind_once_installed() {
    const TEST: &str =
        "a_registry_that_cannot_grow_refuses_new_mappings_with_its_own_kind_once_installed";
    if !in_child(TEST) {
        return;
    }
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let host = MmapRegion::create(&path, PAGE, FileCleanup::Manual).unwrap();
    let mut options = shm_region::MmapOptions::new();
    // An explicit max_size: without one, the file would be refused for
    // being past a quarter of the (one page of) address space left, before
    // the registry is asked.
    options.address_space(PAGE).max_size(PAGE);
    let attach = || options.attach_fd(host.fd().unwrap().try_clone_to_owned().unwrap());
    // The host's mapping and 1,023 more fill the first block of 1,024
    // slots (this child made no other mapping).
    let mut held: Vec<MmapRegion> = (0..1023).map(|_| attach().unwrap()).collect();
    // Room for the next mapping's page, none for another block of slots.
    let used = status_bytes("VmSize");
    set_soft_limit(
        libc::RLIMIT_AS,
        libc::rlim_t::try_from(used + PAGE).unwrap(),
    );
    let err = attach().unwrap_err();
    set_soft_limit(libc::RLIMIT_AS, libc::RLIM_INFINITY);
    assert_eq!(err.kind(), ErrorKind::SigbusRegistry, "{err}");
    assert!(
        err.to_string()
            .contains("the SIGBUS registry (1024 slots, all in use) cannot grow"),
        "{err}"
    );
    // With memory again, it grows.
    held.push(attach().unwrap());
    peer_set_len(&path, 0);
    let mut b = [0u8; 1];
    assert_eq!(
        kind(held.last().unwrap().region().read_at(0, &mut b)),
        ErrorKind::Truncated
    );
}

#[test]
fn a_wait_on_a_word_cut_while_it_sleeps_ends_truncated_at_its_timeout() {
    const TEST: &str = "a_wait_on_a_word_cut_while_it_sleeps_ends_truncated_at_its_timeout";
    if !in_child(TEST) {
        return;
    }
    let (_dir, path, region) = guarded_region(4 * PAGE);
    let view = region.region();
    let start = Instant::now();
    let waited = std::thread::scope(|s| {
        let waiter = s.spawn(|| view.wait_u32(2 * PAGE, 0, Some(Duration::from_secs(1))));
        std::thread::sleep(Duration::from_millis(100));
        peer_set_len(&path, PAGE);
        // A wake meets the missing page in the kernel: Truncated, and the
        // waiter sleeps on.
        assert_eq!(kind(view.wake_u32(2 * PAGE, 1)), ErrorKind::Truncated);
        // An unchecked read cuts the word's page.
        // SAFETY: inside the mapping `view` keeps alive; the read faults
        // and is contained.
        let b = unsafe { std::ptr::read_volatile(view.as_ptr().wrapping_add(2 * PAGE)) };
        assert_eq!(b, 0);
        waiter.join().unwrap()
    });
    let took = start.elapsed();
    assert_eq!(kind(waited), ErrorKind::Truncated);
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Reads one byte at `offset` of `view` through its raw pointer: an access
/// no check sees.
fn unchecked_read(view: &Region, offset: usize) -> u8 {
    // SAFETY: the callers pass offsets inside the view's mapping, which
    // `view` keeps alive; past the file's end the read faults and is
    // contained.
    unsafe { std::ptr::read_volatile(view.as_ptr().wrapping_add(offset)) }
}

/// A guarded region of 16 pages whose file a peer cut to 4, and which an
/// unchecked read at page 8 cut there: no checked accessor has seen the cut
/// yet, so the handle's truncation limit is still unset.
fn cut_by_an_unchecked_read() -> (tempfile::TempDir, MmapRegion) {
    let (dir, path, region) = guarded_region(16 * PAGE);
    peer_set_len(&path, 4 * PAGE);
    assert_eq!(unchecked_read(&region.region(), 8 * PAGE), 0);
    (dir, region)
}

#[test]
fn every_checked_accessor_is_truncated_at_a_cut_made_by_an_unchecked_access() {
    // Each accessor is the first checked access after the cut, on a region
    // of its own: the replaced pages do not fault again and the handle's
    // limit is not lowered yet, so only the accessor's own cut check can
    // refuse it.
    const TEST: &str = "every_checked_accessor_is_truncated_at_a_cut_made_by_an_unchecked_access";
    if !in_child(TEST) {
        return;
    }
    let at = |page: usize| page * PAGE;
    type Access = Box<dyn Fn(&Region) -> ErrorKind>;
    #[allow(unused_mut, reason = "pushed to with the zerocopy feature")]
    let mut accesses: Vec<(&str, Access)> = vec![
        (
            "load_u32",
            Box::new(move |v| kind(v.load_u32(at(8), Ordering::Relaxed))),
        ),
        (
            "load_u64",
            Box::new(move |v| kind(v.load_u64(at(9), Ordering::Relaxed))),
        ),
        ("atomic_u32", Box::new(move |v| kind(v.atomic_u32(at(10))))),
        ("atomic_u64", Box::new(move |v| kind(v.atomic_u64(at(11))))),
        ("shared_u32", Box::new(move |v| kind(v.shared_u32(at(12))))),
        ("shared_u64", Box::new(move |v| kind(v.shared_u64(at(13))))),
        ("wake_u32", Box::new(move |v| kind(v.wake_u32(at(14), 1)))),
        (
            "wait_u32",
            Box::new(move |v| kind(v.wait_u32(at(15), 0, Some(Duration::from_secs(5))))),
        ),
        (
            "read_at",
            Box::new(move |v| kind(v.read_at(at(8) + 1, &mut [0u8; 2]))),
        ),
        (
            "write_at",
            Box::new(move |v| kind(v.write_at(at(9), b"lost"))),
        ),
    ];
    #[cfg(feature = "zerocopy")]
    {
        accesses.push((
            "read_val",
            Box::new(move |v| kind(v.read_val::<u64>(at(10)))),
        ));
        accesses.push((
            "write_val",
            Box::new(move |v| kind(v.write_val(at(11), &7u64))),
        ));
    }
    accesses.push((
        "atomic_u32 below",
        Box::new(move |v| {
            v.atomic_u32(PAGE)
                .map(|w| w.load(Ordering::Relaxed))
                .map_or_else(|e| e.kind(), |_| ErrorKind::Os)
        }),
    ));
    for (name, access) in &accesses {
        let (_dir, region) = cut_by_an_unchecked_read();
        let got = access(&region.region());
        if *name == "atomic_u32 below" {
            // Below the file's end the accessors still work (`Os` stands
            // for `Ok` here).
            assert_eq!(got, ErrorKind::Os, "{name}");
        } else {
            assert_eq!(got, ErrorKind::Truncated, "{name}");
        }
    }
}

#[test]
fn a_slot_reused_after_a_cut_contains_two_faults_in_a_smaller_mapping() {
    const TEST: &str = "a_slot_reused_after_a_cut_contains_two_faults_in_a_smaller_mapping";
    if !in_child(TEST) {
        return;
    }
    sigbus::install().unwrap();
    let dir = base_dir();
    let mut options = shm_region::MmapOptions::new();
    options.reserve_blocks(false);
    // A large mapping cut far up, then dropped: its slot is freed.
    let big = options
        .address_space(1024 * PAGE)
        .create(dir.path().join("big"), 1024 * PAGE, FileCleanup::Manual)
        .unwrap();
    peer_set_len(&dir.path().join("big"), 0);
    assert_eq!(unchecked_read(&big.region(), 1000 * PAGE), 0);
    drop(big);
    // A smaller mapping takes the slot; two faults, the second below the
    // first: both inside it, both contained.
    let small = options
        .address_space(2 * PAGE)
        .create(dir.path().join("small"), 2 * PAGE, FileCleanup::Manual)
        .unwrap();
    let view = small.region();
    view.write_at(0, &[9u8; 2 * PAGE]).unwrap();
    peer_set_len(&dir.path().join("small"), 0);
    assert_eq!(unchecked_read(&view, PAGE), 0);
    assert_eq!(unchecked_read(&view, 0), 0);
    let mut b = [0u8; 1];
    assert_eq!(kind(view.read_at(0, &mut b)), ErrorKind::Truncated);
}

#[test]
fn every_checked_accessor_reports_truncated_past_a_cut() {
    const TEST: &str = "every_checked_accessor_reports_truncated_past_a_cut";
    if !in_child(TEST) {
        return;
    }
    let (_dir, path, region) = guarded_region(16 * PAGE);
    let view = region.region();
    peer_set_len(&path, 4 * PAGE);
    // The loads fault, each on a page of its own: the cut drops to 10 pages.
    assert_eq!(
        kind(view.load_u32(12 * PAGE, Ordering::Relaxed)),
        ErrorKind::Truncated
    );
    assert_eq!(
        kind(view.load_u32(11 * PAGE, Ordering::Relaxed)),
        ErrorKind::Truncated
    );
    assert_eq!(
        kind(view.load_u64(10 * PAGE, Ordering::Relaxed)),
        ErrorKind::Truncated
    );
    // Words at or past the cut: no reference, no wait, no wake.
    assert_eq!(kind(view.atomic_u32(10 * PAGE)), ErrorKind::Truncated);
    assert_eq!(kind(view.atomic_u64(11 * PAGE)), ErrorKind::Truncated);
    assert_eq!(kind(view.shared_u32(10 * PAGE + 4)), ErrorKind::Truncated);
    assert_eq!(kind(view.shared_u64(12 * PAGE)), ErrorKind::Truncated);
    assert_eq!(kind(view.wake_u32(10 * PAGE, 1)), ErrorKind::Truncated);
    assert_eq!(
        kind(view.wait_u32(10 * PAGE, 0, Some(Duration::from_secs(5)))),
        ErrorKind::Truncated
    );
    // Copies fault lower down and lower the cut with them.
    assert_eq!(
        kind(view.read_at(9 * PAGE, &mut [0u8; 1])),
        ErrorKind::Truncated
    );
    assert_eq!(kind(view.write_at(8 * PAGE, b"lost")), ErrorKind::Truncated);
    #[cfg(feature = "zerocopy")]
    {
        assert_eq!(kind(view.read_val::<u64>(7 * PAGE)), ErrorKind::Truncated);
        assert_eq!(kind(view.write_val(6 * PAGE, &7u64)), ErrorKind::Truncated);
        assert_eq!(
            kind(view.load_u64(6 * PAGE, Ordering::Relaxed)),
            ErrorKind::Truncated
        );
    }
    // Below the cut but past the file's end, a wake meets the missing page
    // in the kernel (EFAULT): Truncated too, without a signal.
    assert_eq!(kind(view.wake_u32(5 * PAGE, 1)), ErrorKind::Truncated);
    // Below the file's end, every accessor works.
    view.write_at(PAGE, &[5u8; 8]).unwrap();
    assert_eq!(
        view.load_u64(PAGE, Ordering::Relaxed).unwrap(),
        0x0505_0505_0505_0505
    );
    assert_eq!(
        view.atomic_u32(PAGE).unwrap().load(Ordering::Relaxed),
        0x0505_0505
    );
    assert_eq!(view.wake_u32(PAGE, 1).unwrap(), 0);
    #[cfg(feature = "zerocopy")]
    assert_eq!(view.read_val::<u64>(PAGE).unwrap(), 0x0505_0505_0505_0505);
}

/// Installs a seccomp filter in this process (and its later threads) that
/// makes every `mmap` with exactly the flags of the handler's shared
/// anonymous replacements (`MAP_SHARED | MAP_FIXED | MAP_ANONYMOUS |
/// MAP_NORESERVE`) fail with `ENOMEM`, as a kernel out of shared memory
/// would refuse them.
fn refuse_shared_anonymous_replacements() {
    const FLAGS: u32 = 0x01 | 0x10 | 0x20 | 0x4000;
    const _: () = assert!(
        libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE == 0x4031
    );
    let op = |code: u16, k: u32, jt: u8, jf: u8| libc::sock_filter { code, jt, jf, k };
    // Offsets into `struct seccomp_data`: `nr` at 0, `args[3]` (the
    // flags) at 16 + 3 * 8, low half first on little-endian.
    let nr = u32::try_from(libc::SYS_mmap).unwrap();
    let program = [
        op(0x20, 0, 0, 0),                // ld [nr]
        op(0x15, nr, 0, 3),               // jeq mmap, next, allow
        op(0x20, 40, 0, 0),               // ld [args[3] low]
        op(0x15, FLAGS, 0, 1),            // jeq FLAGS, next, allow
        op(0x06, 0x0005_0000 | 12, 0, 0), // ret SECCOMP_RET_ERRNO | ENOMEM
        op(0x06, 0x7fff_0000, 0, 0),      // ret SECCOMP_RET_ALLOW
    ];
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len()).unwrap(),
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: a plain `prctl` with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
    // SAFETY: `fprog` points to a valid filter program that lives across
    // the call (`SECCOMP_SET_MODE_FILTER` = 1, no flags).
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, 1, 0, std::ptr::from_ref(&fprog)) };
    assert_eq!(rc, 0);
    // The filter works: such an `mmap` now fails with `ENOMEM`.
    // SAFETY: a new mapping without `MAP_FIXED` at a null hint replaces
    // nothing (and is refused anyway).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "only MAP_FIXED ones are refused");
    // SAFETY: `p` is the page just mapped.
    assert_eq!(unsafe { libc::munmap(p, PAGE) }, 0);
}

#[test]
fn a_write_starting_on_a_lost_page_is_truncated_when_shared_anonymous_replacements_are_refused() {
    // Every shared anonymous replacement refused: the handler maps the
    // install-time sink page there (shared, writable), so the write goes
    // on into garbage and ends `Truncated`, the process alive (a
    // read-only page there would end it with `SIGSEGV`).
    const TEST: &str =
        "a_write_starting_on_a_lost_page_is_truncated_when_shared_anonymous_replacements_are_refused";
    if !in_child(TEST) {
        return;
    }
    let (_dir, path, region) = guarded_region(4 * PAGE);
    let view = region.region();
    view.write_at(0, &[0x5A; PAGE]).unwrap();
    peer_set_len(&path, PAGE);
    refuse_shared_anonymous_replacements();
    let data = [7u8; 8];
    assert_eq!(kind(view.write_at(2 * PAGE, &data)), ErrorKind::Truncated);
    let mut b = [0u8; 8];
    assert_eq!(kind(view.read_at(2 * PAGE, &mut b)), ErrorKind::Truncated);
    // A write across the cut, and one from another page past it.
    assert_eq!(
        kind(view.write_at(0, &[1u8; 3 * PAGE])),
        ErrorKind::Truncated
    );
    assert_eq!(kind(view.write_at(3 * PAGE, &data)), ErrorKind::Truncated);
    // The page the file kept is still the file's (the write across the
    // cut was refused before any byte was copied: the cut was known).
    view.read_at(PAGE - 8, &mut b).unwrap();
    assert_eq!(b, [0x5A; 8]);
}

#[test]
fn a_large_checked_copy_over_a_lost_range_touches_at_most_one_piece_of_shared_memory() {
    // Shared anonymous replacement pages have no zero page: every page a
    // copy touches is allocated. Checked copies go in pieces of at most
    // 64 KiB and check the cut between them, so a 128 MiB `read_at` or
    // `write_at` over a lost range allocates at most one piece (plus the
    // page a piece may straddle into).
    const TEST: &str =
        "a_large_checked_copy_over_a_lost_range_touches_at_most_one_piece_of_shared_memory";
    if !in_child(TEST) {
        return;
    }
    const LEN: usize = 128 * MIB;
    const PIECE: usize = 64 * 1024;
    sigbus::install().unwrap();
    let dir = base_dir();
    for write in [false, true] {
        let path = dir.path().join(format!("segment-{write}"));
        let region = shm_region::MmapOptions::new()
            .reserve_blocks(false)
            .create(&path, LEN, FileCleanup::Manual)
            .unwrap();
        let view = region.region();
        let mut buf = vec![1u8; LEN];
        peer_set_len(&path, 0);
        let before = status_bytes("RssShmem");
        let result = if write {
            view.write_at(0, &buf)
        } else {
            view.read_at(0, &mut buf)
        };
        let after = status_bytes("RssShmem");
        assert_eq!(kind(result), ErrorKind::Truncated, "write {write}");
        let grown = after.saturating_sub(before);
        assert!(
            (PAGE..=PIECE + PAGE).contains(&grown),
            "write {write}: RssShmem {before} -> {after}"
        );
    }
}

#[test]
fn replacement_pages_are_shared_with_a_fork_child_and_through_map_files_but_checked_reads_refuse_them(
) {
    // Replacement pages have no file name, but they are not private to
    // the process: a child made by `fork` shares them (its store is seen
    // by the parent's word taken earlier), and a privileged process (this
    // test runs as root) can open them through `/proc/<pid>/map_files/`.
    // Checked accessors refuse them all the same.
    const TEST: &str = "replacement_pages_are_shared_with_a_fork_child_and_through_map_files_but_checked_reads_refuse_them";
    if !in_child(TEST) {
        return;
    }
    use std::os::unix::fs::FileExt;
    use std::os::unix::process::CommandExt;
    let (_dir, path, region) = guarded_region(4 * PAGE);
    let view = region.region();
    let word = view.shared_u32(2 * PAGE).unwrap();
    peer_set_len(&path, PAGE);
    // The fault through the word is contained: it reads the zeros.
    assert_eq!(word.load(Ordering::SeqCst), 0);
    let in_child = word.clone();
    let mut cmd = Command::new("true");
    // SAFETY: the closure runs in the child between fork and exec and
    // makes one atomic store to memory it inherited.
    unsafe {
        cmd.pre_exec(move || {
            in_child.store(0xABCD_1234, Ordering::SeqCst);
            Ok(())
        });
    }
    assert!(cmd.status().unwrap().success());
    assert_eq!(
        word.load(Ordering::SeqCst),
        0xABCD_1234,
        "the child's store"
    );
    let mut b = [0u8; 4];
    assert_eq!(kind(view.read_at(2 * PAGE, &mut b)), ErrorKind::Truncated);
    // Through `/proc/self/map_files/`: the replacement mapping holding the
    // word, opened and written as a file.
    let at = base_of(&view) + 2 * PAGE;
    let vma = vmas_over(at, 4)
        .into_iter()
        .find(|v| is_replacement(v, &path))
        .expect("a replacement mapping over the word");
    let link = format!("/proc/self/map_files/{:x}-{:x}", vma.start, vma.end);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&link)
        .unwrap_or_else(|e| panic!("{link}: {e} (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)"));
    let offset = u64::try_from(at - vma.start).unwrap();
    file.write_all_at(&0x5566_7788u32.to_ne_bytes(), offset)
        .unwrap();
    assert_eq!(
        word.load(Ordering::SeqCst),
        0x5566_7788,
        "written through map_files"
    );
    assert_eq!(kind(view.read_at(2 * PAGE, &mut b)), ErrorKind::Truncated);
}
