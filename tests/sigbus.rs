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
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = wait_with_timeout(&mut c, Duration::from_secs(60));
    print!("{out}");
    (status, out)
}

fn base_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

/// A peer with its own descriptor sets the file's length, as an attacker
/// would, without the crate.
fn set_len(path: &std::path::Path, len: usize) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(u64::try_from(len).unwrap())
        .unwrap();
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
    set_len(&path, PAGE);
    let mut b = [0u8; 8];
    let err = region.region().read_at(2 * PAGE, &mut b).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    region
}

#[test]
fn a_fault_in_a_mapping_the_crate_did_not_make_still_kills_after_install() {
    const TEST: &str = "a_fault_in_a_mapping_the_crate_did_not_make_still_kills_after_install";
    if role().as_deref() == Some("child") {
        let dir = base_dir();
        sigbus::install().unwrap();
        let _region = contained_fault(&dir);
        fault_in_a_foreign_mapping(&dir);
    }
    let (status, _) = run_child(TEST, "child", &[]);
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
    if role().as_deref() == Some("child") {
        // SAFETY: an all-zero `sigaction` is a valid C struct (no flags,
        // empty mask); the handler is set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = previous_handler
            as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO;
        // SAFETY: `action` is initialised; the handler only calls `_exit`.
        let rc = unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
        assert_eq!(rc, 0);
        let dir = base_dir();
        sigbus::install().unwrap();
        let _region = contained_fault(&dir);
        fault_in_a_foreign_mapping(&dir);
    }
    let (status, _) = run_child(TEST, "child", &[]);
    assert_eq!(status.code(), Some(SAW_IT), "{status}");
}

#[test]
fn install_from_many_threads_installs_once_and_still_forwards_foreign_faults() {
    const TEST: &str = "install_from_many_threads_installs_once_and_still_forwards_foreign_faults";
    if role().as_deref() == Some("child") {
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
        let dir = base_dir();
        let _region = contained_fault(&dir);
        fault_in_a_foreign_mapping(&dir);
    }
    let (status, _) = run_child(TEST, "child", &[]);
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}

#[test]
fn a_fault_midway_through_a_copy_is_truncated_and_the_cut_is_sticky() {
    const TEST: &str = "a_fault_midway_through_a_copy_is_truncated_and_the_cut_is_sticky";
    if role().as_deref() != Some("child") {
        let (status, _) = run_child(TEST, "child", &[]);
        assert!(status.success(), "{status}");
        return;
    }
    sigbus::install().unwrap();
    let dir = base_dir();
    let path = dir.path().join("segment");
    let mut host = MmapRegion::create(&path, 16 * PAGE, FileCleanup::Manual).unwrap();
    let view = host.region();
    let bytes: Vec<u8> = (0..16 * PAGE).map(pattern).collect();
    view.write_at(0, &bytes).unwrap();
    set_len(&path, 4 * PAGE + 100);

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
    set_len(&path, 16 * PAGE);
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
    // Raw pointers see the private zero pages (documented), not the file.
    // SAFETY: the pointer is inside the view's mapping, which `view` keeps
    // alive; the page is private memory now and no one else writes it.
    let raw = unsafe { std::ptr::read_volatile(view.as_ptr().wrapping_add(10 * PAGE)) };
    assert_eq!(raw, 0);
    // `write_at` into the cut never reached the file.
    let file = std::fs::read(&path).unwrap();
    assert_eq!(&file[10 * PAGE..10 * PAGE + 4], &[0; 4]);

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
    if role().as_deref() != Some("child") {
        let (status, _) = run_child(TEST, "child", &[]);
        assert!(status.success(), "{status}");
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
    set_len(&path, PAGE);
    let mut b = [0u8; 1];
    assert_eq!(
        kind(r.region().read_at(3 * PAGE, &mut b)),
        ErrorKind::Truncated
    );
}
