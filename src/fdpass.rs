//! Passing a region's descriptor to another process over a Unix socket
//! (`SCM_RIGHTS`), for [`MmapRegion::attach_fd`](crate::MmapRegion::attach_fd).
//!
//! The receiver trusts nothing the sender says: exactly one descriptor must
//! arrive (any other count is an error and every received descriptor is
//! closed), it must be a regular file, and the size to map comes from
//! `fstat` in `attach_fd`, never from the message.
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

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::fs::FileType;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::error::{Error, ErrorKind, Result};

/// Sends `fd` over `stream` as the only descriptor of a one-byte message.
///
/// # Errors
///
/// Whatever `sendmsg` reports (for example a closed peer); `SIGPIPE` is not
/// raised.
pub fn send(stream: &UnixStream, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::ErrorKind::OutOfMemory.into());
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = SendFlags::NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = SendFlags::empty();
    let sent = rustix::net::sendmsg(stream, &[IoSlice::new(&[0u8])], &mut control, flags)?;
    if sent == 1 {
        Ok(())
    } else {
        Err(std::io::ErrorKind::WriteZero.into())
    }
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
    // Room for two, so that a second descriptor is seen (and closed) rather
    // than silently cut off.
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = RecvFlags::CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = RecvFlags::empty();
    let msg = rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        flags,
    )
    .map_err(|e| Error::os(OP, e))?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        // More arrived than fit: the kernel closed the rest; close ours.
        return Err(Error::new(ErrorKind::ExtraDescriptors, OP));
    }
    let fd = match fds.len() {
        0 => return Err(Error::new(ErrorKind::MissingDescriptor, OP)),
        1 => fds
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::MissingDescriptor, OP))?,
        _ => return Err(Error::new(ErrorKind::ExtraDescriptors, OP)),
    };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).map_err(|e| Error::os(OP, e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::os(OP, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::not_regular(OP, st.st_mode));
    }
    Ok(fd)
}
