//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use shm_region::{Error, ErrorKind};

/// The environment variable that tells a re-executed test binary which
/// role to play.
pub const ROLE: &str = "SHM_REGION_TEST_ROLE";

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// Re-runs this test binary, selecting only `test` (which must check
/// [`role`] first), with `ROLE=role` and extra environment variables.
pub fn spawn_self(test: &str, role: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Waits for a child at most `limit`, killing it after.
pub fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (at most a minute) for a child started by [`spawn_self`] and
/// asserts that it succeeded, i.e. that every assertion in it held.
pub fn assert_child_succeeds(child: &mut std::process::Child) {
    let status = wait_with_timeout(child, Duration::from_secs(60));
    assert!(status.success(), "child failed: {status}");
}

/// Runs `test` in a child process in `role` and asserts that it succeeded.
pub fn run_self(test: &str, role: &str) {
    let mut child = spawn_self(test, role, &[]).spawn().unwrap();
    assert_child_succeeds(&mut child);
}

/// Polls `cond` until it holds or `limit` passes; panics with `what` then.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `f` on a thread and fails the test if it does not return within
/// `limit` (so a blocking open shows up as a failure, not a hang).
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not return within {limit:?}"))
}

pub fn kind<T: std::fmt::Debug>(r: Result<T, Error>) -> ErrorKind {
    r.unwrap_err().kind()
}

/// The environment variable naming the file a skipped test appends its
/// line to (`.ci/run` sets it per stage, collects the lines and fails on
/// any skip that `verify/skips.allow` does not list).
pub const SKIP_LOG: &str = "SHM_REGION_SKIP_LOG";

/// Records that this binary's `test` did not run its check, and why: a
/// line `SHM_REGION_SKIP: <binary>::<test>: <reason>` on stderr (libtest
/// shows it only for failing tests or with `--nocapture`) and the line
/// `<binary>::<test>\t<reason>` appended to the file named by
/// [`SKIP_LOG`], if set, which is where CI sees it. The caller returns
/// right after.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let name = format!("{}::{test}", env!("CARGO_CRATE_NAME"));
    let reason = reason.replace(['\n', '\t'], " ");
    eprintln!("SHM_REGION_SKIP: {name}: {reason}");
    if let Some(log) = std::env::var_os(SKIP_LOG) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("opening {SKIP_LOG}={log:?}: {e}"));
        // One write of one short line: appends from parallel tests do not
        // interleave.
        f.write_all(format!("{name}\t{reason}\n").as_bytes())
            .unwrap_or_else(|e| panic!("writing {SKIP_LOG}={log:?}: {e}"));
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Size, mode and contents of a file, to show it was left untouched.
pub fn fingerprint(path: &Path) -> (u64, u32, Vec<u8>) {
    let md = std::fs::symlink_metadata(path).unwrap();
    let bytes = if md.is_file() {
        std::fs::read(path).unwrap()
    } else {
        Vec::new()
    };
    (md.len(), md.mode(), bytes)
}

/// A small tmpfs mounted for one test, unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=`) or returns why not.
    pub fn mount(size: &str) -> Result<Self, String> {
        if !is_root() {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The minor page faults this thread has taken so far.
pub fn thread_minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the parenthesised command name; minflt is field 10.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(7).unwrap().parse().unwrap()
}

/// Whether `/proc/self/maps` has a mapping of the inode `ino`.
pub fn maps_inode(ino: u64) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .any(|l| l.split_whitespace().nth(4) == Some(&ino.to_string()))
}

pub fn ino(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

pub fn seg(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("segment")
}

/// Sets the segment's length as a peer with its own descriptor would.
pub fn set_file_len(dir: &tempfile::TempDir, len: usize) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(seg(dir))
        .unwrap()
        .set_len(u64::try_from(len).unwrap())
        .unwrap();
}

/// Makes a FIFO (mode 0600) at `path`.
pub fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// A field of `/proc/self/status` given in kB (`VmSize:`, `VmRSS:`,
/// `VmLck:` ...), in bytes.
pub fn proc_status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
        .trim()
        .strip_suffix("kB")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// Runs `f` as a loom model (`LOOM_MAX_PREEMPTIONS` as set, unbounded if
/// unset) and prints its iteration count and wall time, so CI logs show
/// what each model costs.
#[cfg(loom)]
pub fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let iterations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    let builder = loom::model::Builder::new();
    let bound = builder.preemption_bound;
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    eprintln!(
        "loom model {name}: passed after {} iterations in {:.2?} (preemption bound {bound:?})",
        iterations.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed()
    );
}

/// One entry of `/proc/self/smaps`: its address range, its inode (0 for
/// anonymous memory) and its `VmFlags`.
#[derive(Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: usize,
    pub end: usize,
    pub inode: u64,
    pub flags: Vec<String>,
}

/// Every entry of `/proc/self/smaps`, in address order.
pub fn read_smaps() -> Vec<Vma> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut vmas: Vec<Vma> = Vec::new();
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            let vma = vmas.last_mut().expect("VmFlags before any entry");
            vma.flags = flags.split_whitespace().map(String::from).collect();
            continue;
        }
        // An entry starts with `start-end perms offset dev inode [path]`.
        let mut fields = line.split_whitespace();
        let Some((a, b)) = fields.next().and_then(|r| r.split_once('-')) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        let inode = fields.nth(3).and_then(|i| i.parse().ok()).unwrap_or(0);
        vmas.push(Vma {
            start,
            end,
            inode,
            flags: Vec::new(),
        });
    }
    vmas
}

/// A POSIX shm name no other test (or run) uses, `shm-region-<kind>-<tag>-<pid>`,
/// and its file under `/dev/shm`; the file is removed when the guard is
/// dropped, whatever the test left.
pub struct ShmName {
    /// The name, without a leading `/`.
    pub name: String,
    /// `/dev/shm/<name>`.
    pub path: PathBuf,
}

impl ShmName {
    /// A fresh name for test `tag` of the binary `kind`; any file left under
    /// it by an earlier run is removed.
    pub fn new(kind: &str, tag: &str) -> Self {
        let name = format!("shm-region-{kind}-{tag}-{}", std::process::id());
        let path = Path::new("/dev/shm").join(&name);
        let _ = std::fs::remove_file(&path);
        Self { name, path }
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A peer with its own descriptor sets the file's length, as an attacker
/// would, without the crate.
pub fn peer_set_len(path: &Path, len: usize) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(u64::try_from(len).unwrap())
        .unwrap();
}

/// The calling thread's id, to watch its state in `/proc`.
pub fn tid() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

/// The state letter of thread `tid` of this process, `None` once it has
/// exited.
pub fn thread_state(tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Waits (at most a minute) until thread `tid`, which announced it is
/// about to block, is asleep (state `S` twice, 10 ms apart): with nothing
/// else to sleep on, it is then blocked where the caller expects.
pub fn wait_until_asleep(tid: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "thread {tid} never slept");
        let first = thread_state(tid);
        assert!(first.is_some(), "thread {tid} returned instead of sleeping");
        std::thread::sleep(Duration::from_millis(10));
        if first == Some('S') && thread_state(tid) == Some('S') {
            return;
        }
    }
}

/// How many `SIGUSR1`s [`count_sigusr1`]'s handler has handled in this
/// process.
static SIGUSR1_HANDLED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn sigusr1_counter(_: libc::c_int) {
    SIGUSR1_HANDLED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Installs a handler for `SIGUSR1` that only counts
/// ([`sigusr1_handled`]), without `SA_RESTART`, so that a system call it
/// interrupts (`poll`, a futex wait) fails with `EINTR`. No test of a
/// binary that calls this uses `SIGUSR1` otherwise.
pub fn count_sigusr1() {
    // SAFETY: an all-zero `sigaction` is a valid value of the C struct (no
    // flags, an empty mask, a null handler that is set next).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = sigusr1_counter as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `action.sa_mask` is a valid, writable `sigset_t`.
    assert_eq!(unsafe { libc::sigemptyset(&mut action.sa_mask) }, 0);
    // SAFETY: `action` is initialised; the handler only increments an
    // atomic, which is async-signal-safe; the old action is not asked for
    // (null).
    let rc = unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}

/// How many `SIGUSR1`s the handler [`count_sigusr1`] installs has
/// handled.
pub fn sigusr1_handled() -> usize {
    SIGUSR1_HANDLED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Sends `SIGUSR1` to the thread; returns `pthread_kill`'s result (0, or
/// `ESRCH` if the thread has already returned).
pub fn send_sigusr1<T>(handle: &std::thread::JoinHandle<T>) -> i32 {
    use std::os::unix::thread::JoinHandleExt;
    // SAFETY: the thread has not been joined (the caller holds its
    // handle), so its `pthread_t` is valid; `SIGUSR1` has a handler
    // installed (`count_sigusr1`).
    unsafe { libc::pthread_kill(handle.as_pthread_t(), libc::SIGUSR1) }
}

/// The timeout of the waits [`signals_during_a_timed_wait`] interrupts.
pub const SIGNALLED_TIMEOUT: Duration = Duration::from_millis(300);
/// The most such a wait may take: its timeout plus 220 ms of scheduling
/// delay. A wait that started its timeout over after an `EINTR` at 290 ms
/// or later takes at least 590 ms; one that ended at the first `EINTR`
/// returns before its timeout.
pub const SIGNALLED_BOUND: Duration = Duration::from_millis(520);

/// The test body "signals during a wait" that the doorbell, the peer's
/// `wait_exit` and `wait_u32` share. For each of `rounds`: runs
/// `wait(SIGNALLED_TIMEOUT)` on a thread (a wait that nothing ends early),
/// sends it `SIGUSR1` at each of `at` (milliseconds since the wait
/// started; a signal sent on a loaded machine after the wait returned
/// finds the thread gone, `ESRCH`, which is accepted), and asserts that
/// at least one signal was handled, that the wait returned `timed_out`,
/// and that it took at least its timeout and less than
/// [`SIGNALLED_BOUND`]: the signals neither ended it early nor extended
/// it.
pub fn signals_during_a_timed_wait<R>(
    rounds: usize,
    at: &[u64],
    wait: impl Fn(Duration) -> R + Send + Sync + 'static,
    timed_out: R,
) where
    R: std::fmt::Debug + PartialEq + Send + 'static,
{
    count_sigusr1();
    let wait = std::sync::Arc::new(wait);
    for round in 0..rounds {
        let (tx, rx) = std::sync::mpsc::channel();
        let w = std::sync::Arc::clone(&wait);
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            tx.send(start).unwrap();
            let res = w(SIGNALLED_TIMEOUT);
            (res, start.elapsed())
        });
        let start = rx.recv().unwrap();
        let before = sigusr1_handled();
        for &ms in at {
            if let Some(d) =
                (start + Duration::from_millis(ms)).checked_duration_since(Instant::now())
            {
                std::thread::sleep(d);
            }
            let rc = send_sigusr1(&handle);
            assert!(
                rc == 0 || rc == libc::ESRCH,
                "round {round}: pthread_kill: {rc}"
            );
        }
        let (res, took) = handle.join().unwrap();
        assert!(
            sigusr1_handled() > before,
            "round {round}: no signal handled"
        );
        assert_eq!(res, timed_out, "round {round}");
        assert!(
            (SIGNALLED_TIMEOUT..SIGNALLED_BOUND).contains(&took),
            "round {round}: a {SIGNALLED_TIMEOUT:?} wait interrupted by signals took {took:?}"
        );
    }
}
