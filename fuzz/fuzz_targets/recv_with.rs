//! `fdpass::recv_with` against a hostile sender: one raw `sendmsg` per
//! iteration, built from the input (any number of bytes, including none;
//! several `SCM_RIGHTS` messages of up to ~300 descriptors in all, of every
//! kind: pipe ends, memfds, `/dev/null`, `/dev/zero`, sockets, `O_PATH`
//! directories, regular files; `SCM_CREDENTIALS`), over a stream or a
//! `SOCK_SEQPACKET` pair, received with any buffer size and `max_fds`, with
//! or without `SO_PASSCRED` on the receiver.
//!
//! Asserted, for every input:
//! - no descriptor leaks: `/proc/self/fd` counts the same before and after
//!   the iteration;
//! - every descriptor returned is close-on-exec, there are at most `max_fds`
//!   of them, and they are the ones sent, in order (device and inode);
//! - the bytes returned are the bytes sent (a stream may split them, a
//!   seqpacket message arrives whole);
//! - errors are the documented kinds (`ExtraDescriptors`,
//!   `MessageTruncated`, `Os`), and each arises exactly when the documented
//!   rule says: more than `max_fds` descriptors, a seqpacket message longer
//!   than the buffer, nothing queued (`EAGAIN`, the receiver is
//!   nonblocking).
#![no_main]

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rustix::fs::{Mode, OFlags, CWD};
use rustix::net::{
    socketpair, AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags,
    SocketType, UCred,
};
use shm_region::{fdpass, ErrorKind};

/// Linux's `SCM_MAX_FD`: the most descriptors one message may carry.
const SCM_MAX_FD: usize = 253;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PipeRead,
    PipeWrite,
    Memfd,
    DevNull,
    DevZero,
    Socket,
    DirectoryPath,
    RegularFile,
}

fn index(k: Kind) -> usize {
    match k {
        Kind::PipeRead => 0,
        Kind::PipeWrite => 1,
        Kind::Memfd => 2,
        Kind::DevNull => 3,
        Kind::DevZero => 4,
        Kind::Socket => 5,
        Kind::DirectoryPath => 6,
        Kind::RegularFile => 7,
    }
}

/// One `SCM_RIGHTS` control message: `count % 301` descriptors, cycling
/// through `pattern`.
#[derive(Arbitrary, Debug)]
struct Rights {
    pattern: Vec<Kind>,
    count: u16,
}

#[derive(Arbitrary, Debug)]
struct Input {
    seqpacket: bool,
    /// `SO_PASSCRED` on the receiving end.
    passcred: bool,
    /// `data_len % 4097` bytes.
    data_len: u16,
    data_seed: u8,
    /// At most four `SCM_RIGHTS` messages in the one `sendmsg`.
    rights: Vec<Rights>,
    /// An `SCM_CREDENTIALS` message (this process's own), before or after
    /// the rights.
    creds: Option<bool>,
    /// The receiver's buffer: `buf_len % 4200` bytes.
    buf_len: u16,
    /// The receiver's `max_fds`: `max_fds % 310`, or huge.
    max_fds: u16,
    huge_max: bool,
    /// Shut the sender down after sending (the receiver then also sees the
    /// end of the stream).
    shutdown: bool,
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// One descriptor of every kind (their peers are kept alive in `keep`).
fn kinds(keep: &mut Vec<OwnedFd>) -> Vec<OwnedFd> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let memfd = rustix::fs::memfd_create("recv_with", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&memfd, 4096).unwrap();
    let open = |p: &str, f: OFlags| rustix::fs::openat(CWD, p, f | OFlags::CLOEXEC, Mode::empty());
    let null = open("/dev/null", OFlags::RDWR).unwrap();
    let zero = open("/dev/zero", OFlags::RDONLY).unwrap();
    let (s, peer) = socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    keep.push(peer);
    let dir = open("/tmp", OFlags::PATH | OFlags::DIRECTORY).unwrap();
    let file = OwnedFd::from(tempfile::tempfile().unwrap());
    vec![r, w, memfd, null, zero, s, dir, file]
}

fn identity(fd: impl AsFd) -> (u64, u64) {
    let st = rustix::fs::fstat(fd).unwrap();
    (st.st_dev, st.st_ino)
}

fn is_cloexec(fd: &OwnedFd) -> bool {
    rustix::io::fcntl_getfd(fd)
        .unwrap()
        .contains(rustix::io::FdFlags::CLOEXEC)
}

fn iteration(input: &Input) {
    let ty = if input.seqpacket {
        SocketType::SEQPACKET
    } else {
        SocketType::STREAM
    };
    let (a, b) = socketpair(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None).unwrap();
    let (tx, rx) = (UnixStream::from(a), UnixStream::from(b));
    // Nothing queued must not block the fuzzer: EAGAIN instead.
    rx.set_nonblocking(true).unwrap();
    if input.passcred {
        rustix::net::sockopt::set_socket_passcred(&rx, true).unwrap();
    }

    let mut keep = Vec::new();
    let objects = kinds(&mut keep);
    let groups: Vec<Vec<BorrowedFd<'_>>> = input
        .rights
        .iter()
        .take(4)
        .map(|r| {
            let count = usize::from(r.count % 301);
            if r.pattern.is_empty() {
                return Vec::new();
            }
            (0..count)
                .map(|i| objects[index(r.pattern[i % r.pattern.len()])].as_fd())
                .collect()
        })
        .collect();
    let sent_ids: Vec<(u64, u64)> = groups.iter().flatten().map(|fd| identity(fd)).collect();
    let data: Vec<u8> = (0..usize::from(input.data_len % 4097))
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(input.data_seed))
        .collect();

    // The raw message: what the crate's own sender would never build.
    let ucred = UCred {
        pid: rustix::process::getpid(),
        uid: rustix::process::getuid(),
        gid: rustix::process::getgid(),
    };
    let mut space_len = groups
        .iter()
        .map(|g| rustix::cmsg_space!(ScmRights(g.len())))
        .sum::<usize>();
    if input.creds.is_some() {
        space_len += rustix::cmsg_space!(ScmCredentials(1));
    }
    let mut space = vec![MaybeUninit::uninit(); space_len];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if input.creds == Some(true) {
        assert!(control.push(SendAncillaryMessage::ScmCredentials(ucred)));
    }
    for g in &groups {
        assert!(control.push(SendAncillaryMessage::ScmRights(g)));
    }
    if input.creds == Some(false) {
        assert!(control.push(SendAncillaryMessage::ScmCredentials(ucred)));
    }
    let sent = rustix::net::sendmsg(
        &tx,
        &[IoSlice::new(&data)],
        &mut control,
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
    );
    drop(control);
    let total_fds = sent_ids.len();
    let sent_bytes = match sent {
        Ok(n) => {
            assert!(
                total_fds <= SCM_MAX_FD,
                "kernel took {total_fds} descriptors"
            );
            assert_eq!(n, data.len(), "a short send into an empty socket");
            Some(n)
        }
        Err(e) => {
            assert!(
                total_fds > SCM_MAX_FD,
                "sendmsg failed: {e:?} with {total_fds} fds"
            );
            None
        }
    };
    // A stream carries nothing for a send of no bytes, descriptors or not.
    let queued = match sent_bytes {
        Some(0) => input.seqpacket,
        Some(_) => true,
        None => false,
    };
    let carried_fds = if queued { total_fds } else { 0 };
    if input.shutdown {
        tx.shutdown(std::net::Shutdown::Write).unwrap();
    }

    let buf_len = usize::from(input.buf_len % 4200);
    let max_fds = if input.huge_max {
        usize::MAX
    } else {
        usize::from(input.max_fds % 310)
    };
    let mut buf = vec![0xEEu8; buf_len];
    let first = fdpass::recv_with(&rx, &mut buf, max_fds);
    let expected_eof = input.shutdown && !queued;
    match &first {
        Ok((n, fds)) => {
            // An empty buffer is refused before any read.
            assert!(buf_len > 0, "an empty buffer was read into");
            assert!(*n <= buf_len);
            assert!(
                fds.len() <= max_fds,
                "{} fds > max_fds {max_fds}",
                fds.len()
            );
            assert!(fds.iter().all(is_cloexec), "a descriptor without CLOEXEC");
            let ids: Vec<(u64, u64)> = fds.iter().map(identity).collect();
            if !queued {
                assert!(expected_eof, "Ok from an empty nonblocking socket");
                assert_eq!((*n, fds.len()), (0, 0));
            } else {
                assert_eq!(ids, sent_ids, "not the descriptors sent, in order");
                assert_eq!(&buf[..*n], &data[..*n], "not the bytes sent");
                if input.seqpacket {
                    assert_eq!(*n, data.len(), "a seqpacket message cut without an error");
                } else {
                    assert_eq!(*n, data.len().min(buf_len));
                }
                assert!(carried_fds <= max_fds);
            }
        }
        Err(e) => {
            let kind = e.kind();
            if buf_len == 0 {
                assert_eq!(kind, ErrorKind::InvalidSize, "{e}");
            } else if !queued {
                assert_eq!(kind, ErrorKind::Os, "{e}");
                assert!(!expected_eof, "EOF reported as {e}");
                assert_eq!(
                    e.raw_os_error(),
                    Some(rustix::io::Errno::AGAIN.raw_os_error()),
                    "{e}"
                );
            } else if carried_fds > max_fds {
                assert_eq!(kind, ErrorKind::ExtraDescriptors, "{e}");
            } else if input.seqpacket && data.len() > buf_len {
                assert_eq!(kind, ErrorKind::MessageTruncated, "{e}");
            } else {
                panic!(
                    "recv_with refused a message it should take: {e} ({carried_fds} fds, \
                     max_fds {max_fds}, {} bytes, buffer {buf_len}, passcred {})",
                    data.len(),
                    input.passcred
                );
            }
        }
    }
    // A stream keeps the rest of the bytes queued: they arrive in order
    // and with no descriptors.
    if let (Ok((n, _)), false, true) = (&first, input.seqpacket, queued) {
        let mut got = buf[..*n].to_vec();
        let mut more = vec![0u8; buf_len.max(1)];
        while got.len() < data.len() {
            let (m, fds) = fdpass::recv_with(&rx, &mut more, max_fds).unwrap();
            assert!(m > 0 && fds.is_empty());
            got.extend_from_slice(&more[..m]);
        }
        assert_eq!(got, data);
    }
    drop(first);
    drop((tx, rx, keep, objects));
}

fuzz_target!(|input: Input| {
    let before = open_fds();
    iteration(&input);
    assert_eq!(open_fds(), before, "descriptors leaked");
});
