//! Descriptor I/O straight from and into the mapping (`write_to_fd`,
//! `read_from_fd`, `write_all_to_fd`, `read_exact_from_fd`) and chunked
//! in-place reads (`for_each_chunk`): round trips through pipes, a tmpfs
//! file and sockets, bounds exactly as `read_at`'s, read-only views,
//! `EINTR`, end of input, and truncation without the `SIGBUS` guard (in a
//! child process, which a `SIGBUS` would kill).
//!
//! The in-memory tests also run under Miri (sockets, no files).
#![cfg(unix)]

mod common;

#[cfg(not(miri))]
use std::io::Seek;
use std::io::{Read, Write};
#[cfg(not(miri))]
use std::os::fd::{FromRawFd, OwnedFd};
use std::thread;

#[cfg(not(miri))]
use common::*;
use shm_region::{ErrorKind, MmapRegion, Region};

const CHUNK: usize = Region::CHUNK_SIZE;

fn pattern(i: usize) -> u8 {
    // Not periodic in any power of two, so a misplaced chunk shows.
    u8::try_from((i * 7 + i / 251) % 251).unwrap()
}

fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

/// A pipe, close-on-exec: (read end, write end).
#[cfg(not(miri))]
fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two `c_int`s, as `pipe2` needs.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `pipe2` succeeded, so the descriptor is open and owned by
    // nothing else.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: as for the read end.
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    (r.into(), w.into())
}

/// A connected pair of stream sockets, used through `read(2)` and
/// `write(2)` (as files: Miri emulates those on sockets, not `send`/`recv`,
/// and it has no `pipe2`).
fn socket_pair() -> (std::fs::File, std::fs::File) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    (
        std::os::fd::OwnedFd::from(a).into(),
        std::os::fd::OwnedFd::from(b).into(),
    )
}

/// Everything `r` gives until end of input, with plain reads (no size
/// hint, which Miri could not get).
fn read_until_eof(r: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).unwrap() {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn in_memory_descriptor_io_round_trips_through_a_socket() {
    // Small enough for the socket's buffer, so one thread does both ends
    // (as Miri runs it; the pipe tests below use threads and 1 MiB).
    let len = 5000;
    let host = MmapRegion::in_memory(4 * CHUNK).unwrap();
    let view = host.region();
    let bytes = patterned(len);
    view.write_at(0, &bytes).unwrap();
    let (a, mut b) = socket_pair();
    view.write_all_to_fd(0, len, &a).unwrap();
    let mut got = vec![0; len];
    b.read_exact(&mut got).unwrap();
    assert_eq!(got, bytes);
    // Straight back in, at another offset.
    b.write_all(&got).unwrap();
    view.read_exact_from_fd(CHUNK, len, &a).unwrap();
    let mut back = vec![0; len];
    view.read_at(CHUNK, &mut back).unwrap();
    assert_eq!(back, bytes);
    // One call each: a count between 1 and the length asked for.
    b.write_all(b"abc").unwrap();
    let n = view.read_from_fd(10, 3, &a).unwrap();
    assert!((1..=3).contains(&n), "{n}");
    let mut in_region = [0u8; 3];
    view.read_at(10, &mut in_region[..n]).unwrap();
    assert_eq!(in_region[..n], b"abc"[..n]);
    let m = view.write_to_fd(10, n, &a).unwrap();
    assert!((1..=n).contains(&m), "{m}");
    let mut echoed = [0u8; 3];
    b.read_exact(&mut echoed[..m]).unwrap();
    assert_eq!(echoed[..m], b"abc"[..m]);
}

#[cfg(not(miri))]
#[test]
fn write_all_to_fd_and_read_exact_from_fd_round_trip_through_pipes_drained_by_threads() {
    // 1 MiB: many times a pipe's capacity, so the calls block and return
    // short counts, and the loops continue where they stopped.
    let len = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let host = MmapRegion::create(seg(&dir), 2 * len, shm_region::FileCleanup::Manual).unwrap();
    let view = host.region();
    let bytes = patterned(len);
    view.write_at(0, &bytes).unwrap();

    let (mut r, w) = pipe();
    let drain = thread::spawn(move || {
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        got
    });
    view.write_all_to_fd(0, len, &w).unwrap();
    drop(w);
    assert_eq!(drain.join().unwrap(), bytes);

    let (r, mut w) = pipe();
    let feed = {
        let bytes = bytes.clone();
        thread::spawn(move || w.write_all(&bytes).unwrap())
    };
    view.read_exact_from_fd(len, len, &r).unwrap();
    feed.join().unwrap();
    let mut back = vec![0; len];
    view.read_at(len, &mut back).unwrap();
    assert_eq!(back, bytes);
    // And the file holds them.
    let on_disk = std::fs::read(seg(&dir)).unwrap();
    assert_eq!(on_disk[len..], bytes[..]);
}

#[cfg(not(miri))]
#[test]
fn descriptor_io_uses_and_advances_a_tmpfs_files_position() {
    let host = MmapRegion::in_memory(4 * CHUNK).unwrap();
    let view = host.region();
    let bytes = patterned(2 * CHUNK);
    view.write_at(0, &bytes).unwrap();
    let mut file = tempfile::tempfile_in("/dev/shm").unwrap();
    assert_eq!(
        rustix::fs::fstatfs(&file).unwrap().f_type,
        0x0102_1994,
        "/dev/shm is not tmpfs"
    );
    // A file takes every byte in one call: the counts are exact.
    assert_eq!(view.write_to_fd(0, 100, &file).unwrap(), 100);
    assert_eq!(
        view.write_to_fd(100, 2 * CHUNK - 100, &file).unwrap(),
        2 * CHUNK - 100
    );
    assert_eq!(
        file.stream_position().unwrap(),
        u64::try_from(2 * CHUNK).unwrap()
    );
    view.write_all_to_fd(5, 10, &file).unwrap();
    let mut all = Vec::new();
    file.rewind().unwrap();
    file.read_to_end(&mut all).unwrap();
    assert_eq!(all.len(), 2 * CHUNK + 10);
    assert_eq!(all[..2 * CHUNK], bytes[..]);
    assert_eq!(all[2 * CHUNK..], bytes[5..15]);

    // Back in from position 1: a call reads what is asked while the file
    // has it, then the rest (9 bytes), then end of input (0).
    file.seek(std::io::SeekFrom::Start(1)).unwrap();
    assert_eq!(view.read_from_fd(2 * CHUNK, CHUNK, &file).unwrap(), CHUNK);
    assert_eq!(view.read_from_fd(3 * CHUNK, CHUNK, &file).unwrap(), CHUNK);
    assert_eq!(view.read_from_fd(0, CHUNK, &file).unwrap(), 9);
    assert_eq!(view.read_from_fd(0, CHUNK, &file).unwrap(), 0);
    let mut back = vec![0; 2 * CHUNK];
    view.read_at(2 * CHUNK, &mut back).unwrap();
    assert_eq!(back[..], all[1..=2 * CHUNK]);
    view.read_at(0, &mut back[..9]).unwrap();
    assert_eq!(back[..9], all[2 * CHUNK + 1..]);
}

#[test]
fn descriptor_io_and_for_each_chunk_bounds_are_exactly_those_of_read_at() {
    let len = 2 * CHUNK;
    let host = MmapRegion::in_memory(len).unwrap();
    let view = host.region();
    assert_eq!(view.len(), len);
    let (mut a, mut b) = socket_pair();
    // One byte waits to be read, to show that no refused call reads.
    b.write_all(b"z").unwrap();
    let refused = [
        (len, 1),
        (len - 1, 2),
        (len + 1, 0),
        (0, len + 1),
        (usize::MAX, 2),
        (2, usize::MAX),
        (usize::MAX, usize::MAX),
    ];
    for (offset, n) in refused {
        let mut buf = vec![0u8; n.min(len + 1)];
        let expected = if n <= len + 1 {
            view.read_at(offset, &mut buf).unwrap_err()
        } else {
            // `read_at` cannot be given a buffer this long; the message is
            // the same but for the operation.
            view.for_each_chunk(offset, n, |_| panic!("called"))
                .unwrap_err()
        };
        assert_eq!(expected.kind(), ErrorKind::OutOfBounds, "{offset} {n}");
        let tail = expected.to_string();
        let tail = tail.split_once(": ").unwrap().1;
        let errors = [
            ("write_to_fd", view.write_to_fd(offset, n, &a).unwrap_err()),
            (
                "read_from_fd",
                view.read_from_fd(offset, n, &a).unwrap_err(),
            ),
            (
                "write_all_to_fd",
                view.write_all_to_fd(offset, n, &a).unwrap_err(),
            ),
            (
                "read_exact_from_fd",
                view.read_exact_from_fd(offset, n, &a).unwrap_err(),
            ),
            (
                "for_each_chunk",
                view.for_each_chunk(offset, n, |_| panic!("f called for {offset} {n}"))
                    .unwrap_err(),
            ),
        ];
        for (op, e) in errors {
            assert_eq!(e.kind(), ErrorKind::OutOfBounds, "{op} {offset} {n}");
            assert_eq!(e.to_string(), format!("{op}: {tail}"));
        }
    }
    // Nothing was read: the byte still waits. Nothing reached the peer.
    let mut z = [0u8; 1];
    a.read_exact(&mut z).unwrap();
    assert_eq!(z, *b"z");
    drop(a);
    let sent = read_until_eof(&mut b);
    assert!(sent.is_empty(), "{sent:?}");
    // The edges that fit: every byte, and empty ranges at both ends.
    let (a, mut c) = socket_pair();
    c.write_all(b"q").unwrap();
    for (offset, n) in [(0, 0), (len, 0), (len - 1, 1)] {
        assert_eq!(view.write_to_fd(offset, n, &a).unwrap(), n);
        assert_eq!(view.read_from_fd(offset, n, &a).unwrap(), n);
        view.write_all_to_fd(offset, n, &a).unwrap();
        let mut calls = 0;
        view.for_each_chunk(offset, n, |chunk| {
            calls += 1;
            assert_eq!(chunk.len(), n);
        })
        .unwrap();
        assert_eq!(calls, usize::from(n > 0));
    }
    let mut got = [0u8; 2];
    c.read_exact(&mut got).unwrap();
    // The last byte as it was (0), then as read in; nothing else.
    assert_eq!(got, [0, b'q']);
    drop(a);
    let rest = read_until_eof(&mut c);
    assert!(rest.is_empty(), "{rest:?}");
}

#[cfg(not(miri))]
#[test]
fn descriptor_reads_into_a_read_only_view_are_read_only_and_read_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = MmapRegion::create(seg(&dir), 4096, shm_region::FileCleanup::Manual).unwrap();
    host.region().write_at(0, b"ro").unwrap();
    let guest = MmapRegion::attach_read_only(seg(&dir)).unwrap();
    let view = guest.region();
    assert!(view.is_read_only());
    let (r, mut w) = pipe();
    w.write_all(b"in").unwrap();
    for e in [
        view.read_from_fd(0, 2, &r).unwrap_err(),
        view.read_exact_from_fd(0, 2, &r).unwrap_err(),
        // Even out of bounds: the mapping cannot be written at all.
        view.read_from_fd(4096, 1, &r).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::ReadOnly);
        assert_eq!(
            std::io::Error::from(e).kind(),
            std::io::ErrorKind::PermissionDenied
        );
    }
    // Writing out of a read-only view works.
    let (mut r2, w2) = pipe();
    view.write_all_to_fd(0, 2, &w2).unwrap();
    let mut got = [0u8; 2];
    r2.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ro");
    // The two bytes are still in the pipe: nothing was read.
    let mut r = r;
    let mut left = [0u8; 2];
    r.read_exact(&mut left).unwrap();
    assert_eq!(&left, b"in");
}

#[test]
fn read_exact_from_fd_at_end_of_input_is_unexpected_eof() {
    let host = MmapRegion::in_memory(4096).unwrap();
    let view = host.region();
    let (mut a, b) = socket_pair();
    a.write_all(&[7; 10]).unwrap();
    drop(a);
    let err = view.read_exact_from_fd(100, 20, &b).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    assert_eq!(err.raw_os_error(), None);
    assert_eq!(
        err.to_string(),
        "read_exact_from_fd: end of input after 10 of 20 bytes"
    );
    let io = std::io::Error::from(err);
    assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
    // The bytes before the end are in the region, the rest untouched.
    let mut got = [1u8; 21];
    view.read_at(100, &mut got).unwrap();
    assert_eq!(got[..10], [7; 10]);
    assert_eq!(got[10..], [0; 11]);
    // A single read at the end of input is no error: 0.
    assert_eq!(view.read_from_fd(0, 5, &b).unwrap(), 0);
    // And exactly as many bytes as the input has is no error either.
    let (mut a, b) = socket_pair();
    a.write_all(&[9; 20]).unwrap();
    drop(a);
    view.read_exact_from_fd(0, 20, &b).unwrap();
}

#[test]
fn for_each_chunk_passes_consecutive_chunks_covering_exactly_the_range() {
    let len = 3 * CHUNK + 1000;
    let host = MmapRegion::in_memory(len + 10).unwrap();
    let view = host.region();
    let bytes = patterned(len + 10);
    view.write_at(0, &bytes).unwrap();
    for (offset, n) in [
        (0, len + 10),
        (3, len),
        (1, 1),
        (5, CHUNK),
        (5, CHUNK + 1),
        (len + 10, 0),
    ] {
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        view.for_each_chunk(offset, n, |chunk| {
            sizes.push(chunk.len());
            seen.extend_from_slice(chunk);
        })
        .unwrap();
        assert_eq!(seen, bytes[offset..offset + n], "{offset} {n}");
        // Full chunks, then the remainder; none empty.
        let full = n / CHUNK;
        let mut expected = vec![CHUNK; full];
        if n % CHUNK != 0 {
            expected.push(n % CHUNK);
        }
        assert_eq!(sizes, expected, "{offset} {n}");
    }
}

#[cfg(not(miri))]
mod interrupted {
    //! `EINTR`: a signal handled without `SA_RESTART` while the loops are
    //! blocked in `write(2)` / `read(2)` makes the call fail with `EINTR`;
    //! the loops retry it.
    use super::*;
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    const LIMIT: Duration = Duration::from_secs(20);

    static HANDLED: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn count_signal(_: libc::c_int) {
        HANDLED.fetch_add(1, Ordering::SeqCst);
    }

    /// Installs `count_signal` for `SIGUSR2`, without `SA_RESTART`.
    fn install_handler() {
        // SAFETY: an all-zero `sigaction` is a valid value of the C struct
        // (no flags, an empty mask, a null handler that is set next).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `action.sa_mask` is a valid, writable `sigset_t`.
        assert_eq!(unsafe { libc::sigemptyset(&mut action.sa_mask) }, 0);
        // SAFETY: `action` is initialised; the handler only increments an
        // atomic, which is async-signal-safe; the old action is not asked
        // for. No other test of this binary uses `SIGUSR2`.
        let rc = unsafe { libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()) };
        assert_eq!(rc, 0);
    }

    /// Interrupts the blocked thread three times, each time waiting until
    /// the handler ran and the thread sleeps again in the retried call.
    fn interrupt_thrice<T>(tid: i32, handle: &thread::JoinHandle<T>) {
        for _ in 0..3 {
            wait_until_asleep(tid);
            let before = HANDLED.load(Ordering::SeqCst);
            // SAFETY: the thread is not joined (we hold its handle), so its
            // `pthread_t` is valid; `SIGUSR2` has a handler installed.
            let rc = unsafe { libc::pthread_kill(handle.as_pthread_t(), libc::SIGUSR2) };
            assert_eq!(rc, 0);
            wait_until(LIMIT, "the signal to be handled", || {
                HANDLED.load(Ordering::SeqCst) > before
            });
            assert!(!handle.is_finished(), "the signal ended the call");
        }
        wait_until_asleep(tid);
        assert!(!handle.is_finished(), "the signal ended the call");
    }

    #[test]
    fn write_all_to_fd_and_read_exact_from_fd_retry_calls_a_signal_interrupted() {
        install_handler();
        let len = 256 * 1024;
        let host = MmapRegion::in_memory(2 * len).unwrap();
        let view = host.region();
        let bytes = patterned(len);
        view.write_at(0, &bytes).unwrap();

        // Writing: the pipe is full first, so the call blocks having
        // written nothing, and the signal makes it fail with EINTR.
        let (mut r, mut w) = pipe();
        // SAFETY: `F_GETPIPE_SZ` on a pipe descriptor takes no argument.
        let capacity =
            unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&w), libc::F_GETPIPE_SZ) };
        let capacity = usize::try_from(capacity).unwrap();
        w.write_all(&vec![0xEE; capacity]).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = {
            let view = view.clone();
            thread::spawn(move || {
                tx.send(tid()).unwrap();
                view.write_all_to_fd(0, len, &w)
            })
        };
        interrupt_thrice(rx.recv().unwrap(), &writer);
        let mut got = vec![0; capacity + len];
        r.read_exact(&mut got).unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(got[..capacity], vec![0xEE; capacity][..]);
        assert_eq!(got[capacity..], bytes[..]);

        // Reading: the pipe is empty, so the call blocks having read
        // nothing.
        let (r, mut w) = pipe();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let view = view.clone();
            thread::spawn(move || {
                tx.send(tid()).unwrap();
                view.read_exact_from_fd(len, len, &r)
            })
        };
        interrupt_thrice(rx.recv().unwrap(), &reader);
        w.write_all(&bytes).unwrap();
        reader.join().unwrap().unwrap();
        let mut back = vec![0; len];
        view.read_at(len, &mut back).unwrap();
        assert_eq!(back, bytes);
    }

    #[test]
    fn single_calls_report_a_signal_interrupted_as_interrupted() {
        install_handler();
        let host = MmapRegion::in_memory(4096).unwrap();
        let view = host.region();
        let (r, _w) = pipe();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let view = view.clone();
            thread::spawn(move || {
                tx.send(tid()).unwrap();
                view.read_from_fd(0, 10, &r)
            })
        };
        let tid = rx.recv().unwrap();
        wait_until_asleep(tid);
        // SAFETY: as in `interrupt_thrice`.
        let rc = unsafe { libc::pthread_kill(reader.as_pthread_t(), libc::SIGUSR2) };
        assert_eq!(rc, 0);
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Os);
        assert_eq!(err.raw_os_error(), Some(libc::EINTR));
        assert_eq!(
            std::io::Error::from(err).kind(),
            std::io::ErrorKind::Interrupted
        );
    }
}

#[cfg(not(miri))]
mod truncated {
    //! A peer truncates the file under the mapping. Each test runs in a
    //! child process: without the guard a `SIGBUS` would kill it, and the
    //! parent checks that it exited successfully, not by a signal.
    use super::*;
    use shm_region::{sigbus, FileCleanup};
    use std::os::unix::process::ExitStatusExt;

    const PAGE: usize = 4096;

    fn in_child(test: &str, role: &str, body: impl FnOnce()) {
        if role_is(role) {
            body();
            return;
        }
        let mut child = spawn_self(test, role, &[]).spawn().unwrap();
        let status = wait_with_timeout(&mut child, std::time::Duration::from_secs(60));
        assert_eq!(
            status.signal(),
            None,
            "the child died of a signal: {status}"
        );
        assert!(status.success(), "child failed: {status}");
    }

    fn role_is(role: &str) -> bool {
        common::role().as_deref() == Some(role)
    }

    fn assert_truncated(e: &shm_region::Error, op: &str, mapped: usize) {
        assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::EFAULT), "{e}");
        let efault = std::io::Error::from_raw_os_error(libc::EFAULT);
        assert_eq!(
            e.to_string(),
            format!(
                "{op}: file was truncated below the mapped length {mapped} (it is {} bytes now) ({efault})",
                4 * PAGE + 100
            )
        );
        assert_eq!(
            std::io::Error::from(e.clone()).kind(),
            std::io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn descriptor_io_over_a_truncated_range_is_truncated_and_sticky_without_the_guard() {
        const NAME: &str =
            "truncated::descriptor_io_over_a_truncated_range_is_truncated_and_sticky_without_the_guard";
        in_child(NAME, "no-guard", || {
            assert!(
                !sigbus::is_installed(),
                "this child must run without the guard"
            );
            let dir = tempfile::tempdir_in("/dev/shm").unwrap();
            let path = dir.path().join("segment");
            let len = 16 * PAGE;
            let host = MmapRegion::create(&path, len, FileCleanup::Manual).unwrap();
            let bytes = patterned(len);
            host.region().write_at(0, &bytes).unwrap();
            // One handle per call under test (a truncation detected by one
            // handle is sticky for it alone), and one that only watches.
            let [mut a, mut b, c, d, mut control] =
                std::array::from_fn(|_| MmapRegion::attach(&path).unwrap());
            peer_set_len(&path, 4 * PAGE + 100);

            // write_to_fd: up to the last page the file has (its last 100
            // bytes, then zeros to the page's end), then Truncated.
            let mut sink = tempfile::tempfile_in("/dev/shm").unwrap();
            let view = a.region();
            assert_eq!(view.write_to_fd(0, 8 * PAGE, &sink).unwrap(), 5 * PAGE);
            let e = view.write_to_fd(5 * PAGE, 3 * PAGE, &sink).unwrap_err();
            assert_truncated(&e, "write_to_fd", len);
            let mut out = Vec::new();
            sink.rewind().unwrap();
            sink.read_to_end(&mut out).unwrap();
            assert_eq!(out.len(), 5 * PAGE);
            assert_eq!(out[..4 * PAGE + 100], bytes[..4 * PAGE + 100]);
            assert!(out[4 * PAGE + 100..].iter().all(|&x| x == 0));

            // write_all_to_fd to a pipe drained by a thread: the bytes the
            // file still has, then Truncated.
            let (mut r, w) = pipe();
            let drain = thread::spawn(move || {
                let mut got = Vec::new();
                r.read_to_end(&mut got).unwrap();
                got
            });
            let e = b.region().write_all_to_fd(0, 8 * PAGE, &w).unwrap_err();
            assert_truncated(&e, "write_all_to_fd", len);
            drop(w);
            let got = drain.join().unwrap();
            assert_eq!(got.len(), 5 * PAGE);
            assert_eq!(got[..4 * PAGE + 100], bytes[..4 * PAGE + 100]);

            // read_from_fd and read_exact_from_fd into pages the file lost.
            let (r, mut w) = pipe();
            w.write_all(&[3; 2 * PAGE]).unwrap();
            let e = c.region().read_from_fd(6 * PAGE, PAGE, &r).unwrap_err();
            assert_truncated(&e, "read_from_fd", len);
            let e = d
                .region()
                .read_exact_from_fd(5 * PAGE, PAGE, &r)
                .unwrap_err();
            assert_truncated(&e, "read_exact_from_fd", len);

            // Sticky: every view of a handle that saw it is bounded by the
            // file's end as the call saw it, and every access past it
            // within the mapped length is Truncated, whichever call comes
            // (as under the guard), past the mapped length OutOfBounds...
            let mut one = [0u8; 1];
            let (r3, mut w3) = pipe();
            w3.write_all(&[7; 4]).unwrap();
            for h in [&a, &b, &c, &d] {
                let v = h.region();
                v.read_at(4 * PAGE + 99, &mut one).unwrap();
                let e = v.read_at(4 * PAGE + 100, &mut one).unwrap_err();
                assert_eq!(
                    e.to_string(),
                    format!(
                        "read_at: 1 bytes at offset {} reach past offset {}, where this handle \
                         found the file truncated",
                        4 * PAGE + 100,
                        4 * PAGE + 100
                    )
                );
                assert_eq!(kind(v.write_at(6 * PAGE, &[1; 8])), ErrorKind::Truncated);
                assert_eq!(
                    kind(v.write_to_fd(5 * PAGE, 1, &sink)),
                    ErrorKind::Truncated
                );
                assert_eq!(
                    kind(v.write_all_to_fd(len - PAGE, PAGE, &sink)),
                    ErrorKind::Truncated
                );
                assert_eq!(
                    kind(v.read_exact_from_fd(5 * PAGE, 4, &r3)),
                    ErrorKind::Truncated
                );
                assert_eq!(kind(v.read_from_fd(5 * PAGE, 4, &r3)), ErrorKind::Truncated);
                assert_eq!(
                    kind(v.load_u32(8 * PAGE, std::sync::atomic::Ordering::Relaxed)),
                    ErrorKind::Truncated
                );
                assert_eq!(kind(v.atomic_u64(8 * PAGE)), ErrorKind::Truncated);
                assert_eq!(kind(v.read_at(len, &mut one)), ErrorKind::OutOfBounds);
                assert_eq!(
                    kind(v.write_to_fd(len - 1, 2, &sink)),
                    ErrorKind::OutOfBounds
                );
                let mut seen = 0;
                assert_eq!(
                    kind(v.for_each_chunk(0, 5 * PAGE, |c| seen += c.len())),
                    ErrorKind::Truncated
                );
                assert_eq!(seen, 0);
            }
            // ... and stays so after the peer grows the file back.
            peer_set_len(&path, len);
            assert_eq!(kind(a.check_and_remap()), ErrorKind::Truncated);
            assert_eq!(kind(b.resize(2 * len)), ErrorKind::Truncated);
            assert_eq!(kind(a.check_and_remap()), ErrorKind::Truncated);
            // The watching handle never saw the file short: nothing to
            // report, so the stickiness above came from the calls.
            assert!(!control.check_and_remap().unwrap());
            control.region().read_at(8 * PAGE, &mut one).unwrap();
        });
    }

    #[test]
    fn for_each_chunk_never_passes_a_chunk_that_reached_a_cut() {
        const NAME: &str = "truncated::for_each_chunk_never_passes_a_chunk_that_reached_a_cut";
        in_child(NAME, "guard", || {
            sigbus::install().unwrap();
            let dir = tempfile::tempdir_in("/dev/shm").unwrap();
            let path = dir.path().join("segment");
            let len = 8 * CHUNK;
            let host = MmapRegion::create(&path, len, FileCleanup::Manual).unwrap();
            let bytes = patterned(len);
            let view = host.region();
            view.write_at(0, &bytes).unwrap();
            let other = MmapRegion::attach(&path).unwrap();
            // The file ends 100 bytes into the third chunk: its copy
            // faults on the next page, which the guard contains.
            peer_set_len(&path, 2 * CHUNK + 100);
            let mut seen = Vec::new();
            let e = view
                .for_each_chunk(0, len, |c| seen.push(c.to_vec()))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Truncated);
            // The error names the chunk and the range asked for.
            assert_eq!(
                e.to_string(),
                format!(
                    "for_each_chunk: {CHUNK} bytes at offset {} (of the {len} bytes at offset 0 \
                     asked for) reach pages the file lost under the mapping (a contained SIGBUS; \
                     gone from offset {})",
                    2 * CHUNK,
                    2 * CHUNK + 4096
                )
            );
            assert_eq!(seen.len(), 2, "the cut chunk was passed to f");
            assert_eq!(seen.concat(), bytes[..2 * CHUNK]);
            // Now the cut is known: refused before f is called at all.
            let mut calls = 0;
            let e = view.for_each_chunk(0, len, |_| calls += 1).unwrap_err();
            assert_eq!((e.kind(), calls), (ErrorKind::Truncated, 0));
            // Below the cut: fine.
            view.for_each_chunk(0, 2 * CHUNK, |_| calls += 1).unwrap();
            assert_eq!(calls, 2);
            // With the guard installed, descriptor I/O of another handle
            // (no cut: it never faulted) over the pages the file lost is
            // still the kernel's EFAULT, confirmed by fstat: Truncated.
            let (mut r2, w2) = pipe();
            let e = other
                .region()
                .write_all_to_fd(CHUNK, 4 * CHUNK, &w2)
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Truncated);
            assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
            drop(w2);
            let mut sent = Vec::new();
            r2.read_to_end(&mut sent).unwrap();
            assert_eq!(sent.len(), CHUNK + 4096, "up to the file's last page");
            assert_eq!(sent[..CHUNK + 100], bytes[CHUNK..2 * CHUNK + 100]);
            // Descriptor I/O past a known cut makes no call: nothing is
            // written from the pages the guard replaced.
            let (r, w) = pipe();
            let e = view.write_to_fd(3 * CHUNK, 10, &w).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Truncated);
            drop(w);
            let mut r = r;
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
        });
    }

    /// A child that must die of `SIGBUS`: the parent checks it did.
    fn in_child_dying_of_sigbus(test: &str, role: &str, body: impl FnOnce()) {
        if role_is(role) {
            body();
            return;
        }
        let mut cmd = spawn_self(test, role, &[]);
        // Under AddressSanitizer its own SIGBUS handler would report the
        // fault and exit 1: the child must die of the signal as a plain
        // build does (as in tests/sigbus.rs).
        let asan = std::env::var("ASAN_OPTIONS").unwrap_or_default();
        cmd.env("ASAN_OPTIONS", format!("{asan}:handle_sigbus=0"));
        let mut child = cmd.spawn().unwrap();
        let status = wait_with_timeout(&mut child, std::time::Duration::from_secs(60));
        assert_eq!(
            status.signal(),
            Some(libc::SIGBUS),
            "the child did not die of SIGBUS: {status}"
        );
    }

    #[test]
    fn descriptor_io_from_inside_the_files_last_page_fails_without_a_count_on_pipes_and_sockets() {
        const NAME: &str = "truncated::descriptor_io_from_inside_the_files_last_page_fails_without_a_count_on_pipes_and_sockets";
        in_child(NAME, "no-guard", || {
            let dir = tempfile::tempdir_in("/dev/shm").unwrap();
            let path = dir.path().join("segment");
            let len = 16 * PAGE;
            let host = MmapRegion::create(&path, len, FileCleanup::Manual).unwrap();
            host.region().write_at(0, &[0xAB; 16 * PAGE]).unwrap();
            // One handle per call: a Truncated call fences its handle.
            let hs: Vec<_> = (0..6).map(|_| MmapRegion::attach(&path).unwrap()).collect();
            peer_set_len(&path, 4 * PAGE + 100);
            let (start, n) = (4 * PAGE + 50, 2 * PAGE);
            // Out of the mapping: a pipe and a socket fail Truncated with
            // no count, though the 50 bytes before the missing page were
            // there to copy; a tmpfs file takes a short count up to the
            // page (the file's last 50 bytes, then zeros).
            let (mut pr, pw) = pipe();
            let e = hs[0].region().write_to_fd(start, n, &pw).unwrap_err();
            assert_truncated(&e, "write_to_fd", len);
            let (s1, mut s2) = socket_pair();
            let e = hs[1].region().write_to_fd(start, n, &s1).unwrap_err();
            assert_truncated(&e, "write_to_fd", len);
            drop((pw, s1));
            assert!(read_until_eof(&mut pr).is_empty());
            assert!(read_until_eof(&mut s2).is_empty());
            let mut f = tempfile::tempfile_in("/dev/shm").unwrap();
            assert_eq!(hs[2].region().write_to_fd(start, n, &f).unwrap(), PAGE - 50);
            let mut out = Vec::new();
            f.rewind().unwrap();
            f.read_to_end(&mut out).unwrap();
            assert_eq!(out[..50], [0xAB; 50]);
            assert!(out[50..].iter().all(|&b| b == 0));
            // Into the mapping: a pipe fails Truncated, yet the kernel
            // stored the bytes before the missing page into the region.
            let (r, mut w) = pipe();
            w.write_all(&[7; 3 * PAGE]).unwrap();
            let e = hs[3].region().read_from_fd(start, n, &r).unwrap_err();
            assert_truncated(&e, "read_from_fd", len);
            let mut stored = [0u8; 50];
            hs[4].region().read_at(start, &mut stored).unwrap();
            assert_eq!(stored, [7; 50]);
            // A tmpfs file as the source gives a short count up to the page.
            let mut src = tempfile::tempfile_in("/dev/shm").unwrap();
            src.write_all(&[8; 3 * PAGE]).unwrap();
            src.rewind().unwrap();
            assert_eq!(
                hs[5].region().read_from_fd(start, n, &src).unwrap(),
                PAGE - 50
            );
            assert_eq!(
                src.stream_position().unwrap(),
                u64::try_from(PAGE - 50).unwrap()
            );
        });
    }

    #[test]
    fn for_each_chunk_without_the_guard_over_a_truncated_range_dies_of_sigbus() {
        const NAME: &str =
            "truncated::for_each_chunk_without_the_guard_over_a_truncated_range_dies_of_sigbus";
        in_child_dying_of_sigbus(NAME, "no-guard", || {
            assert!(!sigbus::is_installed());
            let dir = tempfile::tempdir_in("/dev/shm").unwrap();
            let path = dir.path().join("segment");
            let host = MmapRegion::create(&path, 16 * PAGE, FileCleanup::Manual).unwrap();
            peer_set_len(&path, 4 * PAGE + 100);
            // The copy meets the page the file lost: the process dies here.
            let r = host.region().for_each_chunk(0, 16 * PAGE, |_| {});
            eprintln!("for_each_chunk survived: {r:?}");
        });
    }

    #[test]
    fn an_efault_the_files_size_does_not_explain_is_os() {
        // A hole in a file on a full tmpfs: the kernel cannot bring the
        // page in (`EFAULT`), though the file is long enough. Root only;
        // CI runs as root, so a failed mount fails the test.
        let fs = Tmpfs::mount("256k").expect("mounting a tmpfs (run as root)");
        let path = fs.path().join("segment");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(u64::try_from(64 * PAGE).unwrap()).unwrap();
        let mut fill = std::fs::File::create(fs.path().join("fill")).unwrap();
        while fill.write_all(&[1; PAGE]).is_ok() {}
        let mut h = MmapRegion::attach(&path).unwrap();
        let (r, mut w) = pipe();
        w.write_all(&[9; PAGE]).unwrap();
        let e = h.region().read_from_fd(8 * PAGE, PAGE, &r).unwrap_err();
        assert_eq!(
            (e.kind(), e.raw_os_error()),
            (ErrorKind::Os, Some(libc::EFAULT)),
            "{e}"
        );
        let (mut r2, w2) = pipe();
        let e = h.region().write_to_fd(16 * PAGE, PAGE, &w2).unwrap_err();
        assert_eq!(
            (e.kind(), e.raw_os_error()),
            (ErrorKind::Os, Some(libc::EFAULT)),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "write_to_fd: operating-system error ({})",
                std::io::Error::from_raw_os_error(libc::EFAULT)
            )
        );
        drop(w2);
        assert!(read_until_eof(&mut r2).is_empty());
        // Not a truncation: the handle is not fenced.
        assert!(!h.check_and_remap().unwrap());
        drop(h);
        drop(fill);
        std::fs::remove_file(fs.path().join("fill")).unwrap();
    }

    #[test]
    fn descriptor_io_past_a_cut_known_before_the_call_makes_no_call() {
        const NAME: &str =
            "truncated::descriptor_io_past_a_cut_known_before_the_call_makes_no_call";
        in_child(NAME, "guard", || {
            sigbus::install().unwrap();
            let dir = tempfile::tempdir_in("/dev/shm").unwrap();
            let path = dir.path().join("segment");
            let host = MmapRegion::create(&path, 16 * PAGE, FileCleanup::Manual).unwrap();
            let view = host.region();
            peer_set_len(&path, 4 * PAGE + 100);
            // A raw access (not a checked one, which would also fence the
            // handle) faults on page 8: the guard records the cut there.
            let page = view.as_ptr().wrapping_add(8 * PAGE);
            // SAFETY: page 8 is mapped (the view lives); the file lost it,
            // and the installed guard contains the `SIGBUS`.
            let _ = unsafe { page.read_volatile() };
            let (mut r, w) = pipe();
            let e = view.write_to_fd(8 * PAGE, PAGE, &w).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
            drop(w);
            assert!(
                read_until_eof(&mut r).is_empty(),
                "a replaced page was written out"
            );
            let (r, mut w) = pipe();
            w.write_all(&[5; PAGE]).unwrap();
            let e = view.read_from_fd(8 * PAGE, PAGE, &r).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
            drop(w);
            let mut r = r;
            assert_eq!(read_until_eof(&mut r), vec![5; PAGE], "bytes were read");
        });
    }

    /// Whether thread `tid` of this process sleeps in `write(2)`.
    fn asleep_in_write(tid: i32) -> bool {
        let sc =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
        sc.split(' ').next() == Some(&libc::SYS_write.to_string())
    }

    /// The calling thread writes `[start, start + n)` of a 16-page file
    /// to a full pipe and sleeps; meanwhile a peer cuts the file to
    /// `4 * PAGE + 100` and a checked read at `fault` (guard installed)
    /// records a cut there; then the pipe is drained. Returns the call's
    /// result and what it wrote.
    fn write_while_a_cut_is_made(
        start: usize,
        n: usize,
        fault: usize,
    ) -> (shm_region::Result<usize>, Vec<u8>) {
        sigbus::install().unwrap();
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let path = dir.path().join("segment");
        let host = MmapRegion::create(&path, 16 * PAGE, FileCleanup::Manual).unwrap();
        host.region().write_at(0, &[0xCD; 16 * PAGE]).unwrap();
        let (mut r, w) = pipe();
        // SAFETY: `w` is an open pipe descriptor.
        let cap = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&w), libc::F_GETPIPE_SZ) };
        let cap = usize::try_from(cap).unwrap();
        (&w).write_all(&vec![1; cap]).unwrap();
        let me = rustix::thread::gettid().as_raw_nonzero().get();
        let view = host.region();
        let other = host.region();
        let peer = thread::spawn(move || {
            wait_until(
                std::time::Duration::from_secs(30),
                "the writer to sleep",
                || asleep_in_write(me),
            );
            peer_set_len(&path, 4 * PAGE + 100);
            let mut one = [0u8; 1];
            assert_eq!(kind(other.read_at(fault, &mut one)), ErrorKind::Truncated);
            let mut got = vec![0u8; cap];
            r.read_exact(&mut got).unwrap();
            (r, dir)
        });
        let res = view.write_to_fd(start, n, &w);
        drop(w);
        let (mut r, _dir) = peer.join().unwrap();
        (res, read_until_eof(&mut r))
    }

    #[test]
    fn descriptor_io_reaching_a_cut_made_during_the_call_is_truncated() {
        const NAME: &str =
            "truncated::descriptor_io_reaching_a_cut_made_during_the_call_is_truncated";
        in_child(NAME, "guard", || {
            // Cut at page 5 (the fault's page): the kernel copies pages
            // 0..5 from the file (zeros past its end) and the rest from the
            // zero pages the guard put in place, so the call succeeds; the
            // check after it reports the cut.
            let (res, out) = write_while_a_cut_is_made(0, 8 * PAGE, 5 * PAGE);
            let e = res.unwrap_err();
            assert_eq!(
                (e.kind(), e.raw_os_error()),
                (ErrorKind::Truncated, None),
                "{e}"
            );
            assert_eq!(
                e.to_string(),
                format!(
                    "write_to_fd: {} bytes at offset 0 reach pages the file lost under the mapping (a contained SIGBUS; gone from offset {})",
                    8 * PAGE,
                    5 * PAGE
                )
            );
            assert_eq!(out.len(), 8 * PAGE);
        });
    }

    #[test]
    fn an_efault_at_a_cut_made_during_the_call_is_truncated_at_the_cut() {
        const NAME: &str =
            "truncated::an_efault_at_a_cut_made_during_the_call_is_truncated_at_the_cut";
        in_child(NAME, "guard", || {
            // The copy starts on page 6, which the file lost and no fault
            // replaced (the cut is at page 7): EFAULT; the cut explains
            // it, before the file's size is looked at.
            let (res, out) = write_while_a_cut_is_made(6 * PAGE, 2 * PAGE, 7 * PAGE);
            let e = res.unwrap_err();
            assert_eq!(
                (e.kind(), e.raw_os_error()),
                (ErrorKind::Truncated, Some(libc::EFAULT)),
                "{e}"
            );
            assert!(e.to_string().ends_with(&format!(
                    "reach pages the file lost under the mapping (a contained SIGBUS; gone from offset {}) ({})",
                    7 * PAGE,
                    std::io::Error::from_raw_os_error(libc::EFAULT)
                )), "{e}");
            assert!(out.is_empty());
        });
    }
}

/// The handle's descriptor lives as long as its last view: an `flock`
/// taken on `MmapRegion::fd` is held after the handle is dropped while a
/// view lives, and released when the view is dropped.
#[cfg(not(miri))]
#[test]
fn a_view_outliving_its_handle_keeps_the_handles_descriptor_and_its_flock() {
    use shm_region::FileCleanup;
    use std::os::fd::AsRawFd;
    // In a child process (this binary re-run for this test alone): a
    // `flock` belongs to the open file description, which every process
    // forked while the descriptor is open shares until it execs or exits
    // (close-on-exec closes it only at the exec). Other tests of this
    // binary start children in parallel (`Command::spawn`), and one forked
    // while the handle's descriptor was open, not yet at its exec on a
    // loaded machine, still held the lock after the view was dropped: the
    // last `LOCK_NB` failed once with `EWOULDBLOCK`. Alone in its process,
    // nothing else forks.
    const TEST: &str = "a_view_outliving_its_handle_keeps_the_handles_descriptor_and_its_flock";
    if role().as_deref() != Some("flock") {
        run_self(TEST, "flock");
        return;
    }
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let path = dir.path().join("segment");
    let host = MmapRegion::create(&path, 4096, FileCleanup::Manual).unwrap();
    let raw = host.fd().unwrap().as_raw_fd();
    // SAFETY: `raw` is the handle's open descriptor.
    assert_eq!(unsafe { libc::flock(raw, libc::LOCK_EX) }, 0);
    let view = host.region();
    let other = std::fs::File::open(&path).unwrap();
    // Dropping the `Manual` handle removes the name, not the descriptor:
    // it is still open on the file...
    drop(host);
    let target = std::fs::read_link(format!("/proc/self/fd/{raw}")).unwrap();
    assert_eq!(
        target.to_str().unwrap(),
        format!("{} (deleted)", path.display())
    );
    // ... and still holds the lock another open file description wants.
    // SAFETY: `other` is an open descriptor.
    let rc = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EWOULDBLOCK)
    );
    drop(view);
    // SAFETY: as above.
    let rc = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0);
}

#[cfg(not(miri))]
#[test]
fn for_each_chunk_refuses_the_first_chunk_past_a_truncation_detected_meanwhile() {
    // A peer cuts the file while `f` runs on the first chunk, and the
    // handle notices (check_and_remap): the next chunk lies past the file's
    // end as now seen, and is refused as read_at refuses it, Truncated,
    // without a copy (so without a fault) and without a call of `f`; the
    // error names that chunk and the range asked for.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let path = dir.path().join("segment");
    let chunk = Region::CHUNK_SIZE;
    let len = 3 * chunk;
    let _host = MmapRegion::create(&path, len, shm_region::FileCleanup::Manual).unwrap();
    let mut handle = MmapRegion::attach(&path).unwrap();
    let view = handle.region();
    let mut calls = 0;
    let err = view
        .for_each_chunk(0, len, |c| {
            calls += 1;
            assert_eq!(c.len(), chunk);
            peer_set_len(&path, chunk + 4096);
            assert_eq!(
                handle.check_and_remap().unwrap_err().kind(),
                ErrorKind::Truncated
            );
        })
        .unwrap_err();
    assert_eq!(calls, 1);
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "for_each_chunk: {chunk} bytes at offset {chunk} (of the {len} bytes at offset 0 asked \
             for) reach past offset {}, where this handle found the file truncated",
            chunk + 4096
        )
    );
}

#[cfg(not(miri))]
mod file_size_limit {
    //! `write(2)` past `RLIMIT_FSIZE` raises `SIGXFSZ`, as for any write:
    //! descriptor output does not check the limit first (unlike `create`,
    //! `stage` and `resize`). With the signal ignored the call is
    //! `Os(EFBIG)`. The limit is process-wide: each case is a child.
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    const NAME: &str = "file_size_limit::write_all_to_fd_past_rlimit_fsize_is_sigxfsz_or_efbig";

    fn write_past_the_limit() -> shm_region::Error {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let host = MmapRegion::in_memory(1 << 20).unwrap();
        let out = tempfile::tempfile().unwrap();
        setrlimit(
            Resource::Fsize,
            Rlimit {
                current: Some(64 << 10),
                maximum: getrlimit(Resource::Fsize).maximum,
            },
        )
        .unwrap();
        let err = host.region().write_all_to_fd(0, 1 << 20, &out).unwrap_err();
        // The first 64 KiB were written before the limit.
        assert_eq!(out.metadata().unwrap().len(), 64 << 10);
        err
    }

    #[test]
    fn write_all_to_fd_past_rlimit_fsize_is_sigxfsz_or_efbig() {
        match common::role().as_deref() {
            None => {
                let mut child = spawn_self(NAME, "default", &[]).spawn().unwrap();
                let status = wait_with_timeout(&mut child, std::time::Duration::from_secs(60));
                assert_eq!(status.signal(), Some(libc::SIGXFSZ), "{status}");
                let mut child = spawn_self(NAME, "ignored", &[]).spawn().unwrap();
                let status = wait_with_timeout(&mut child, std::time::Duration::from_secs(60));
                assert!(status.success(), "{status}");
            }
            Some("default") => {
                write_past_the_limit();
                panic!("still alive past RLIMIT_FSIZE with SIGXFSZ at its default");
            }
            Some("ignored") => {
                // SAFETY: SIG_IGN for SIGXFSZ, in this child alone.
                let old = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
                assert_ne!(old, libc::SIG_ERR);
                let err = write_past_the_limit();
                assert_eq!(err.kind(), ErrorKind::Os, "{err}");
                assert_eq!(err.raw_os_error(), Some(libc::EFBIG), "{err}");
            }
            Some(other) => panic!("unknown role {other}"),
        }
    }
}
