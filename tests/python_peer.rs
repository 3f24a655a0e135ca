//! Python as the peer: `multiprocessing.shared_memory.SharedMemory` for
//! POSIX shm names, and `socket.send_fds` / `socket.recv_fds` for
//! descriptor passing. `python3` must be installed: without it these tests
//! fail (spawning it fails), they are never skipped.
#![cfg(all(target_os = "linux", not(miri)))]
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::ShmName;
use shm_region::{fdpass, FileCleanup, MmapOptions, MmapRegion};

/// The options a received memfd is attached with: the defaults, which
/// accept a memfd as the kernel makes it (mode 0777).
fn defaults_for_a_received_memfd() -> MmapOptions {
    MmapOptions::new()
}

/// `python3 -c script args...` with stdout piped; stdin as given.
fn python(script: &str, args: &[&str], stdin: Stdio) -> Child {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 must be installed to run the Python peer tests")
}

/// The next line Python printed, without its newline.
fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut s = String::new();
    out.read_line(&mut s).unwrap();
    s.trim_end().to_owned()
}

fn tell(stdin: &mut ChildStdin, what: &str) {
    writeln!(stdin, "{what}").unwrap();
    stdin.flush().unwrap();
}

fn finish(mut child: Child) {
    let status = common::wait_with_timeout(&mut child, Duration::from_secs(60));
    assert!(status.success(), "python failed: {status}");
}

const GROWING_SEGMENT: &str = r#"
import mmap, os, sys
from multiprocessing import shared_memory
name = sys.argv[1]
m = shared_memory.SharedMemory(name=name, create=True, size=4096)
m.buf[0:11] = b"from python"
print("ready", flush=True)
assert sys.stdin.readline().strip() == "grow"
os.ftruncate(m._fd, 65536)
with mmap.mmap(m._fd, 65536) as big:
    big[65536 - 12:] = b"grown python"
print("grown", flush=True)
assert sys.stdin.readline().strip() == "done"
m.close()
m.unlink()
print("unlinked", flush=True)
"#;

#[test]
fn a_segment_python_made_is_attached_by_name_read_and_followed_when_python_grows_it() {
    let n = ShmName::new("py", "grow");
    let mut child = python(GROWING_SEGMENT, &[&n.name], Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(line(&mut out), "ready");

    let mut guest = MmapRegion::attach_shm(&n.name).unwrap();
    assert_eq!(guest.len(), 4096);
    let mut buf = [0u8; 11];
    guest.region().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"from python");
    assert!(!guest.check_and_remap().unwrap());

    tell(&mut stdin, "grow");
    assert_eq!(line(&mut out), "grown");
    assert!(guest.check_and_remap().unwrap());
    assert_eq!(guest.len(), 65536);
    let mut tail = [0u8; 12];
    guest.region().read_at(65536 - 12, &mut tail).unwrap();
    assert_eq!(&tail, b"grown python");
    guest.region().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"from python");

    tell(&mut stdin, "done");
    assert_eq!(line(&mut out), "unlinked");
    finish(child);
    assert!(!n.path.exists());
}

const READ_SEGMENT: &str = r#"
import sys
from multiprocessing import resource_tracker, shared_memory
name, size = sys.argv[1], int(sys.argv[2])
m = shared_memory.SharedMemory(name=name)
# Attaching registers the name with Python's resource tracker, which would
# unlink it when this process exits: the Rust creator owns it.
resource_tracker.unregister(m._name, "shared_memory")
expected = bytes((i * 7 + 3) % 251 for i in range(size))
got = bytes(m.buf[:size])
print(f"size {m.size} equal {got == expected}", flush=True)
m.buf[0:15] = b"python was here"
m.close()
"#;

#[test]
fn a_segment_create_shm_made_is_read_by_python_byte_for_byte() {
    const SIZE: usize = 3 * 4096 + 100;
    let n = ShmName::new("py", "read");
    let host = MmapRegion::create_shm(&format!("/{}", n.name), SIZE, FileCleanup::Manual).unwrap();
    let pattern: Vec<u8> = (0..SIZE)
        .map(|i| u8::try_from((i * 7 + 3) % 251).unwrap())
        .collect();
    host.region().write_at(0, &pattern).unwrap();

    let mut child = Command::new("python3")
        .arg("-c")
        .arg(READ_SEGMENT)
        .args([&n.name, &SIZE.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed to run the Python peer tests");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut err = child.stderr.take().unwrap();
    // Python rounds nothing: it sees the file's size.
    assert_eq!(line(&mut out), format!("size {SIZE} equal True"));
    finish(child);
    // Python's resource tracker (a process of its own, which would unlink
    // a name still registered, and warn about it, after python3 exited)
    // holds the stderr pipe until it exits: reading it to the end waits
    // for the tracker.
    let stderr = common::within(Duration::from_secs(60), move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut err, &mut text).unwrap();
        text
    });
    assert!(!stderr.contains("leaked"), "{stderr}");

    let mut buf = [0u8; 15];
    host.region().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"python was here");
    // Python's resource tracker, now gone, left the name alone; the
    // creator removes it.
    assert!(n.path.exists());
    drop(host);
    assert!(!n.path.exists());
}

const SEND_FDS: &str = r#"
import os, socket, tempfile
sock = socket.socket(fileno=0)
pool = os.memfd_create("wl_shm-pool")
os.ftruncate(pool, 8192)
os.pwrite(pool, b"pixels from python", 4096)
r, w = os.pipe()
other = tempfile.TemporaryFile()
other.write(b"third")
other.flush()
n = socket.send_fds(sock, [b"create_pool 8192"], [r, pool, other.fileno()])
print(f"sent {n}", flush=True)
"#;

#[test]
fn bytes_and_descriptors_python_sends_are_received_in_order_and_its_memfd_attaches() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = python(SEND_FDS, &[], Stdio::from(OwnedFd::from(theirs)));
    let mut out = BufReader::new(child.stdout.take().unwrap());

    let mut buf = [0u8; 64];
    let (n, fds) = fdpass::recv_with(&ours, &mut buf, 4).unwrap();
    assert_eq!(&buf[..n], b"create_pool 8192");
    assert_eq!(line(&mut out), "sent 16");
    finish(child);
    assert_eq!(fds.len(), 3);
    let types: Vec<_> = fds
        .iter()
        .map(|fd| rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(fd).unwrap().st_mode))
        .collect();
    use rustix::fs::FileType;
    assert_eq!(
        types,
        [FileType::Fifo, FileType::RegularFile, FileType::RegularFile]
    );
    for fd in &fds {
        let flags = rustix::io::fcntl_getfd(fd).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }
    let mut fds = fds.into_iter();
    let pipe = fds.next().unwrap();
    let pool = fds.next().unwrap();
    // The memfd as the kernel made it: mode 0777, no seals.
    let st = rustix::fs::fstat(&pool).unwrap();
    assert_eq!(st.st_mode & 0o7777, 0o777);
    let pool = defaults_for_a_received_memfd().attach_fd(pool).unwrap();
    assert_eq!(pool.len(), 8192);
    assert!(!pool.is_shrink_sealed());
    let mut pixels = [0u8; 18];
    pool.region().read_at(4096, &mut pixels).unwrap();
    assert_eq!(&pixels, b"pixels from python");
    // The pipe is not a region.
    assert_eq!(
        MmapRegion::attach_fd(pipe).unwrap_err().kind(),
        shm_region::ErrorKind::NotRegularFile
    );
    let mut third = std::fs::File::from(fds.next().unwrap());
    std::io::Seek::rewind(&mut third).unwrap();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut third, &mut body).unwrap();
    assert_eq!(body, b"third");
}

const RECV_FDS: &str = r#"
import os, socket
sock = socket.socket(fileno=0)
msg, fds, flags, _ = socket.recv_fds(sock, 1024, 4)
assert flags & socket.MSG_CTRUNC == 0, flags
sealed, plain = fds
print(f"msg {msg.decode()} fds {len(fds)}", flush=True)
print(f"sealed {os.fstat(sealed).st_size} {os.pread(sealed, 13, 100).decode()}", flush=True)
print(f"plain {os.pread(plain, 64, 0).decode()}", flush=True)
"#;

#[test]
fn bytes_and_descriptors_send_with_sends_are_received_by_python() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut child = python(RECV_FDS, &[], Stdio::from(OwnedFd::from(theirs)));
    let mut out = BufReader::new(child.stdout.take().unwrap());

    let region = MmapRegion::create_sealed("to-python", 8192).unwrap();
    region.region().write_at(100, b"sealed region").unwrap();
    let mut plain = tempfile::tempfile().unwrap();
    plain.write_all(b"a plain file").unwrap();
    let sent = fdpass::send_with(
        &ours,
        b"here you go",
        &[region.fd().unwrap(), plain.as_fd()],
    )
    .unwrap();
    assert_eq!(sent, 11);
    assert_eq!(line(&mut out), "msg here you go fds 2");
    assert_eq!(line(&mut out), "sealed 8192 sealed region");
    assert_eq!(line(&mut out), "plain a plain file");
    finish(child);
}
