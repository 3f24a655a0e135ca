//! `fdpass::send_with` / `recv_with`: bytes and several descriptors in one
//! message, as any `SCM_RIGHTS` sender speaks, and every received descriptor
//! closed when a message is refused.
#![cfg(all(target_os = "linux", not(miri)))]
#![cfg(unix)]

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
fn recv_with_refuses_an_empty_buffer_and_leaves_the_message_queued() {
    // A read into an empty buffer would return (0, []), which on a stream
    // is the end of the stream, while a message (here with a descriptor)
    // is still queued.
    let (tx, rx) = UnixStream::pair().unwrap();
    let file = file_with(b"queued");
    assert_eq!(fdpass::send_with(&tx, b"msg", &[file.as_fd()]).unwrap(), 3);
    let e = fdpass::recv_with(&rx, &mut [], 4).unwrap_err();
    assert_eq!(
        (e.kind(), std::io::Error::from(e.clone()).kind()),
        (ErrorKind::InvalidSize, std::io::ErrorKind::InvalidInput)
    );
    assert_eq!(
        e.to_string(),
        "fdpass::recv_with: an empty buffer cannot receive a message: a read into it returns 0, the end of a stream"
    );
    // Nothing was consumed: the message and its descriptor come next.
    let mut buf = [0u8; 8];
    let (n, mut got) = fdpass::recv_with(&rx, &mut buf, 4).unwrap();
    assert_eq!((&buf[..n], got.len()), (&b"msg"[..], 1));
    assert_eq!(contents(got.pop().unwrap()), b"queued");
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
    // Room is made for max_fds + 1 descriptors and for what the kernel may
    // add (credentials, a pidfd, a security label: 86 descriptors' worth
    // for max_fds 2 on 64-bit Linux): 200 of them overflow it, the kernel
    // cuts the control message (MSG_CTRUNC) and closes those that did not
    // fit, and recv_with closes the rest.
    let many: Vec<BorrowedFd<'_>> = (0..200).map(|i| all[i % 5]).collect();
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
    assert!((3..200).contains(&fitted), "{fitted} fitted");
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

/// Installs `count_signal` for SIGUSR1 with `flags`.
fn handle_sigusr1(flags: libc::c_int) {
    // SAFETY: an all-zero `sigaction` is a valid value of the C struct.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = flags;
    // SAFETY: `action.sa_mask` is a valid, writable `sigset_t`.
    assert_eq!(unsafe { libc::sigemptyset(&mut action.sa_mask) }, 0);
    // SAFETY: `action` is initialised; the handler only increments an
    // atomic (async-signal-safe); the calling process runs one test only.
    let rc = unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}

/// Sends SIGUSR1 to `thread` every `every` until it finishes or `limit`
/// has passed; returns how many were sent.
fn signal_until_finished<T>(
    thread: &std::thread::JoinHandle<T>,
    every: Duration,
    limit: Duration,
) -> usize {
    use std::os::unix::thread::JoinHandleExt;
    let start = std::time::Instant::now();
    let mut sent = 0;
    while !thread.is_finished() && start.elapsed() < limit {
        std::thread::sleep(every);
        if !thread.is_finished() {
            // SAFETY: the thread has not been joined (we hold its handle),
            // so its `pthread_t` is valid; SIGUSR1 has a handler.
            let rc = unsafe { libc::pthread_kill(thread.as_pthread_t(), libc::SIGUSR1) };
            assert_eq!(rc, 0);
            sent += 1;
        }
    }
    sent
}

/// Fills `tx`'s socket buffer (nothing is read at the other end).
fn fill(tx: &UnixStream) {
    tx.set_nonblocking(true).unwrap();
    let chunk = [7u8; 4096];
    loop {
        match (&*tx).write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    tx.set_nonblocking(false).unwrap();
}

#[test]
fn recv_with_under_periodic_signals_returns_within_twice_its_read_timeout() {
    const NAME: &str = "recv_with_under_periodic_signals_returns_within_twice_its_read_timeout";
    if role().is_none() {
        run_self(NAME, "child");
        return;
    }
    // SA_RESTART: Linux still fails a recvmsg with a timeout set with EINTR.
    handle_sigusr1(libc::SA_RESTART);
    let (_tx, rx) = UnixStream::pair().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let start = std::time::Instant::now();
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 4];
        let r = fdpass::recv_with(&rx, &mut buf, 1).map(|(n, fds)| (n, fds.len()));
        (r.map_err(|e| (e.kind(), e.raw_os_error())), start.elapsed())
    });
    // A signal every 100 ms, for 5 s at most.
    let sent = signal_until_finished(
        &receiver,
        Duration::from_millis(100),
        Duration::from_secs(5),
    );
    let (result, took) = receiver.join().unwrap();
    assert_eq!(result, Err((ErrorKind::Os, Some(libc::EAGAIN))));
    assert!(sent >= 2, "{sent} signals");
    // Bound: each retry waits at most the timeout, and none starts after it.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(600 + 400), "{took:?}");
}

#[test]
fn send_with_under_periodic_signals_returns_within_twice_its_write_timeout() {
    const NAME: &str = "send_with_under_periodic_signals_returns_within_twice_its_write_timeout";
    if role().is_none() {
        run_self(NAME, "child");
        return;
    }
    handle_sigusr1(libc::SA_RESTART);
    let (tx, _rx) = UnixStream::pair().unwrap();
    fill(&tx);
    tx.set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let f = file_with(b"x");
    let start = std::time::Instant::now();
    let sender = std::thread::spawn(move || {
        let r = fdpass::send_with(&tx, b"m", &[f.as_fd()]).map_err(|e| e.raw_os_error());
        (r, start.elapsed())
    });
    let sent = signal_until_finished(&sender, Duration::from_millis(100), Duration::from_secs(5));
    let (result, took) = sender.join().unwrap();
    assert_eq!(result, Err(Some(libc::EAGAIN)));
    assert!(sent >= 2, "{sent} signals");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(600 + 400), "{took:?}");
}

#[test]
fn send_with_interrupted_by_a_signal_keeps_waiting_for_room() {
    const NAME: &str = "send_with_interrupted_by_a_signal_keeps_waiting_for_room";
    if role().is_none() {
        run_self(NAME, "child");
        return;
    }
    // No SA_RESTART: a blocked sendmsg fails with EINTR at each signal.
    handle_sigusr1(0);
    let (tx, rx) = UnixStream::pair().unwrap();
    fill(&tx);
    let f = file_with(b"x");
    let sender = std::thread::spawn(move || {
        fdpass::send_with(&tx, b"m", &[f.as_fd()]).map_err(|e| e.to_string())
    });
    let sent = signal_until_finished(
        &sender,
        Duration::from_millis(20),
        Duration::from_millis(300),
    );
    assert!(sent >= 5, "{sent} signals");
    assert!(HANDLED.load(Ordering::SeqCst) >= 5);
    assert!(!sender.is_finished(), "a signal ended send_with");
    // Make room: read everything queued, the message last.
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut fds = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while fds.is_empty() {
        let (n, got) = fdpass::recv_with(&rx, &mut buf, 1).unwrap();
        assert!(n > 0);
        fds.extend(got);
    }
    assert_eq!(sender.join().unwrap(), Ok(1));
    assert_eq!(contents(fds.pop().unwrap()), b"x");
}

#[test]
fn recv_with_receives_descriptors_on_a_socket_with_so_passcred() {
    let f = file_with(b"pool");
    for max in [1usize, 4] {
        let (tx, rx) = UnixStream::pair().unwrap();
        rustix::net::sockopt::set_socket_passcred(&rx, true).unwrap();
        fdpass::send_with(&tx, b"m", &[f.as_fd()]).unwrap();
        let mut buf = [0u8; 8];
        let (n, got) = fdpass::recv_with(&rx, &mut buf, max).unwrap();
        assert_eq!((&buf[..n], got.len()), (&b"m"[..], 1), "max_fds {max}");
        assert_eq!(contents(got.into_iter().next().unwrap()), b"pool");
    }
}

#[test]
fn recv_with_closes_the_pidfd_the_kernel_adds_for_so_passpidfd() {
    const NAME: &str = "recv_with_closes_the_pidfd_the_kernel_adds_for_so_passpidfd";
    if role().is_none() {
        // Counts this process's descriptors: a process of its own.
        run_self(NAME, "child");
        return;
    }
    use std::os::fd::AsRawFd;
    const SO_PASSPIDFD: libc::c_int = 76; // Linux 6.5, asm-generic/socket.h
    let f = file_with(b"pool");
    for max in [1usize, 4] {
        let (tx, rx) = UnixStream::pair().unwrap();
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int of the length given, for the call.
        let rc = unsafe {
            libc::setsockopt(
                rx.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PASSPIDFD,
                std::ptr::from_ref(&one).cast(),
                4,
            )
        };
        assert_eq!(
            rc,
            0,
            "SO_PASSPIDFD (Linux 6.5+): {}",
            std::io::Error::last_os_error()
        );
        let before = open_fds();
        let mut buf = [0u8; 8];
        fdpass::send_with(&tx, b"m", &[f.as_fd()]).unwrap();
        let (n, got) = fdpass::recv_with(&rx, &mut buf, max).unwrap();
        assert_eq!((&buf[..n], got.len()), (&b"m"[..], 1), "max_fds {max}");
        assert_eq!(open_fds(), before + 1);
        drop(got);
        assert_eq!(open_fds(), before);
        for _ in 0..20 {
            fdpass::send_with(&tx, b"n", &[]).unwrap();
            let (n, got) = fdpass::recv_with(&rx, &mut buf, max).unwrap();
            assert_eq!((&buf[..n], got.len()), (&b"n"[..], 0));
        }
        assert_eq!(open_fds(), before, "max_fds {max}");
    }
}

#[test]
fn recv_with_reports_the_descriptor_limit_when_the_kernel_installs_fewer() {
    const NAME: &str = "recv_with_reports_the_descriptor_limit_when_the_kernel_installs_fewer";
    match role().as_deref() {
        // Each case lowers RLIMIT_NOFILE: a process of its own. Three
        // descriptors sent each time; the kernel installs as many as there
        // are free numbers, fewer than `max_fds` or exactly `max_fds`.
        None => {
            run_self(NAME, "fewer");
            run_self(NAME, "exactly");
        }
        Some("fewer") => emfile_case(4, 1),
        Some("exactly") => emfile_case(2, 2),
        Some(other) => panic!("unknown role {other}"),
    }
}

/// Sends three descriptors, leaves `free` descriptor numbers under
/// `RLIMIT_NOFILE`, and receives with `max_fds`: the kernel installs `free`
/// of them and stops, which is `EMFILE` however `free` compares with
/// `max_fds`, with every received descriptor closed.
fn emfile_case(max_fds: usize, free: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    use std::os::fd::AsRawFd;
    let (tx, rx) = UnixStream::pair().unwrap();
    let files: Vec<_> = (0..3).map(|_| file_with(b"f")).collect();
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(AsFd::as_fd).collect();
    fdpass::send_with(&tx, b"hdr", &fds).unwrap();
    // Fill every free number up to 40; then a limit of 41 + free leaves
    // exactly `free` free descriptor numbers (41 and up).
    let mut keep = Vec::new();
    loop {
        let d = rustix::io::dup(files[0].as_fd()).unwrap();
        let raw = d.as_raw_fd();
        keep.push(d);
        if raw >= 40 {
            assert_eq!(raw, 40, "descriptors above 40 already open");
            break;
        }
    }
    let limit = 41 + free;
    let old = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(u64::try_from(limit).unwrap()),
            maximum: old.maximum,
        },
    )
    .unwrap();
    let before = open_fds();
    let mut buf = [0u8; 8];
    let err = fdpass::recv_with(&rx, &mut buf, max_fds).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Os);
    assert_eq!(err.raw_os_error(), Some(libc::EMFILE));
    assert_eq!(
        err.to_string(),
        format!(
            "fdpass::recv_with: the kernel installed only {free} of the message's descriptors and closed the rest, with room for more in the buffer: no free descriptor under the limit (RLIMIT_NOFILE {limit}), or a security module refused one (all received closed) ({})",
            std::io::Error::from_raw_os_error(libc::EMFILE)
        )
    );
    assert_eq!(open_fds(), before);
}

#[test]
fn recv_with_on_seqpacket_returns_empty_messages_and_their_descriptors() {
    use rustix::net::{
        sendmsg, socketpair, AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
        SocketFlags, SocketType,
    };
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let (tx, rx) = (UnixStream::from(a), UnixStream::from(b));
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let f = file_with(b"carried");
    let fds = [f.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
    // An empty message with a descriptor, an empty message, then bytes.
    assert_eq!(
        sendmsg(&tx, &[], &mut control, SendFlags::empty()).unwrap(),
        0
    );
    let mut none = SendAncillaryBuffer::default();
    assert_eq!(sendmsg(&tx, &[], &mut none, SendFlags::empty()).unwrap(), 0);
    fdpass::send_with(&tx, b"still here", &[]).unwrap();
    let mut buf = [0u8; 16];
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 1).unwrap();
    assert_eq!((n, got.len()), (0, 1));
    assert_eq!(contents(got.into_iter().next().unwrap()), b"carried");
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 1).unwrap();
    assert_eq!((n, got.len()), (0, 0));
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 1).unwrap();
    assert_eq!((&buf[..n], got.len()), (&b"still here"[..], 0));
}

#[test]
fn recv_refuses_a_seqpacket_message_cut_short_and_closes_its_descriptor() {
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
    let f = file_with(b"x");
    fdpass::send_with(&tx, b"two", &[f.as_fd()]).unwrap();
    let err = fdpass::recv(&rx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MessageTruncated);
    assert_eq!(
        err.to_string(),
        "fdpass::recv: message was longer than the 1-byte buffer and was cut (its descriptors were closed)"
    );
    // The descriptor was closed: only `f` still refers to the file.
    assert_eq!(rustix::fs::fstat(&f).unwrap().st_nlink, 0);
    let procs = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| {
            t == &std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&f)
            ))
            .unwrap()
        })
        .count();
    assert_eq!(procs, 1);
}

#[test]
fn send_with_to_a_closed_peer_fails_with_broken_pipe_and_raises_no_sigpipe() {
    const NAME: &str = "send_with_to_a_closed_peer_fails_with_broken_pipe_and_raises_no_sigpipe";
    if role().is_none() {
        run_self(NAME, "child");
        return;
    }
    // What a C host has (Rust's runtime ignores SIGPIPE): the default,
    // which kills the process.
    // SAFETY: SIG_DFL is a valid disposition for SIGPIPE.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(old, libc::SIG_ERR);
    let (tx, rx) = UnixStream::pair().unwrap();
    drop(rx);
    let f = file_with(b"x");
    let err = fdpass::send_with(&tx, b"m", &[f.as_fd()]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    let err = fdpass::send(&tx, f.as_fd()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn recv_with_takes_max_fds_usize_max() {
    let (tx, rx) = UnixStream::pair().unwrap();
    let f = file_with(b"x");
    fdpass::send_with(&tx, b"m", &[f.as_fd(), f.as_fd()]).unwrap();
    let mut buf = [0u8; 4];
    let (n, got) = fdpass::recv_with(&rx, &mut buf, usize::MAX).unwrap();
    assert_eq!((n, got.len()), (1, 2));
}

#[test]
fn send_with_sends_the_descriptors_once_when_it_sends_only_part_of_the_bytes() {
    let (tx, rx) = UnixStream::pair().unwrap();
    tx.set_nonblocking(true).unwrap();
    let f = file_with(b"once");
    let data = vec![5u8; 4 << 20];
    let sent = fdpass::send_with(&tx, &data, &[f.as_fd()]).unwrap();
    assert!(sent > 0 && sent < data.len(), "{sent}");
    let rest = data.len() - sent;
    let writer = std::thread::spawn(move || {
        tx.set_nonblocking(false).unwrap();
        (&tx).write_all(&data[sent..]).unwrap();
        drop(tx);
    });
    let mut fds = Vec::new();
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let (n, got) = fdpass::recv_with(&rx, &mut buf, 4).unwrap();
        fds.extend(got);
        if n == 0 {
            break;
        }
        total += n;
    }
    writer.join().unwrap();
    assert_eq!(total, sent + rest);
    assert_eq!(fds.len(), 1);
    assert_eq!(contents(fds.pop().unwrap()), b"once");
}

#[test]
fn recv_with_on_a_stream_returns_earlier_bytes_with_the_next_messages_descriptors() {
    let (tx, rx) = UnixStream::pair().unwrap();
    let f = file_with(b"second's");
    fdpass::send_with(&tx, b"first,", &[]).unwrap();
    fdpass::send_with(&tx, b"second", &[f.as_fd()]).unwrap();
    fdpass::send_with(&tx, b",third", &[]).unwrap();
    let mut buf = [0u8; 64];
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 1).unwrap();
    // The descriptor came with "second"'s first byte, after "first,".
    assert_eq!((&buf[..n], got.len()), (&b"first,second"[..], 1));
    assert_eq!(contents(got.into_iter().next().unwrap()), b"second's");
    let (n, got) = fdpass::recv_with(&rx, &mut buf, 1).unwrap();
    assert_eq!((&buf[..n], got.len()), (&b",third"[..], 0));
}
