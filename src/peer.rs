//! [`PeerProcess`]: the process at the other end of a Unix socket, held by
//! a pidfd, so that a server learns when a client dies (re-exported from
//! [`fdpass`](crate::fdpass)).

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::error::Result;
use crate::poll;

/// The process at the other end of a connected Unix socket, from
/// [`peer_process`], held by a pidfd (Linux 5.3+): a reference to that one
/// process, which a later process given the same pid number is not.
///
/// Its descriptor ([`AsFd`], [`AsRawFd`]) polls readable once the process
/// has exited (as a zombie or reaped), so an event loop can watch its
/// clients beside their sockets. [`is_alive`](PeerProcess::is_alive) and
/// [`wait_exit`](PeerProcess::wait_exit) ask the same question.
///
/// ```
/// # #[cfg(miri)] fn main() {} // Miri has no pidfds.
/// # #[cfg(not(miri))]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
/// use shm_region::fdpass;
///
/// let (server_end, _client_end) = UnixStream::pair()?; // a client connects in practice
/// let client = fdpass::peer_process(&server_end)?;
/// assert_eq!(client.pid(), std::process::id());        // the pair's creator: us
/// assert!(client.is_alive()?);
/// assert!(!client.wait_exit(Some(Duration::from_millis(1)))?);
/// # Ok(()) }
/// ```
pub struct PeerProcess {
    pidfd: OwnedFd,
    pid: u32,
}

impl PeerProcess {
    /// The peer's process id in this process's pid namespace, as
    /// `SO_PEERCRED` gave it when the `PeerProcess` was made (the kernel
    /// gives 0 for a process in a pid namespace this one cannot see). Once
    /// the process
    /// has exited the number may name another process: ask the
    /// `PeerProcess`, never the pid, whether the peer is alive.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still running: `false` once it has exited,
    /// whether or not its parent has reaped it, and whatever process has
    /// its pid since.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`](crate::ErrorKind::Os) if `poll` fails.
    pub fn is_alive(&self) -> Result<bool> {
        Ok(!poll::is_readable(
            self.pidfd.as_fd(),
            "PeerProcess::is_alive",
        )?)
    }

    /// Waits until the process exits or `timeout` passes (`None`: no limit)
    /// and returns whether it exited. Returns `true` at once if it already
    /// has. A signal handled meanwhile does not end the wait early.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`](crate::ErrorKind::Os) if `poll` fails.
    pub fn wait_exit(&self, timeout: Option<Duration>) -> Result<bool> {
        poll::wait_readable(self.pidfd.as_fd(), timeout, "PeerProcess::wait_exit")
    }
}

impl AsFd for PeerProcess {
    /// The pidfd (close-on-exec), which polls readable once the process has
    /// exited.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}

impl AsRawFd for PeerProcess {
    fn as_raw_fd(&self) -> RawFd {
        self.pidfd.as_raw_fd()
    }
}

impl fmt::Debug for PeerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerProcess")
            .field("pid", &self.pid)
            .field("pidfd", &self.pidfd.as_raw_fd())
            .finish()
    }
}

/// The process at the other end of `stream`, a connected Unix socket, as a
/// [`PeerProcess`] (Linux and Android).
///
/// That process is the one the kernel recorded when the connection was
/// made: for the accepted side of a connection, the process that called
/// `connect`; for the connecting side, the one that called `listen`; for
/// [`UnixStream::pair`], the process that created the pair.
///
/// The answer is race-free against pid reuse: with `SO_PEERPIDFD` (Linux
/// 6.5) the kernel returns a pidfd of the very process it recorded. On
/// older kernels the pid comes from `SO_PEERCRED` and the pidfd from
/// `pidfd_open`, with a window between the two in which the peer could
/// exit, be reaped and its pid be given to a new process. That is closed
/// as far as the socket allows: after `pidfd_open`, the socket is polled,
/// and if the peer's end has been closed (`POLLHUP`) the peer is refused
/// with [`ErrorKind::NotConnected`](crate::ErrorKind::NotConnected), since
/// its process may be gone; while the peer's end is open, a process holds
/// it, and it is the peer unless the peer shared its end with another
/// process (a child after `fork`, or by descriptor passing) and exited:
/// at any time before `pidfd_open`, not only within the window, since
/// `SO_PEERCRED` keeps giving the pid of the process that connected, and
/// once that pid is given to another process, `pidfd_open` names that
/// one (alive, unrelated). That case remains without `SO_PEERPIDFD`.
///
/// # Errors
///
/// - [`ErrorKind::NotConnected`](crate::ErrorKind::NotConnected) if the
///   socket is not connected (`ENOTCONN`), if the peer process has exited
///   and been reaped (`ESRCH`), or, without `SO_PEERPIDFD`, if the peer's
///   end is closed (the message says which);
/// - [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) on systems
///   other than Linux and Android, and where the kernel has no pidfds
///   (before Linux 5.3: `ENOSYS`), or without `SO_PEERPIDFD` when
///   `SO_PEERCRED` gives pid 0: the peer lives in a pid namespace this
///   process cannot see, or the descriptor is a connected datagram socket
///   (which has peer credentials only when made by `socketpair`);
/// - [`ErrorKind::Os`](crate::ErrorKind::Os) if a system call fails
///   otherwise (for example `ENOTSOCK`, or `EMFILE` for the pidfd).
///
/// No descriptor is left open on any error.
pub fn peer_process(stream: &UnixStream) -> Result<PeerProcess> {
    imp::peer_process(stream.as_fd(), true)
}

/// [`peer_process`] without `SO_PEERPIDFD`: the `SO_PEERCRED` and
/// `pidfd_open` path older kernels take, for tests of that path. Not part
/// of the API.
#[doc(hidden)]
pub fn peer_process_without_peerpidfd(stream: &UnixStream) -> Result<PeerProcess> {
    imp::peer_process(stream.as_fd(), false)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::os::fd::BorrowedFd;

    use rustix::event::{PollFd, PollFlags, Timespec};
    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags};

    use super::PeerProcess;
    use crate::error::{Error, ErrorKind, Result};
    use crate::sys::peer::{peer_cred_pid, peer_pidfd};

    const OP: &str = "fdpass::peer_process";

    fn not_connected(e: Errno, reason: &'static str) -> Error {
        Error::with_errno(ErrorKind::NotConnected, OP, e).because(reason)
    }

    const NOT_CONNECTED: &str = "the socket is not connected: it has no peer process";
    const REAPED: &str = "the peer process has exited and been reaped";

    pub(super) fn peer_process(socket: BorrowedFd<'_>, peerpidfd: bool) -> Result<PeerProcess> {
        // A connected socket has a peer address (unnamed for a pair or a
        // client that did not bind); an unconnected or listening one has
        // none.
        match rustix::net::getpeername(socket) {
            Ok(_) => {}
            Err(e @ Errno::NOTCONN) => return Err(not_connected(e, NOT_CONNECTED)),
            Err(e) => return Err(Error::os(OP, e)),
        }
        let pid = peer_cred_pid(socket).map_err(|e| match e {
            Errno::NOTCONN => not_connected(e, NOT_CONNECTED),
            e => Error::os(OP, e),
        })?;
        if peerpidfd {
            #[cfg(all(test, not(miri)))]
            let answer = match super::tests::PEERPIDFD_ERROR.with(std::cell::Cell::take) {
                Some(e) => Err(e),
                None => peer_pidfd(socket),
            };
            #[cfg(not(all(test, not(miri))))]
            let answer = peer_pidfd(socket);
            match answer {
                Ok(pidfd) => return Ok(PeerProcess { pidfd, pid }),
                // No such option (before Linux 6.5) or not here: fall back.
                Err(Errno::NOPROTOOPT | Errno::INVAL) => {}
                Err(e @ Errno::NODATA) => return Err(not_connected(e, NOT_CONNECTED)),
                Err(e @ Errno::SRCH) => return Err(not_connected(e, REAPED)),
                Err(e) => return Err(Error::os(OP, e)),
            }
        }
        let raw = i32::try_from(pid).ok().and_then(Pid::from_raw).ok_or_else(|| {
            Error::new(ErrorKind::Unsupported, OP).because(
                "SO_PEERCRED gives pid 0 (the peer is in a pid namespace this process cannot see, or the socket is a datagram socket, which has no peer credentials unless made by socketpair) and the kernel has no SO_PEERPIDFD",
            )
        })?;
        #[cfg(all(test, not(miri)))]
        if let Some(seam) = super::tests::BEFORE_PIDFD_OPEN.with(|s| s.borrow_mut().take()) {
            seam();
        }
        let pidfd = rustix::process::pidfd_open(raw, PidfdFlags::empty()).map_err(|e| match e {
            Errno::SRCH => not_connected(e, REAPED),
            Errno::NOSYS => Error::with_errno(ErrorKind::Unsupported, OP, e)
                .because("the kernel has no pidfds (pidfd_open, Linux 5.3)"),
            e => Error::os(OP, e),
        })?;
        // The window: the peer may have exited and its pid been reused
        // before `pidfd_open`. If its end of the socket is still open, a
        // process holds it, so the peer did not exit (unless it shared its
        // end; see `peer_process`). Checked after `pidfd_open`, so that the
        // pidfd was taken while the peer was known to live.
        if peer_hung_up(socket)? {
            // `pidfd` is dropped (closed) here.
            return Err(Error::new(ErrorKind::NotConnected, OP).because(
                "the peer closed its end of the socket, so its process may have exited and its pid been reused: it cannot be named without SO_PEERPIDFD (Linux 6.5)",
            ));
        }
        Ok(PeerProcess { pidfd, pid })
    }

    /// Whether the peer's end of `socket` is closed (or shut down both
    /// ways): `POLLHUP` now.
    fn peer_hung_up(socket: BorrowedFd<'_>) -> Result<bool> {
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            let mut fds = [PollFd::new(&socket, PollFlags::empty())];
            match rustix::event::poll(&mut fds, Some(&zero)) {
                Ok(_) => return Ok(fds[0].revents().contains(PollFlags::HUP)),
                Err(Errno::INTR) => {}
                Err(e) => return Err(Error::os(OP, e)),
            }
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use std::os::fd::BorrowedFd;

    use super::PeerProcess;
    use crate::error::{Error, ErrorKind, Result};

    pub(super) fn peer_process(_socket: BorrowedFd<'_>, _peerpidfd: bool) -> Result<PeerProcess> {
        Err(Error::new(ErrorKind::Unsupported, "fdpass::peer_process").because(
            "a process handle of a socket's peer needs pidfds, which this crate uses on Linux and Android only",
        ))
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android"), not(miri)))]
mod tests {
    use std::cell::RefCell;
    use std::os::unix::net::UnixStream;

    use crate::ErrorKind;

    std::thread_local! {
        /// Run once by the next fallback on this thread just before it
        /// opens the pidfd: a test seam standing for a peer that exits
        /// (closing its end) in the window before `pidfd_open`.
        pub(super) static BEFORE_PIDFD_OPEN: RefCell<Option<Box<dyn FnOnce()>>> =
            const { RefCell::new(None) };
        /// The error the next `SO_PEERPIDFD` on this thread gives instead
        /// of asking the kernel: a test seam for kernels that answer
        /// otherwise than this one.
        pub(super) static PEERPIDFD_ERROR: std::cell::Cell<Option<rustix::io::Errno>> =
            const { std::cell::Cell::new(None) };
    }

    /// `SO_PEERPIDFD` failing with `ESRCH` (Linux 6.5 to 6.8 for a peer
    /// exited and reaped) refuses: the pid SO_PEERCRED gives may be
    /// another process's by now, so there is no fallback to
    /// `pidfd_open`, even though here the pid (this process's) is alive.
    /// `ENOPROTOOPT` (before Linux 6.5) falls back and names the peer.
    #[test]
    fn a_peer_the_kernel_reports_reaped_is_refused_without_a_fallback() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        PEERPIDFD_ERROR.with(|e| e.set(Some(rustix::io::Errno::SRCH)));
        let err = super::peer_process(&ours).unwrap_err();
        assert!(
            PEERPIDFD_ERROR.with(std::cell::Cell::get).is_none(),
            "the seam ran"
        );
        assert_eq!(err.kind(), ErrorKind::NotConnected);
        assert_eq!(
            err.to_string(),
            "fdpass::peer_process: the peer process has exited and been reaped \
             (No such process (os error 3))"
        );
        PEERPIDFD_ERROR.with(|e| e.set(Some(rustix::io::Errno::NOPROTOOPT)));
        let peer = super::peer_process(&ours).unwrap();
        assert_eq!(peer.pid(), std::process::id());
        assert_eq!(peer.is_alive(), Ok(true));
    }

    /// The fallback looks for a hang-up after it took the pidfd, not
    /// before: a peer that closes its end just before `pidfd_open` (it may
    /// have exited and its pid been reused by then) is refused, never
    /// named. A peer that keeps its end open is named.
    #[test]
    fn the_fallback_refuses_a_peer_that_hangs_up_just_before_its_pidfd_is_taken() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        BEFORE_PIDFD_OPEN.with(|s| *s.borrow_mut() = Some(Box::new(move || drop(theirs))));
        let err = super::peer_process_without_peerpidfd(&ours).unwrap_err();
        assert!(
            BEFORE_PIDFD_OPEN.with(|s| s.borrow().is_none()),
            "the seam ran"
        );
        assert_eq!(err.kind(), ErrorKind::NotConnected);
        assert_eq!(
            err.to_string(),
            "fdpass::peer_process: the peer closed its end of the socket, so its process may \
             have exited and its pid been reused: it cannot be named without SO_PEERPIDFD \
             (Linux 6.5)"
        );
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let peer = super::peer_process_without_peerpidfd(&ours).unwrap();
        assert_eq!(peer.pid(), std::process::id());
        assert_eq!(peer.is_alive(), Ok(true));
    }
}
