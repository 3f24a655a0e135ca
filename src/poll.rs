//! Waiting for one descriptor to become readable, with a timeout, for
//! [`Doorbell::wait`](crate::Doorbell::wait) and
//! [`PeerProcess::wait_exit`](crate::fdpass::PeerProcess::wait_exit).

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// The longest single `poll` (a day): some systems refuse timeouts past
/// `c_int::MAX` milliseconds (about 24.8 days) with `EINVAL`, so longer
/// waits are made of several polls.
const SLICE: Duration = Duration::from_secs(24 * 60 * 60);

/// Waits until `fd` polls readable (or hung up, or in error: anything but
/// nothing) or `timeout` passes (`None`: no limit); returns whether it did.
/// A signal interrupting the wait (`EINTR`) resumes it with the time left.
pub(crate) fn wait_readable(
    fd: BorrowedFd<'_>,
    timeout: Option<Duration>,
    op: &'static str,
) -> Result<bool> {
    // A deadline past what `Instant` can hold is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = match (timeout, deadline) {
            (Some(_), Some(deadline)) => deadline.saturating_duration_since(Instant::now()),
            _ => SLICE,
        }
        .min(SLICE);
        let ts = Timespec {
            tv_sec: i64::try_from(slice.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: slice.subsec_nanos().into(),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) if !fds[0].revents().is_empty() => return Ok(true),
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(Error::os(op, e)),
        }
        if let (Some(_), Some(deadline)) = (timeout, deadline) {
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }
}

/// Whether `fd` polls readable now (a `poll` with a zero timeout).
pub(crate) fn is_readable(fd: BorrowedFd<'_>, op: &'static str) -> Result<bool> {
    wait_readable(fd, Some(Duration::ZERO), op)
}
