//! [`Doorbell`]: a wake-up an event loop can poll, for a peer that writes
//! shared memory and needs to wake a reader asleep in `poll`, `epoll`,
//! mio, tokio or calloop rather than in a futex wait.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::error::Result;
use crate::poll;

/// A doorbell: [`ring`](Doorbell::ring) on one side, poll the descriptor
/// ([`AsFd`]) or [`wait`](Doorbell::wait) on the other, then
/// [`drain`](Doorbell::drain).
///
/// On Linux and Android it is an `eventfd` (`EFD_CLOEXEC | EFD_NONBLOCK`),
/// which can be sent to another process with
/// [`fdpass::send`](crate::fdpass::send) and taken back with
/// [`Doorbell::from_fd`]: both processes then ring and drain the same
/// counter. On other Unix systems it is a non-blocking pipe (the
/// descriptor [`AsFd`] gives is its read end), usable within a process or
/// across `fork`; [`from_fd`](Doorbell::from_fd) is
/// [`Unsupported`](crate::ErrorKind::Unsupported) there.
///
/// Rings coalesce: any number of rings before a `drain` make the
/// descriptor readable once, and `drain` returns how many there were (a
/// pipe holds at most its capacity; rings past that are dropped; a peer
/// holding the eventfd can add any count in one write, so the number is
/// untrusted). A ring
/// never fails because the counter is full: one that finds the eventfd
/// counter at the most a write can raise it to (`0xffff_ffff_ffff_fffe`),
/// or at `u64::MAX` (which a signal from the kernel reaches: an aio or
/// io_uring completion a holder registered the eventfd for; it then also
/// polls as an error), leaves it there, since the doorbell is rung
/// already.
///
/// The descriptor implements [`AsFd`] and [`AsRawFd`], so that
/// `rustix::event::poll`, mio's `SourceFd`, tokio's `AsyncFd<Doorbell>`
/// and calloop's `Generic` can wait for it: it polls readable while rung.
/// It stays open, and the same, for the doorbell's whole life, which is
/// what tokio's `AsyncFd::register` asks of what it registers.
///
/// ```
/// # #[cfg(miri)] fn main() {} // Miri has no eventfd.
/// # #[cfg(not(miri))]
/// # fn main() -> Result<(), shm_region::Error> {
/// use std::time::Duration;
/// use shm_region::Doorbell;
///
/// let bell = Doorbell::new()?;
/// assert_eq!(bell.drain()?, 0);                     // nothing rang: no blocking
/// assert!(!bell.wait(Some(Duration::from_millis(1)))?);
/// bell.ring()?;
/// bell.ring()?;
/// assert!(bell.wait(None)?);                         // readable, not drained
/// assert_eq!(bell.drain()?, 2);                      // two rings, one wake-up
/// assert_eq!(bell.drain()?, 0);
/// # Ok(()) }
/// ```
pub struct Doorbell {
    inner: imp::Bell,
}

impl Doorbell {
    /// A new doorbell that has not rung: on Linux and Android an `eventfd`
    /// made with `EFD_CLOEXEC | EFD_NONBLOCK`; elsewhere a pipe whose ends
    /// are close-on-exec and non-blocking.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`](crate::ErrorKind::Os) if the system call fails
    /// (for example `EMFILE`: no descriptor left under `RLIMIT_NOFILE`).
    pub fn new() -> Result<Self> {
        Ok(Self {
            inner: imp::Bell::new()?,
        })
    }

    /// Takes a descriptor received from a peer (usually with
    /// [`fdpass::recv_with`](crate::fdpass::recv_with)) as a doorbell,
    /// after checking that it is one (Linux and Android).
    ///
    /// A peer chooses what it sends, so nothing is taken on trust: the
    /// descriptor must have no file type in `fstat` and live on the
    /// anonymous-inode file system (`fstatfs`), its `/proc/thread-self/fd`
    /// link must read `anon_inode:[eventfd]`, and its
    /// `/proc/thread-self/fdinfo` entry must have an `eventfd-count:` line
    /// (procfs is checked to be procfs first). An eventfd in semaphore
    /// mode (`EFD_SEMAPHORE`, which fdinfo shows as `eventfd-semaphore: 1`)
    /// is refused too: there each read takes one ring, so rings would not
    /// coalesce and a peer that raised the counter could keep this side
    /// busy draining. On older kernels, whose fdinfo has no
    /// `eventfd-semaphore:` line, the mode cannot be seen and a semaphore
    /// eventfd is accepted (each [`drain`](Doorbell::drain) then takes one
    /// ring).
    ///
    /// The descriptor is made non-blocking (`O_NONBLOCK`) if it is not.
    /// That flag belongs to the open file description, which the sender
    /// shares: the sender's blocking reads of its copy become non-blocking
    /// too, and a sender can clear it again. [`drain`](Doorbell::drain)
    /// does not depend on it on Linux (it reads with `RWF_NOWAIT`), but
    /// [`ring`](Doorbell::ring) does: a peer that clears `O_NONBLOCK` and
    /// raises the counter to its maximum can make a ring block until the
    /// counter is drained (see `SECURITY.md`).
    ///
    /// On every error the descriptor is closed.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::NotEventfd`](crate::ErrorKind::NotEventfd) if the
    ///   descriptor is anything else (a pipe, socket, regular file,
    ///   directory, device, an `O_PATH` descriptor or another kind of
    ///   anonymous inode, such as a timerfd) or an eventfd in semaphore
    ///   mode; the message gives the descriptor's number and what it is;
    /// - [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) if
    ///   `/proc/thread-self` is missing or is not procfs (the descriptor
    ///   cannot be checked), and on systems other than Linux and Android;
    /// - [`ErrorKind::Os`](crate::ErrorKind::Os) if a system call fails.
    ///
    /// ```
    /// # #[cfg(miri)] fn main() {} // Miri has no eventfd.
    /// # #[cfg(not(miri))]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::os::fd::AsFd;
    /// use std::os::unix::net::UnixStream;
    /// use shm_region::{fdpass, Doorbell, ErrorKind};
    ///
    /// let (consumer, producer) = UnixStream::pair()?; // across processes in practice
    /// let bell = Doorbell::new()?;
    /// fdpass::send_with(&consumer, b"bell", &[bell.as_fd()])?;
    ///
    /// let mut buf = [0u8; 4];
    /// let (_, mut fds) = fdpass::recv_with(&producer, &mut buf, 1)?;
    /// let theirs = Doorbell::from_fd(fds.pop().unwrap())?;
    /// theirs.ring()?;
    /// assert_eq!(bell.drain()?, 1);
    ///
    /// // Anything else is refused, and closed.
    /// let (pipe_read, _pipe_write) = rustix::pipe::pipe()?;
    /// let err = Doorbell::from_fd(pipe_read).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NotEventfd);
    /// # Ok(()) }
    /// ```
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Ok(Self {
            inner: imp::Bell::from_fd(fd)?,
        })
    }

    /// Rings: adds one to the eventfd counter (writes a byte to the pipe
    /// elsewhere), which makes the descriptor readable. Rings before a
    /// [`drain`](Doorbell::drain) coalesce; a ring that finds the counter
    /// at its maximum (or the pipe full) is not an error and leaves it
    /// rung.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`](crate::ErrorKind::Os) if `write` fails otherwise.
    pub fn ring(&self) -> Result<()> {
        self.inner.ring()
    }

    /// Takes every ring since the last drain and returns the count the
    /// eventfd held (on Linux and Android): the number of rings when every
    /// holder rings with [`ring`](Doorbell::ring), but a holder writing to
    /// the descriptor itself can add up to `0xffff_ffff_ffff_fffe` at once
    /// (and a kernel signal it arranged one more, to `u64::MAX`), so from
    /// a doorbell a peer holds it is a wake-up, not a number to trust (loop
    /// on it and a peer chooses how long); `Ok(0)` at once when nothing
    /// rang. Never blocks, on Linux even
    /// when a peer sharing the eventfd has cleared `O_NONBLOCK`. Afterwards
    /// the descriptor no longer polls readable (until the next ring).
    ///
    /// With several holders of the same eventfd draining it, each ring is
    /// counted by exactly one drain.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`](crate::ErrorKind::Os) if `read` fails otherwise.
    pub fn drain(&self) -> Result<u64> {
        self.inner.drain()
    }

    /// Waits until the doorbell is rung (the descriptor polls readable) or
    /// `timeout` passes (`None`: no limit), and returns whether it was
    /// rung. Returns at once if it already is. Does not drain: call
    /// [`drain`](Doorbell::drain) after. A signal handled meanwhile does not
    /// end the wait early.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Os`](crate::ErrorKind::Os) if `poll` fails.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        poll::wait_readable(self.as_fd(), timeout, "Doorbell::wait")
    }
}

impl AsFd for Doorbell {
    /// The descriptor to poll for readability: the eventfd, or the pipe's
    /// read end.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for Doorbell {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doorbell")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

/// The eventfd doorbell.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

    use rustix::event::EventfdFlags;
    use rustix::fs::{FileType, Mode, OFlags};
    use rustix::io::Errno;

    use crate::error::{Error, ErrorKind, Result};
    use crate::fs::{fs_magic, PROC_SUPER_MAGIC};

    /// `ANON_INODE_FS_MAGIC` (linux/magic.h): the file system of eventfds.
    const ANON_INODE_FS_MAGIC: u32 = 0x0904_1934;

    /// Why `from_fd` refuses without procfs.
    const NO_PROCFS: &str = "/proc/thread-self is not procfs: the descriptor cannot be checked to be an eventfd (closed)";

    const FROM_FD: &str = "Doorbell::from_fd";

    pub(super) struct Bell {
        fd: OwnedFd,
    }

    impl Bell {
        pub(super) fn new() -> Result<Self> {
            let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| Error::os("Doorbell::new", e))?;
            Ok(Self { fd })
        }

        pub(super) fn from_fd(fd: OwnedFd) -> Result<Self> {
            verify_eventfd(fd.as_fd())?;
            let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| Error::os(FROM_FD, e))?;
            if !flags.contains(OFlags::NONBLOCK) {
                rustix::fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK)
                    .map_err(|e| Error::os(FROM_FD, e))?;
            }
            Ok(Self { fd })
        }

        pub(super) fn ring(&self) -> Result<()> {
            loop {
                match rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
                    // The counter is at its maximum: it is rung already.
                    Ok(_) | Err(Errno::AGAIN) => return Ok(()),
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(Error::os("Doorbell::ring", e)),
                }
            }
        }

        pub(super) fn drain(&self) -> Result<u64> {
            let mut buf = [0u8; 8];
            loop {
                match read_nowait(self.fd.as_fd(), &mut buf) {
                    Ok(8) => return Ok(u64::from_ne_bytes(buf)),
                    Ok(n) => {
                        // An eventfd read is all 8 bytes or an error.
                        return Err(Error::os("Doorbell::drain", Errno::IO).because(if n == 0 {
                            "the eventfd read returned no bytes"
                        } else {
                            "the eventfd read returned fewer than 8 bytes"
                        }));
                    }
                    Err(Errno::AGAIN) => return Ok(0),
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(Error::os("Doorbell::drain", e)),
                }
            }
        }

        pub(super) fn as_fd(&self) -> BorrowedFd<'_> {
            self.fd.as_fd()
        }
    }

    /// A read that does not block whatever the descriptor's `O_NONBLOCK`
    /// (which a peer sharing the open file description can clear):
    /// `preadv2(RWF_NOWAIT)` at the current offset; a plain `read` where the
    /// kernel does not support that for eventfds (`EOPNOTSUPP`, `ENOSYS`,
    /// `EINVAL`).
    #[cfg(target_os = "linux")]
    fn read_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> rustix::io::Result<usize> {
        use rustix::io::ReadWriteFlags;
        use std::io::IoSliceMut;
        match rustix::io::preadv2(
            fd,
            &mut [IoSliceMut::new(buf)],
            u64::MAX,
            ReadWriteFlags::NOWAIT,
        ) {
            Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => rustix::io::read(fd, buf),
            other => other,
        }
    }

    /// Android: rustix has no `preadv2` there; the descriptor is
    /// non-blocking (set by `new` and `from_fd`).
    #[cfg(target_os = "android")]
    fn read_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> rustix::io::Result<usize> {
        rustix::io::read(fd, buf)
    }

    /// Checks that `fd` is an eventfd, not in semaphore mode (see
    /// `Doorbell::from_fd`).
    fn verify_eventfd(fd: BorrowedFd<'_>) -> Result<()> {
        let raw = fd.as_raw_fd();
        let st = rustix::fs::fstat(fd).map_err(|e| Error::os(FROM_FD, e))?;
        let found = match FileType::from_raw_mode(st.st_mode) {
            FileType::Unknown => None,
            FileType::Fifo => Some("a pipe or FIFO"),
            FileType::Socket => Some("a socket"),
            FileType::RegularFile => Some("a regular file"),
            FileType::Directory => Some("a directory"),
            FileType::CharacterDevice => Some("a character device"),
            FileType::BlockDevice => Some("a block device"),
            FileType::Symlink => Some("a symbolic link"),
        };
        if let Some(found) = found {
            return Err(Error::not_eventfd(FROM_FD, raw, found));
        }
        let flags = rustix::fs::fcntl_getfl(fd).map_err(|e| Error::os(FROM_FD, e))?;
        if flags.contains(OFlags::PATH) {
            return Err(Error::not_eventfd(FROM_FD, raw, "an O_PATH descriptor"));
        }
        if fs_magic(fd).map_err(|e| Error::os(FROM_FD, e))? != ANON_INODE_FS_MAGIC {
            return Err(Error::not_eventfd(
                FROM_FD,
                raw,
                "a file without a type, not on the anonymous-inode file system",
            ));
        }
        let name = raw.to_string();
        let link =
            rustix::fs::readlinkat(proc_dir("/proc/thread-self/fd")?, name.as_str(), Vec::new())
                .map_err(|e| Error::os(FROM_FD, e))?;
        let link = link.to_bytes();
        if link != b"anon_inode:[eventfd]" {
            return Err(Error::not_eventfd(FROM_FD, raw, anon_kind(link)));
        }
        let info = read_fdinfo(&name)?;
        let mut count = false;
        let mut semaphore = false;
        for line in info.lines() {
            if let Some(rest) = line.strip_prefix("eventfd-count:") {
                count = u64::from_str_radix(rest.trim(), 16).is_ok();
            } else if let Some(rest) = line.strip_prefix("eventfd-semaphore:") {
                semaphore = rest.trim() != "0";
            }
        }
        if !count {
            return Err(Error::not_eventfd(
                FROM_FD,
                raw,
                "named like an eventfd, but its fdinfo has no eventfd-count line",
            ));
        }
        if semaphore {
            return Err(Error::semaphore_eventfd(FROM_FD, raw));
        }
        Ok(())
    }

    /// What an anonymous inode's link (`anon_inode:[name]`) says it is.
    fn anon_kind(link: &[u8]) -> &'static str {
        match link {
            b"anon_inode:[timerfd]" => "a timerfd",
            b"anon_inode:[signalfd]" => "a signalfd",
            b"anon_inode:[eventpoll]" => "an epoll instance",
            b"anon_inode:[pidfd]" => "a pidfd",
            b"anon_inode:[io_uring]" => "an io_uring instance",
            b"anon_inode:inotify" => "an inotify instance",
            b"anon_inode:[fanotify]" => "a fanotify instance",
            b"anon_inode:[userfaultfd]" => "a userfaultfd",
            _ if link.starts_with(b"anon_inode:") => "another kind of anonymous inode",
            _ => "a file without a type that is not an anonymous inode",
        }
    }

    /// `dir` (under `/proc/thread-self`) opened, after checking that it is
    /// on procfs.
    fn proc_dir(dir: &str) -> Result<OwnedFd> {
        let unsupported = |e: Errno| match e {
            Errno::NOENT | Errno::NOTDIR | Errno::ACCESS => {
                Error::with_errno(ErrorKind::Unsupported, FROM_FD, e).because(NO_PROCFS)
            }
            e => Error::os(FROM_FD, e),
        };
        let dir = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(unsupported)?;
        if fs_magic(dir.as_fd()).map_err(unsupported)? != PROC_SUPER_MAGIC {
            return Err(Error::new(ErrorKind::Unsupported, FROM_FD).because(NO_PROCFS));
        }
        Ok(dir)
    }

    /// The text of `/proc/thread-self/fdinfo/<name>` (a few hundred bytes;
    /// at most 4 KiB are read).
    fn read_fdinfo(name: &str) -> Result<String> {
        let dir = proc_dir("/proc/thread-self/fdinfo")?;
        let file = rustix::fs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::os(FROM_FD, e))?;
        let mut buf = vec![0u8; 4096];
        let mut len = 0;
        while len < buf.len() {
            match rustix::io::read(&file, &mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(Error::os(FROM_FD, e)),
            }
        }
        buf.truncate(len);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// The pipe doorbell of systems without eventfds in this crate.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

    use rustix::io::Errno;

    use crate::error::{Error, ErrorKind, Result};

    pub(super) struct Bell {
        read: OwnedFd,
        write: OwnedFd,
    }

    impl Bell {
        pub(super) fn new() -> Result<Self> {
            let op = "Doorbell::new";
            let (read, write) = pipe().map_err(|e| Error::os(op, e))?;
            for end in [&read, &write] {
                let flags = rustix::fs::fcntl_getfl(end).map_err(|e| Error::os(op, e))?;
                rustix::fs::fcntl_setfl(end, flags | rustix::fs::OFlags::NONBLOCK)
                    .map_err(|e| Error::os(op, e))?;
            }
            Ok(Self { read, write })
        }

        pub(super) fn from_fd(fd: OwnedFd) -> Result<Self> {
            drop(fd);
            Err(Error::new(ErrorKind::Unsupported, "Doorbell::from_fd").because(
                "a doorbell from a peer is an eventfd, which this crate uses on Linux and Android only (the descriptor was closed)",
            ))
        }

        pub(super) fn ring(&self) -> Result<()> {
            loop {
                match rustix::io::write(&self.write, &[1]) {
                    // Full: rung already, as far as a reader can tell.
                    Ok(_) | Err(Errno::AGAIN) => return Ok(()),
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(Error::os("Doorbell::ring", e)),
                }
            }
        }

        pub(super) fn drain(&self) -> Result<u64> {
            let mut buf = [0u8; 512];
            let mut total = 0u64;
            loop {
                match rustix::io::read(&self.read, &mut buf) {
                    Ok(0) | Err(Errno::AGAIN) => return Ok(total),
                    Ok(n) => total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX)),
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(Error::os("Doorbell::drain", e)),
                }
            }
        }

        pub(super) fn as_fd(&self) -> BorrowedFd<'_> {
            self.read.as_fd()
        }
    }

    /// A close-on-exec pipe: `pipe2(O_CLOEXEC)` where there is one; on
    /// Apple systems (no `pipe2`) `pipe` then `FD_CLOEXEC`, which leaves
    /// a window in which a `fork` + `exec` on another thread inherits the
    /// ends.
    #[cfg(not(target_vendor = "apple"))]
    fn pipe() -> rustix::io::Result<(OwnedFd, OwnedFd)> {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
    }

    #[cfg(target_vendor = "apple")]
    fn pipe() -> rustix::io::Result<(OwnedFd, OwnedFd)> {
        let (read, write) = rustix::pipe::pipe()?;
        for end in [&read, &write] {
            rustix::io::fcntl_setfd(end, rustix::io::FdFlags::CLOEXEC)?;
        }
        Ok((read, write))
    }
}
