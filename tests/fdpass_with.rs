//! `fdpass::send_with` / `recv_with`: bytes and several descriptors in one
//! message, as any `SCM_RIGHTS` sender speaks, and every received descriptor
//! closed when a message is refused.
#![cfg(all(target_os = "linux", not(miri)))]

mod common;

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use shm_region::{fdpass, ErrorKind};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A temporary file holding `bytes`, read back from offset 0 by `contents`.
fn file_with(bytes: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    f
}

fn contents(fd: OwnedFd) -> Vec<u8> {
    let mut f = std::fs::File::from(fd);
    f.rewind().unwrap();
    let mut all = Vec::new();
    f.read_to_end(&mut all).unwrap();
    all
}

fn is_cloexec(fd: &OwnedFd) -> bool {
    rustix::io::fcntl_getfd(fd)
        .unwrap()
        .contains(rustix::io::FdFlags::CLOEXEC)
}

#[test]
fn recv_with_gets_the_bytes_and_every_descriptor_in_order_all_close_on_exec() {
    let (tx, rx) = UnixStream::pair().unwrap();
    let files = [
        file_with(b"first"),
        file_with(b"second"),
        file_with(b"third"),
    ];
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(AsFd::as_fd).collect();
    assert_eq!(fdpass::send_with(&tx, b"frame 7", &fds).unwrap(), 7);
    let mut buf = [0u8; 64];
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 3).unwrap();
    assert_eq!(&buf[..n], b"frame 7");
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(is_cloexec));
    let bodies: Vec<Vec<u8>> = got.into_iter().map(contents).collect();
    assert_eq!(
        bodies,
        [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );
}

#[test]
fn recv_with_gets_plain_bytes_and_the_end_of_the_stream() {
    let (tx, rx) = UnixStream::pair().unwrap();
    assert_eq!(fdpass::send_with(&tx, b"no fds", &[]).unwrap(), 6);
    let mut buf = [0u8; 16];
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 4).unwrap();
    assert_eq!((&buf[..n], got.len()), (&b"no fds"[..], 0));
    drop(tx);
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 4).unwrap();
    assert_eq!((n, got.len()), (0, 0));
}

#[test]
fn send_with_refuses_descriptors_without_a_byte_to_carry_them() {
    let (tx, rx) = UnixStream::pair().unwrap();
    let f = file_with(b"x");
    let err = fdpass::send_with(&tx, b"", &[f.as_fd()]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("at least one byte"), "{err}");
    // Nothing was sent: the next message is the first one received.
    fdpass::send_with(&tx, b"a", &[f.as_fd()]).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4];
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 1).unwrap();
    assert_eq!((&buf[..n], got.len()), (&b"a"[..], 1));
}

#[test]
fn a_stream_message_longer_than_the_buffer_leaves_its_rest_queued() {
    let (tx, rx) = UnixStream::pair().unwrap();
    let f = file_with(b"pool");
    fdpass::send_with(&tx, b"0123456789", &[f.as_fd()]).unwrap();
    let mut buf = [0u8; 4];
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 1).unwrap();
    assert_eq!((&buf[..n], got.len()), (&b"0123"[..], 1));
    let mut rest = [0u8; 16];
    let (n, got) = fdpass::recv_with(&rx, &mut rest, 1).unwrap();
    assert_eq!((&rest[..n], got.len()), (&b"456789"[..], 0));
}

/// The refusals, in a process of their own so that the descriptor count of
/// `/proc/self/fd` is not disturbed by other tests' threads.
#[test]
fn recv_with_refuses_more_descriptors_than_asked_for_and_closes_every_one() {
    const NAME: &str = "recv_with_refuses_more_descriptors_than_asked_for_and_closes_every_one";
    if role().is_none() {
        run_self(NAME, "child");
        return;
    }
    let (tx, rx) = UnixStream::pair().unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let files: Vec<std::fs::File> = (0..5).map(|i| file_with(&[i])).collect();
    let all: Vec<BorrowedFd<'_>> = files.iter().map(AsFd::as_fd).collect();
    // (descriptors sent, max_fds, message)
    let cases = [
        (
            1,
            0,
            "message carried 1 descriptors, more than the 0 asked for (all closed)",
        ),
        (
            2,
            1,
            "message carried 2 descriptors, more than the 1 asked for (all closed)",
        ),
        (
            4,
            3,
            "message carried 4 descriptors, more than the 3 asked for (all closed)",
        ),
        (
            5,
            2,
            "message carried 5 descriptors, more than the 2 asked for (all closed)",
        ),
    ];
    for (sent, max, message) in cases {
        let before = open_fds();
        fdpass::send_with(&tx, b"hdr", &all[..sent]).unwrap();
        let mut buf = [0u8; 8];
        let err = fdpass::recv_with(&rx, &mut buf, max).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExtraDescriptors, "{sent} > {max}");
        assert_eq!(err.to_string(), format!("fdpass::recv_with: {message}"));
        assert_eq!(
            open_fds(),
            before,
            "{sent} sent, {max} asked for: a descriptor leaked"
        );
    }
    // Room is made for max_fds + 1 descriptors (rounded up to the control
    // message's alignment): 40 of them overflow it, the kernel cuts the
    // control message (MSG_CTRUNC) and closes those that did not fit, and
    // recv_with closes the rest.
    let many: Vec<BorrowedFd<'_>> = (0..40).map(|i| all[i % 5]).collect();
    let before = open_fds();
    fdpass::send_with(&tx, b"hdr", &many).unwrap();
    let mut buf = [0u8; 8];
    let err = fdpass::recv_with(&rx, &mut buf, 2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExtraDescriptors);
    let text = err.to_string();
    let fitted: usize = text
        .strip_prefix("fdpass::recv_with: message carried more than ")
        .and_then(|t| {
            t.strip_suffix(
                " descriptors (control message truncated), more than the 2 asked for (all closed)",
            )
        })
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert!((3..40).contains(&fitted), "{fitted} fitted");
    assert_eq!(
        open_fds(),
        before,
        "a descriptor of a truncated message leaked"
    );
    // The stream is still usable, and exactly max_fds is accepted.
    let before = open_fds();
    fdpass::send_with(&tx, b"ok", &all[..4]).unwrap();
    let mut buf = [0u8; 8];
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 4).unwrap();
    assert_eq!((&buf[..n], got.len()), (&b"ok"[..], 4));
    assert_eq!(open_fds(), before + 4);
    drop(got);
    assert_eq!(open_fds(), before);
}

#[test]
fn recv_with_refuses_a_seqpacket_message_cut_short_and_closes_its_descriptors() {
    const NAME: &str = "recv_with_refuses_a_seqpacket_message_cut_short_and_closes_its_descriptors";
    if role().is_none() {
        run_self(NAME, "child");
        return;
    }
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let (tx, rx) = (UnixStream::from(a), UnixStream::from(b));
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let files = [file_with(b"a"), file_with(b"b")];
    let before = open_fds();
    fdpass::send_with(&tx, b"0123456789", &[files[0].as_fd(), files[1].as_fd()]).unwrap();
    let mut buf = [0u8; 4];
    let err = fdpass::recv_with(&rx, &mut buf, 2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MessageTruncated);
    assert_eq!(
        err.to_string(),
        "fdpass::recv_with: message was longer than the 4-byte buffer and was cut (its descriptors were closed)"
    );
    assert_eq!(open_fds(), before);
    // A message that fits is received whole.
    fdpass::send_with(&tx, b"0123", &[files[1].as_fd()]).unwrap();
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 2).unwrap();
    assert_eq!((&buf[..n], got.len()), (&b"0123"[..], 1));
    assert_eq!(contents(got.into_iter().next().unwrap()), b"b");
}

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn recv_with_interrupted_by_a_signal_keeps_waiting_for_the_message() {
    const NAME: &str = "recv_with_interrupted_by_a_signal_keeps_waiting_for_the_message";
    if role().is_none() {
        // Its own process: the handler is process-wide.
        run_self(NAME, "child");
        return;
    }
    // SAFETY: an all-zero `sigaction` is a valid value of the C struct (no
    // flags, so no SA_RESTART: a blocked recvmsg fails with EINTR).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `action.sa_mask` is a valid, writable `sigset_t`.
    assert_eq!(unsafe { libc::sigemptyset(&mut action.sa_mask) }, 0);
    // SAFETY: `action` is initialised; the handler only increments an
    // atomic (async-signal-safe); this process runs this test only.
    let rc = unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0);

    let (tx, rx) = UnixStream::pair().unwrap();
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        let (n, fds) = fdpass::recv_with(&rx, &mut buf, 1).map_err(|e| e.to_string())?;
        Ok::<_, String>((buf[..n].to_vec(), fds.len()))
    });
    use std::os::unix::thread::JoinHandleExt;
    for i in 1..=5 {
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: the thread has not been joined (we hold its handle), so
        // its `pthread_t` is valid; SIGUSR1 has a handler installed.
        let rc = unsafe { libc::pthread_kill(receiver.as_pthread_t(), libc::SIGUSR1) };
        assert_eq!(rc, 0);
        // One at a time, so that no two signals merge while pending.
        wait_until(Duration::from_secs(5), "the signal to be handled", || {
            HANDLED.load(Ordering::SeqCst) == i
        });
    }
    assert!(!receiver.is_finished(), "a signal ended recv_with");
    let f = file_with(b"late");
    fdpass::send_with(&tx, b"late", &[f.as_fd()]).unwrap();
    assert_eq!(receiver.join().unwrap(), Ok((b"late".to_vec(), 1)));
}

#[test]
fn send_with_passes_253_descriptors_and_refuses_more_as_linux_and_the_crate_do() {
    const NAME: &str =
        "send_with_passes_253_descriptors_and_refuses_more_as_linux_and_the_crate_do";
    if role().is_none() {
        // Hundreds of descriptors at once: a process of its own.
        run_self(NAME, "child");
        return;
    }
    let (tx, rx) = UnixStream::pair().unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let f = file_with(b"many");
    let before = open_fds();
    // Linux's SCM_MAX_FD: 253 in one message.
    let most = vec![f.as_fd(); 253];
    fdpass::send_with(&tx, b"m", &most).unwrap();
    let mut buf = [0u8; 4];
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 253).unwrap();
    assert_eq!((n, got.len()), (1, 253));
    drop(got);
    assert_eq!(open_fds(), before);
    // 254: the kernel refuses (EINVAL), nothing is sent.
    let err = fdpass::send_with(&tx, b"m", &vec![f.as_fd(); 254]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    // Past MAX_FDS_PER_MESSAGE: refused before any system call.
    let over = vec![f.as_fd(); fdpass::MAX_FDS_PER_MESSAGE + 1];
    let err = fdpass::send_with(&tx, b"m", &over).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "fdpass::send_with: 1025 descriptors, more than 1024 in one message"
    );
    // Nothing of the refused messages arrived.
    fdpass::send_with(&tx, b"z", &[]).unwrap();
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 0).unwrap();
    assert_eq!((&buf[..n], got.len()), (&b"z"[..], 0));
}

/// A receiver with `SO_PASSCRED` set gets an `SCM_CREDENTIALS` message with
/// every message: it must not crowd out the descriptors asked for (found by
/// the `recv_with` fuzz target: 64 descriptors with `max_fds` 65 were
/// refused as `ExtraDescriptors`, and with `max_fds` 0 every message was).
#[test]
fn recv_with_on_a_socket_passing_credentials_takes_up_to_max_fds_descriptors() {
    let f = file_with(b"cred");
    for (sent, max_fds) in [(0, 0), (1, 1), (2, 2), (8, 8), (64, 65), (253, 253)] {
        let (tx, rx) = UnixStream::pair().unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        rustix::net::sockopt::set_socket_passcred(&rx, true).unwrap();
        let fds = vec![f.as_fd(); sent];
        assert_eq!(fdpass::send_with(&tx, b"x", &fds).unwrap(), 1);
        let mut buf = [0u8; 4];
        let (n, got) = fdpass::recv_with(&rx, &mut buf, max_fds)
            .unwrap_or_else(|e| panic!("{sent} fds, max_fds {max_fds}: {e}"));
        assert_eq!(
            (&buf[..n], got.len()),
            (&b"x"[..], sent),
            "max_fds {max_fds}"
        );
    }
    // One more than asked for is still refused.
    let (tx, rx) = UnixStream::pair().unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    rustix::net::sockopt::set_socket_passcred(&rx, true).unwrap();
    fdpass::send_with(&tx, b"x", &[f.as_fd(), f.as_fd()]).unwrap();
    let err = fdpass::recv_with(&rx, &mut [0u8; 4], 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExtraDescriptors, "{err}");
}
