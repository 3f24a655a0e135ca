//! `recvmsg` with a control buffer this module owns, so that control
//! messages rustix does not surface can be read too (invariant 10): the
//! pidfd Linux installs as `SCM_PIDFD` on a socket with `SO_PASSPIDFD`
//! (Linux 6.5) would otherwise stay open in this process.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, RecvMsg};

/// What one `recvmsg` gave: its return and the `SCM_RIGHTS` descriptors in
/// order.
pub(crate) struct Received {
    pub(crate) msg: RecvMsg,
    pub(crate) fds: Vec<OwnedFd>,
}

/// One `recvmsg` of `socket` into `buf` with `space` bytes of control
/// buffer. Every `SCM_RIGHTS` descriptor is returned (owned); every
/// `SCM_PIDFD` descriptor is closed before this returns.
pub(crate) fn recvmsg_once(
    socket: impl AsFd,
    buf: &mut [u8],
    space: usize,
    flags: RecvFlags,
) -> rustix::io::Result<Received> {
    // Zeroed, so that every byte is initialised whether or not the kernel
    // writes it (invariant 10).
    let mut space = vec![MaybeUninit::new(0u8); space];
    let mut fds = Vec::new();
    let mut rustix_owns_more = false;
    let msg = {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(socket, &mut [IoSliceMut::new(buf)], &mut control, flags)?;
        for m in control.drain() {
            match m {
                RecvAncillaryMessage::ScmRights(received) => fds.extend(received),
                // A kind of message this rustix surfaces beyond the ones
                // known when this was written (the enum is non-exhaustive):
                // it may own the pidfd, and has closed it when dropped here.
                #[cfg(any(target_os = "linux", target_os = "android"))]
                RecvAncillaryMessage::ScmCredentials(_) => {}
                _ => rustix_owns_more = true,
            }
        }
        msg
    };
    // Only when rustix surfaced no other kind of message: a later rustix
    // that surfaces `SCM_PIDFD` closes it itself, and closing it again here
    // could close a descriptor some other thread got meanwhile under the
    // same number (invariant 10). Then a pidfd would rather stay open.
    if !rustix_owns_more {
        close_pidfds(&space);
    }
    Ok(Received { msg, fds })
}

/// Closes every `SCM_PIDFD` descriptor in the control messages the kernel
/// wrote into `space` (from its first `cmsghdr`-aligned byte, where rustix
/// hands the buffer to the kernel); returns how many.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn close_pidfds(space: &[MaybeUninit<u8>]) -> usize {
    use std::os::fd::FromRawFd;
    // `SOL_SOCKET` (asm/socket.h) and `SCM_PIDFD` (linux/socket.h).
    #[cfg(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))]
    const SOL_SOCKET: i32 = 0xffff;
    #[cfg(not(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    )))]
    const SOL_SOCKET: i32 = 1;
    const SCM_PIDFD: i32 = 4;
    // The kernel's `cmsghdr`: `size_t cmsg_len; int cmsg_level; int
    // cmsg_type;`, aligned (and its data) to `size_t`.
    const WORD: usize = std::mem::size_of::<usize>();
    const HEADER: usize = (WORD + 8).div_ceil(WORD) * WORD;

    // SAFETY: invariant 10: every byte of `space` was initialised (zeros at
    // allocation, then whatever the kernel wrote), and `MaybeUninit<u8>`
    // has the layout of `u8`.
    let bytes: &[u8] = unsafe { &*(std::ptr::from_ref(space) as *const [u8]) };
    // Where rustix's `RecvAncillaryBuffer` starts the buffer it hands over
    // (the first `cmsghdr`-aligned byte; `usize`'s alignment on Linux).
    let mut at = bytes.as_ptr().align_offset(std::mem::align_of::<usize>());
    let word = |at: usize| -> Option<usize> {
        Some(usize::from_ne_bytes(
            bytes.get(at..at.checked_add(WORD)?)?.try_into().ok()?,
        ))
    };
    let int = |at: usize| -> Option<i32> {
        Some(i32::from_ne_bytes(
            bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let mut closed = 0;
    while let (Some(len), Some(level), Some(kind)) = (word(at), int(at + WORD), int(at + WORD + 4))
    {
        if len < HEADER {
            // Zeros: past the last message the kernel wrote.
            break;
        }
        if level == SOL_SOCKET && kind == SCM_PIDFD && len >= HEADER + 4 {
            if let Some(raw) = int(at + HEADER).filter(|raw| *raw >= 0) {
                // SAFETY: invariant 10: the kernel installed `raw` in this
                // process for this message, and nothing else owns it (rustix
                // does not surface `SCM_PIDFD`).
                drop(unsafe { OwnedFd::from_raw_fd(raw) });
                closed += 1;
            }
        }
        match len
            .div_ceil(WORD)
            .checked_mul(WORD)
            .and_then(|n| at.checked_add(n))
        {
            Some(next) => at = next,
            None => break,
        }
    }
    closed
}

/// No system but Linux has `SCM_PIDFD`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn close_pidfds(_: &[MaybeUninit<u8>]) -> usize {
    0
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    /// `CMSG_SPACE(len)` as the C library computes it.
    fn cmsg_space(len: usize) -> usize {
        let len = libc::c_uint::try_from(len).unwrap();
        // SAFETY: `CMSG_SPACE` only computes with its argument (libc
        // declares it `unsafe` with the pointer macros, but it reads no
        // memory).
        usize::try_from(unsafe { libc::CMSG_SPACE(len) }).unwrap()
    }

    /// The control buffer `recv_with` allocates is exactly what the C
    /// library's `CMSG_SPACE` gives for one `SCM_RIGHTS` message of
    /// `min(max_fds, MAX_FDS_PER_MESSAGE) + 1` descriptors, plus the
    /// messages the kernel may add on Linux (credentials, a pidfd, a
    /// security label of up to 256 bytes), each with the `cmsghdr`
    /// alignment rustix's `cmsg_space!` adds so that it can align the
    /// buffer. A size one descriptor short is absorbed twice over on
    /// Linux: by the room for the added messages (no receive test sees
    /// it), and for an odd count by `CMSG_SPACE`'s rounding to 8 bytes. So
    /// the figure is pinned exactly, for every count.
    #[test]
    fn control_space_is_exactly_cmsg_space_of_one_more_descriptor_than_asked_plus_the_kernels_messages(
    ) {
        use crate::fdpass::{control_space, MAX_FDS_PER_MESSAGE};
        let fd = std::mem::size_of::<libc::c_int>();
        let slack = std::mem::align_of::<libc::cmsghdr>();
        let space = |data: usize| cmsg_space(data + slack);
        let added = space(std::mem::size_of::<libc::ucred>()) + space(fd) + space(64 * fd);
        for max_fds in 0..=MAX_FDS_PER_MESSAGE + 8 {
            let rights = space(fd * (max_fds.min(MAX_FDS_PER_MESSAGE) + 1));
            assert_eq!(control_space(max_fds), rights + added, "max_fds {max_fds}");
        }
        assert_eq!(
            control_space(usize::MAX),
            space(fd * (MAX_FDS_PER_MESSAGE + 1)) + added
        );
        // The figures on x86_64 and arm64 Linux, for one descriptor asked
        // for: CMSG_SPACE(8 + 8) = 32, then 40 + 32 + 280.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(control_space(1), 32 + 40 + 32 + 280);
    }
}
