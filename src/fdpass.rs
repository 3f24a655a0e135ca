//! Passing descriptors to another process over a Unix socket
//! (`SCM_RIGHTS`), for [`MmapRegion::attach_fd`](crate::MmapRegion::attach_fd).
//!
//! [`send`] and [`recv`] speak the crate's own message: one byte and one
//! descriptor. [`send_with`] and [`recv_with`] speak what any `SCM_RIGHTS`
//! sender speaks (Wayland, Python's `socket.send_fds`, C's `sendmsg`):
//! bytes and several descriptors in one message.
//!
//! The receiver trusts nothing the sender says: no more descriptors than
//! asked for may arrive (more is an error, and every received descriptor is
//! closed), every descriptor is close-on-exec from the moment it exists in
//! this process, and the size to map comes from `fstat` in `attach_fd`,
//! never from the message. [`recv`] also requires a regular file.
//!
//! [`peer_process`] names the process at the other end of a connected
//! socket as a [`PeerProcess`], a pidfd that polls readable when that
//! process exits (Linux), so that a server can watch its clients.
//!
//! ```
//! # #[cfg(miri)] fn main() {} // Miri cannot map files.
//! # #[cfg(not(miri))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::os::unix::net::UnixStream;
//! use shm_region::{fdpass, MmapRegion};
//!
//! let (host_end, guest_end) = UnixStream::pair()?;   // across processes in practice
//! let host = MmapRegion::create_sealed("example", 4096)?;
//! host.region().write_at(0, b"sent by fd")?;
//! fdpass::send(&host_end, host.fd().unwrap())?;
//!
//! let guest = MmapRegion::attach_fd(fdpass::recv(&guest_end)?)?;
//! assert!(guest.is_shrink_sealed());
//! let mut buf = [0u8; 10];
//! guest.region().read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"sent by fd");
//! # Ok(()) }
//! ```

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::net::sockopt::Timeout;
use rustix::net::{RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use crate::error::{Error, ErrorKind, Result};
use crate::sys::cmsg;

#[doc(hidden)]
pub use crate::peer::peer_process_without_peerpidfd;
pub use crate::peer::{peer_process, PeerProcess};

/// The most descriptors [`recv_with`] makes room for in one message, whatever
/// `max_fds` says (Linux passes at most 253, `SCM_MAX_FD`).
pub const MAX_FDS_PER_MESSAGE: usize = 1024;

/// Sends `fd` over `stream` as the only descriptor of a one-byte message.
///
/// # Errors
///
/// Whatever `sendmsg` reports (for example a closed peer:
/// [`std::io::ErrorKind::BrokenPipe`]); `SIGPIPE` is not raised where the
/// system has `MSG_NOSIGNAL` (Linux, Android, FreeBSD; tested on Linux, in
/// a process with `SIGPIPE` at its default disposition).
pub fn send(stream: &UnixStream, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let sent = send_with(stream, &[0u8], &[fd])?;
    if sent == 1 {
        Ok(())
    } else {
        Err(std::io::ErrorKind::WriteZero.into())
    }
}

/// Sends `data` over `stream` with `fds` attached (`SCM_RIGHTS`) in one
/// `sendmsg`, and returns how many bytes of `data` were sent.
///
/// The descriptors travel with the first byte: if fewer bytes than
/// `data.len()` were sent (a full buffer of a non-blocking socket, or a
/// write timeout), send the rest with plain writes; the descriptors were
/// sent once and are not sent again. `SIGPIPE` is not raised where the
/// system has `MSG_NOSIGNAL` (Linux, Android, FreeBSD; tested on Linux).
///
/// A call interrupted by a signal before it sent anything (`EINTR`) is made
/// again, unless the socket has a write timeout (`SO_SNDTIMEO`, as
/// [`UnixStream::set_write_timeout`] sets) and at least that long has
/// passed since `send_with` was called: then it fails as a timed-out send
/// does, with `EAGAIN` ([`std::io::ErrorKind::WouldBlock`]). With a timeout
/// set Linux fails a blocked send with `EINTR` at every handled signal,
/// even one installed with `SA_RESTART`, and each retry waits the full
/// timeout again; so `send_with` returns less than twice the timeout after
/// it was called, however often signals arrive.
///
/// On a stream socket the kernel sends no ancillary data without at least
/// one byte, so descriptors with empty `data` are refused rather than
/// silently dropped.
///
/// ```
/// # #[cfg(miri)] fn main() {} // Miri cannot pass descriptors.
/// # #[cfg(not(miri))]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
/// use shm_region::fdpass;
///
/// let (a, b) = UnixStream::pair()?;
/// let one = tempfile::tempfile()?;
/// let two = tempfile::tempfile()?;
/// assert_eq!(fdpass::send_with(&a, b"hello", &[one.as_fd(), two.as_fd()])?, 5);
///
/// let mut buf = [0u8; 16];
/// let (n, fds) = fdpass::recv_with(&b, &mut buf, 4)?;
/// assert_eq!((&buf[..n], fds.len()), (&b"hello"[..], 2));
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// - [`std::io::ErrorKind::InvalidInput`] if `fds` is not empty and `data`
///   is, or if more than [`MAX_FDS_PER_MESSAGE`] descriptors are given (the
///   kernel may refuse fewer: Linux takes at most 253, with `EINVAL`);
/// - whatever `sendmsg` reports (for example a closed peer).
pub fn send_with(
    stream: &UnixStream,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<usize> {
    use std::io::{Error as IoError, ErrorKind as IoKind};
    if !fds.is_empty() && data.is_empty() {
        return Err(IoError::new(
            IoKind::InvalidInput,
            "fdpass::send_with: descriptors need at least one byte of data (a stream socket sends no ancillary data without it)",
        ));
    }
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(IoError::new(
            IoKind::InvalidInput,
            format!(
                "fdpass::send_with: {} descriptors, more than {MAX_FDS_PER_MESSAGE} in one message",
                fds.len()
            ),
        ));
    }
    let mut space = if fds.is_empty() {
        Vec::new()
    } else {
        vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))]
    };
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        // The buffer was sized for exactly these descriptors.
        return Err(IoKind::OutOfMemory.into());
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = SendFlags::NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = SendFlags::empty();
    let started = std::time::Instant::now();
    loop {
        match rustix::net::sendmsg(stream, &[IoSlice::new(data)], &mut control, flags) {
            // Interrupted before anything was sent: nothing to undo.
            Err(Errno::INTR) => {
                if timed_out(stream, Timeout::Send, started) {
                    return Err(Errno::AGAIN.into());
                }
            }
            other => return other.map_err(Into::into),
        }
    }
}

/// Whether a call interrupted by a signal has used up the socket's
/// `SO_RCVTIMEO` / `SO_SNDTIMEO` (`id`) since `started`: with a timeout
/// set, Linux fails a blocked call with `EINTR` at every handled signal,
/// even with `SA_RESTART`, so a retry with a fresh full timeout could
/// block for ever under periodic signals. A timeout that cannot be read
/// counts as none.
fn timed_out(stream: &UnixStream, id: Timeout, started: std::time::Instant) -> bool {
    match rustix::net::sockopt::socket_timeout(stream, id) {
        Ok(Some(limit)) => started.elapsed() >= limit,
        _ => false,
    }
}

/// The control-buffer bytes [`recv_with`] allocates to receive `max_fds`
/// descriptors: room for `min(max_fds, MAX_FDS_PER_MESSAGE) + 1`
/// descriptors, and on Linux and Android also for what the kernel adds
/// before and after them on a socket with `SO_PASSCRED` (credentials),
/// `SO_PASSPIDFD` (a pidfd) or `SO_PASSSEC` (a security label, up to
/// 256 bytes here).
pub(crate) fn control_space(max_fds: usize) -> usize {
    // Room for one more than asked for, so that an extra descriptor is seen
    // (and closed, with a count) rather than cut off by the kernel.
    let rights = rustix::cmsg_space!(ScmRights(max_fds.min(MAX_FDS_PER_MESSAGE) + 1));
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let rights = rights
        + rustix::cmsg_space!(ScmCredentials(1))
        + rustix::cmsg_space!(ScmRights(1))
        + rustix::cmsg_space!(ScmRights(64));
    rights
}

/// Receives one descriptor sent with [`send`], close-on-exec from the
/// start, and checks that it is a regular file.
///
/// # Errors
///
/// - [`ErrorKind::MissingDescriptor`] if the message (or end of stream)
///   carried no descriptor;
/// - [`ErrorKind::ExtraDescriptors`] if it carried more than one (all are
///   closed);
/// - [`ErrorKind::NotRegularFile`] if the descriptor is not a regular file
///   (it is closed);
/// - [`ErrorKind::Os`] if `recvmsg` or `fstat` fails.
pub fn recv(stream: &UnixStream) -> Result<OwnedFd> {
    const OP: &str = "fdpass::recv";
    let mut byte = [0u8; 1];
    let (_, mut fds) = receive(stream, &mut byte, 1, OP)?;
    let fd = fds
        .pop()
        .ok_or_else(|| Error::new(ErrorKind::MissingDescriptor, OP))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::os(OP, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::not_regular(OP, st.st_mode));
    }
    Ok(fd)
}

/// Receives one message from `stream`: its bytes into `buf`, and at most
/// `max_fds` descriptors. Returns the number of bytes received and the
/// descriptors in the order they were sent, every one close-on-exec from the
/// start (`MSG_CMSG_CLOEXEC` on Linux, Android and FreeBSD; elsewhere set
/// right after `recvmsg`, which leaves a window in which a concurrent `exec`
/// in another thread inherits them).
///
/// The descriptors can be of any type:
/// [`attach_fd`](crate::MmapRegion::attach_fd) checks the one to be mapped.
///
/// On a stream socket (what [`UnixStream::pair`] and
/// [`UnixListener`](std::os::unix::net::UnixListener) make) messages have no
/// boundaries, and `(0, [])` is the end of the stream. The bytes of a
/// message longer than `buf` stay queued for the next read. Descriptors
/// arrive with the first byte of the message they were sent with, which
/// need not be the first byte a read returns: a read may return the bytes
/// of earlier messages sent without descriptors together with the first
/// bytes of the next message and its descriptors. A
/// message-oriented socket (`SOCK_SEQPACKET`) in a [`UnixStream`] keeps
/// message boundaries: there a message longer than `buf` is cut, which is
/// refused here ([`ErrorKind::MessageTruncated`]), and an empty message
/// is `(0, [])`, or `(0, descriptors)` if it carried some; it is not the
/// end of anything.
///
/// The socket may have `SO_PASSCRED` set (room is made for the credentials
/// the kernel then adds) or, on Linux 6.5 and later, `SO_PASSPIDFD`: the
/// pidfd the kernel then installs with every message is closed before
/// `recv_with` returns.
///
/// A call interrupted by a signal before anything arrived (`EINTR`) is made
/// again, unless the socket has a read timeout (`SO_RCVTIMEO`, as
/// [`UnixStream::set_read_timeout`] sets) and at least that long has passed
/// since `recv_with` was called: then it fails as a timed-out read does,
/// with [`ErrorKind::Os`] and `EAGAIN`. With a timeout set Linux fails a
/// blocked read with `EINTR` at every handled signal, even one installed
/// with `SA_RESTART`, and each retry waits the full timeout again; so
/// `recv_with` returns less than twice the timeout after it was called,
/// however often signals arrive.
///
/// # Errors
///
/// Every error closes every descriptor the message carried.
///
/// - [`ErrorKind::InvalidSize`] (as a [`std::io::Error`],
///   [`std::io::ErrorKind::InvalidInput`]) for an empty `buf`, with no
///   call: on a stream socket a read into it would return `(0, [])`, the
///   end of the stream, while messages may still be queued;
/// - [`ErrorKind::ExtraDescriptors`] if the message carried more than
///   `max_fds` descriptors, or more than the control buffer had room for
///   (`MSG_CTRUNC`; room is made for `max_fds + 1`, at most
///   [`MAX_FDS_PER_MESSAGE`] + 1, besides room for what the kernel adds:
///   credentials, a pidfd, a security label); the
///   message gives the numbers;
/// - [`ErrorKind::Os`] with `EMFILE` if the kernel cut the control message
///   (`MSG_CTRUNC`) after at most `max_fds` descriptors, with room left in
///   the buffer: it stopped installing them because this process had no
///   free descriptor under `RLIMIT_NOFILE` (or, where a security module
///   refuses passing a file, because it refused one); the message gives how
///   many were installed and the limit;
/// - [`ErrorKind::MessageTruncated`] if the kernel cut the message to fit
///   `buf` (`MSG_TRUNC`);
/// - [`ErrorKind::Os`] if `recvmsg` fails (for example `EAGAIN` after a
///   read timeout).
pub fn recv_with(
    stream: &UnixStream,
    buf: &mut [u8],
    max_fds: usize,
) -> Result<(usize, Vec<OwnedFd>)> {
    const OP: &str = "fdpass::recv_with";
    if buf.is_empty() {
        return Err(Error::new(ErrorKind::InvalidSize, OP).because(
            "an empty buffer cannot receive a message: a read into it returns 0, the end of a stream",
        ));
    }
    receive(stream, buf, max_fds, OP)
}

/// [`recv_with`] reporting its errors as `op`.
fn receive(
    stream: &UnixStream,
    buf: &mut [u8],
    max_fds: usize,
    op: &'static str,
) -> Result<(usize, Vec<OwnedFd>)> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = RecvFlags::CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = RecvFlags::empty();
    let started = std::time::Instant::now();
    let received = loop {
        match cmsg::recvmsg_once(stream, buf, control_space(max_fds), flags) {
            // Interrupted before anything arrived: nothing was received.
            Err(Errno::INTR) => {
                if timed_out(stream, Timeout::Recv, started) {
                    return Err(Error::os(op, Errno::AGAIN));
                }
            }
            other => break other.map_err(|e| Error::os(op, e))?,
        }
    };
    let (msg, fds) = (received.msg, received.fds);
    // From here on, returning an error drops `fds`, which closes them all.
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        if fds.len() <= max_fds {
            // The buffer had room for at least one more (`control_space`
            // makes room for `max_fds + 1` besides what the kernel adds):
            // the kernel stopped installing them (it closed the rest).
            return Err(Error::descriptors_not_installed(op, fds.len()));
        }
        // More arrived than fit: the kernel closed the rest.
        return Err(Error::extra_descriptors(op, fds.len(), true, max_fds));
    }
    if fds.len() > max_fds {
        return Err(Error::extra_descriptors(op, fds.len(), false, max_fds));
    }
    if msg.flags.contains(ReturnFlags::TRUNC) {
        return Err(Error::message_truncated(op, buf.len()));
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    for fd in &fds {
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC).map_err(|e| Error::os(op, e))?;
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_space_is_capped_at_max_fds_per_message() {
        let cap = control_space(MAX_FDS_PER_MESSAGE);
        assert_eq!(control_space(usize::MAX), cap);
        assert_eq!(control_space(MAX_FDS_PER_MESSAGE + 1), cap);
        // Room for MAX_FDS_PER_MESSAGE + 1 descriptors of 4 bytes, plus
        // headers and what the kernel adds: under 8 KiB.
        assert!(cap >= 4 * (MAX_FDS_PER_MESSAGE + 1), "{cap}");
        assert!(cap < 8192, "{cap}");
        // And growing with max_fds below the cap.
        assert!(control_space(1) < control_space(4));
        assert!(control_space(0) >= rustix::cmsg_space!(ScmRights(1)));
    }
}
