//! `getsockopt(SOL_SOCKET, SO_PEERPIDFD)` (Linux 6.5), which rustix 1.1
//! does not wrap, and `getsockopt(SOL_SOCKET, SO_PEERCRED)`, which it wraps
//! into a `UCred` whose `pid` is a non-zero `Pid`, although the kernel
//! reports pid 0 for a peer in a pid namespace this process cannot see
//! (invariant 11).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `SO_PEERPIDFD` (asm-generic/socket.h): the value on the architectures
/// this is built for; sparc (`0x0056`) and parisc (`0x404B`) number it
/// otherwise, and it is not used there nor on 32-bit powerpc, whose
/// socket.h this was not checked against (see [`peer_pidfd`]).
#[cfg(not(any(
    target_arch = "sparc",
    target_arch = "sparc64",
    target_arch = "powerpc"
)))]
const SO_PEERPIDFD: libc::c_int = 77;

/// A pidfd of the process at the other end of `socket` (the process that
/// connected it, or created the pair), from `getsockopt(SOL_SOCKET,
/// SO_PEERPIDFD)`. The descriptor is close-on-exec (the kernel makes every
/// pidfd so).
///
/// Fails with the kernel's error: `ENOPROTOOPT` where the kernel predates
/// the option (before Linux 6.5), `ENODATA` on a socket without a peer,
/// `ESRCH` when the peer was reaped (kernels that refuse pidfds of reaped
/// processes), `ENOTSOCK` on a descriptor that is not a socket.
#[cfg(not(any(
    target_arch = "sparc",
    target_arch = "sparc64",
    target_arch = "powerpc"
)))]
pub(crate) fn peer_pidfd(socket: BorrowedFd<'_>) -> rustix::io::Result<OwnedFd> {
    let mut raw: libc::c_int = -1;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
        .map_err(|_| rustix::io::Errno::INVAL)?;
    // SAFETY: invariant 11: `raw` and `len` are live locals of the sizes
    // `len` states (one `int`), which is what the kernel writes for this
    // option; `socket` is a descriptor we borrow for the call.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            std::ptr::from_mut(&mut raw).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(last_errno());
    }
    if raw < 0 || usize::try_from(len).ok() != Some(std::mem::size_of::<libc::c_int>()) {
        // Not what the option returns; nothing was installed that we know of.
        return Err(rustix::io::Errno::INVAL);
    }
    // SAFETY: invariant 11: on success the kernel installed `raw` in this
    // process for this call and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Where the option's number differs from asm-generic, it is not used:
/// callers fall back to `SO_PEERCRED` and `pidfd_open`.
#[cfg(any(
    target_arch = "sparc",
    target_arch = "sparc64",
    target_arch = "powerpc"
))]
pub(crate) fn peer_pidfd(_socket: BorrowedFd<'_>) -> rustix::io::Result<OwnedFd> {
    Err(rustix::io::Errno::NOPROTOOPT)
}

/// The pid `getsockopt(SOL_SOCKET, SO_PEERCRED)` gives for `socket`'s peer:
/// 0 when the peer is in a pid namespace this process cannot see (and, on
/// some kernels, for a socket without a peer).
pub(crate) fn peer_cred_pid(socket: BorrowedFd<'_>) -> rustix::io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let size = std::mem::size_of::<libc::ucred>();
    let mut len = libc::socklen_t::try_from(size).map_err(|_| rustix::io::Errno::INVAL)?;
    // SAFETY: invariant 11: `cred` and `len` are live locals, `len` being
    // the size of `cred`, a `struct ucred` (three `int`-sized fields, any
    // value of which is valid), which is what the kernel writes for this
    // option; `socket` is a descriptor we borrow for the call.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::from_mut(&mut cred).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(last_errno());
    }
    if usize::try_from(len).ok() != Some(size) {
        return Err(rustix::io::Errno::INVAL);
    }
    Ok(u32::try_from(cred.pid).unwrap_or(0))
}

/// The calling thread's `errno`, as rustix's type.
fn last_errno() -> rustix::io::Errno {
    rustix::io::Errno::from_io_error(&std::io::Error::last_os_error())
        .unwrap_or(rustix::io::Errno::INVAL)
}
