//! Descriptor I/O straight from and into the mapping (`write_to_fd`,
//! `read_from_fd`, `write_all_to_fd`, `read_exact_from_fd`) and chunked
//! in-place reads (`for_each_chunk`): round trips through pipes, a tmpfs
//! file and sockets, bounds exactly as `read_at`'s, read-only views,
//! `EINTR`, end of input, and truncation without the `SIGBUS` guard (in a
//! child process, which a `SIGBUS` would kill).
//!
//! The in-memory tests also run under Miri (sockets, no files).

mod common;

use std::io::{Read, Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::thread;

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
    // SAFETY: `pipe2` succeeded, so both descriptors are open and owned by
    // nothing else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    (r.into(), w.into())
}

/// A connected pair of stream sockets (Miri emulates these; it has no
/// `pipe2`).
fn socket_pair() -> (
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixStream,
) {
    std::os::unix::net::UnixStream::pair().unwrap()
}

#[test]
fn in_memory_descriptor_io_round_trips_through_a_socket() {
    let len = 3 * CHUNK + 5;
    let host = MmapRegion::in_memory(8 * CHUNK).unwrap();
    let view = host.region();
    let bytes = patterned(len);
    view.write_at(0, &bytes).unwrap();
    let (a, mut b) = socket_pair();
    let drain = thread::spawn(move || {
        let mut got = vec![0; len];
        b.read_exact(&mut got).unwrap();
        b.write_all(&got).unwrap();
        got
    });
    view.write_all_to_fd(0, len, &a).unwrap();
    // Straight back in, at another offset.
    view.read_exact_from_fd(CHUNK, len, &a).unwrap();
    assert_eq!(drain.join().unwrap(), bytes);
    let mut back = vec![0; len];
    view.read_at(CHUNK, &mut back).unwrap();
    assert_eq!(back, bytes);
    // One call each: a count between 1 and the length asked for.
    let (mut c, d) = socket_pair();
    c.write_all(b"abc").unwrap();
    let n = view.read_from_fd(10, 3, &d).unwrap();
    assert!((1..=3).contains(&n), "{n}");
    let mut got = [0u8; 3];
    view.read_at(10, &mut got[..n]).unwrap();
    assert_eq!(got[..n], b"abc"[..n]);
    let n = view.write_to_fd(10, n, &d).unwrap();
    assert!((1..=3).contains(&n), "{n}");
    let mut echoed = [0u8; 3];
    c.read_exact(&mut echoed[..n]).unwrap();
    assert_eq!(echoed[..n], b"abc"[..n]);
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

/// Whether nothing is waiting to be read on `s` (a non-blocking read).
fn nothing_pending(mut s: &std::os::unix::net::UnixStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let empty = matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    empty
}

#[test]
fn descriptor_io_and_for_each_chunk_bounds_are_exactly_those_of_read_at() {
    let len = 2 * CHUNK;
    let host = MmapRegion::in_memory(len).unwrap();
    let view = host.region();
    assert_eq!(view.len(), len);
    let (a, b) = socket_pair();
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
    // Nothing reached the peer; nothing was read from it either.
    assert!(nothing_pending(&b));
    // The edges that fit: every byte, and empty ranges at both ends.
    let mut c = b.try_clone().unwrap();
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
    // The last byte as it was (0), then as read in.
    assert_eq!(got, [0, b'q']);
    assert!(nothing_pending(&b));
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
