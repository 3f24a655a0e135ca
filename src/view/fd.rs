//! `Region`'s descriptor I/O (Unix): `read(2)` and `write(2)` straight
//! between a mapping and a descriptor, with no buffer in between.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::io::Errno;

use super::Region;
use crate::error::{Error, ErrorKind, Result};
use crate::sys;

impl Region {
    /// Writes bytes of the region at `offset` to `fd` with one `write(2)`
    /// straight from the mapping (no intermediate buffer), at the
    /// descriptor's position as [`std::io::Write::write`] does; returns how
    /// many of the `len` bytes were written (0 with no call for `len == 0`).
    ///
    /// The kernel copies from the mapped pages itself; as with
    /// [`read_at`](Self::read_at), it may race writes by peers, and each
    /// byte written is a value some write stored there. A pipe or socket
    /// may take fewer bytes than asked (the count says how many). A range
    /// the file lost under the mapping (a peer truncated it) raises no
    /// `SIGBUS`, with or without [`sigbus::install`](crate::sigbus::install):
    /// the kernel stops at the first page wholly past the file's new end
    /// (bytes past the end inside the file's last page read as zeros).
    /// Whether the bytes before that page count depends on the
    /// destination: a tmpfs file takes them (a short count up to the
    /// page), while a pipe or a socket may fail the whole call with
    /// `EFAULT` and no count, so the call is [`ErrorKind::Truncated`]
    /// though part of the range was readable. A call that starts at or
    /// past that page is `Truncated` whatever the destination. If the
    /// file was cut and grown back between the kernel's copy and the
    /// crate's `fstat`, the call is made once more: if that one moves
    /// bytes (from the page the file now has again, zeros), the call is
    /// still `Truncated` (those bytes may have been written) and the
    /// handle is fenced at the start of the page holding `offset`. That truncation
    /// is recorded for the handle as one [`MmapRegion::check_and_remap`]
    /// detects is: from then on checked accesses of every view of the
    /// handle are bounded by the file's end as this call saw it, and
    /// `check_and_remap` and `resize` return `Truncated` even if the file
    /// grows back.
    ///
    /// ```
    /// # #[cfg(miri)] fn main() {} // Miri cannot create files.
    /// # #[cfg(not(miri))]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::io::Read;
    /// use shm_region::MmapRegion;
    /// let host = MmapRegion::in_memory(4096)?;
    /// let view = host.region();
    /// view.write_at(100, b"frame")?;
    /// let mut file = tempfile::tempfile()?;
    /// view.write_all_to_fd(100, 5, &file)?;
    /// let mut back = String::new();
    /// std::io::Seek::rewind(&mut file)?;
    /// file.read_to_string(&mut back)?;
    /// assert_eq!(back, "frame");
    /// # Ok(()) }
    /// ```
    ///
    /// [`MmapRegion::check_and_remap`]: crate::MmapRegion::check_and_remap
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::OutOfBounds`] as for [`read_at`](Self::read_at), with
    ///   no call; [`ErrorKind::Truncated`] as for `read_at` for a range past
    ///   a truncation the handle found earlier (by this call's kind or any
    ///   other path), with no call;
    /// - [`ErrorKind::Truncated`] if the range reaches pages a contained
    ///   `SIGBUS` cut (checked before the call, which is then not made, and
    ///   after it: bytes the handler replaced may then have been written),
    ///   or if the kernel's copy failed with `EFAULT` and then a contained
    ///   cut or `fstat` shows the file ends before the range does, or the
    ///   one retry made when neither does moves bytes (the file grew back);
    ///   the OS error is `EFAULT` in the last three cases;
    /// - [`ErrorKind::Os`] for any other error of `write(2)` (for example
    ///   `EINTR`, `EAGAIN` on a non-blocking descriptor, `EPIPE`, or the
    ///   retry's error), and for an `EFAULT` the file's size does not
    ///   explain and the retry repeats (such as from a hole in a file on a
    ///   full tmpfs). Past `RLIMIT_FSIZE` the error is `EFBIG` only where
    ///   `SIGXFSZ` is ignored: by default the kernel's `SIGXFSZ` ends the
    ///   process first, as for any `write(2)` (std's `File::write` too);
    ///   unlike `create`, `stage` and `resize`, this call does not check
    ///   the limit itself.
    pub fn write_to_fd(&self, offset: usize, len: usize, fd: impl AsFd) -> Result<usize> {
        self.fd_once(false, "write_to_fd", offset, len, fd.as_fd())
    }

    /// Reads from `fd` into the region at `offset` with one `read(2)`
    /// straight into the mapping (no intermediate buffer), as
    /// [`std::io::Read::read`] does; returns how many of the `len` bytes
    /// were read (0 at the end of the input, or with no call for
    /// `len == 0`).
    ///
    /// As [`write_to_fd`](Self::write_to_fd), the kernel stores into the
    /// mapped pages itself (racing peers as [`write_at`](Self::write_at)
    /// does), and a range the file lost raises no `SIGBUS`: the kernel
    /// stops at the first page wholly past the file's end. A tmpfs file as
    /// the source gives a short count up to that page; a pipe or a socket
    /// may fail the whole call with `EFAULT` and no count, and the call is
    /// then [`ErrorKind::Truncated`] although the kernel already stored the
    /// bytes before that page into the region. A call that starts at or
    /// past that page is `Truncated` too, recorded for the handle as there
    /// (with the same one retry). A failed call may thus have stored into
    /// the region, and bytes the descriptor gave up before a failure (a
    /// pipe's, for example) may be lost.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ReadOnly`] for a read-only view (with no call), and
    /// the errors of [`write_to_fd`](Self::write_to_fd) for `read(2)`.
    pub fn read_from_fd(&self, offset: usize, len: usize, fd: impl AsFd) -> Result<usize> {
        self.fd_once(true, "read_from_fd", offset, len, fd.as_fd())
    }

    /// Writes all `len` bytes of the region at `offset` to `fd`, calling
    /// `write(2)` straight from the mapping until they are written, as
    /// [`std::io::Write::write_all`] does: a short count continues where it
    /// stopped and `EINTR` is retried.
    ///
    /// # Errors
    ///
    /// As [`write_to_fd`](Self::write_to_fd) (out-of-bounds ranges are
    /// refused before anything is written; `EINTR` is never returned), and
    /// [`ErrorKind::Os`] if `write(2)` accepts no byte. On an error, some
    /// bytes may have been written.
    pub fn write_all_to_fd(&self, offset: usize, len: usize, fd: impl AsFd) -> Result<()> {
        self.fd_all(false, "write_all_to_fd", offset, len, fd.as_fd())
    }

    /// Reads exactly `len` bytes from `fd` into the region at `offset`,
    /// calling `read(2)` straight into the mapping until they are read, as
    /// [`std::io::Read::read_exact`] does: a short count continues where it
    /// stopped and `EINTR` is retried.
    ///
    /// # Errors
    ///
    /// As [`read_from_fd`](Self::read_from_fd) (`EINTR` is never
    /// returned), and [`ErrorKind::UnexpectedEof`] if the input ends first
    /// (the message says after how many bytes; as a [`std::io::Error`] its
    /// kind is [`std::io::ErrorKind::UnexpectedEof`]). On an error, the
    /// bytes read so far are in the region.
    pub fn read_exact_from_fd(&self, offset: usize, len: usize, fd: impl AsFd) -> Result<()> {
        self.fd_all(true, "read_exact_from_fd", offset, len, fd.as_fd())
    }

    /// One `read(2)` into (`into_region`) or `write(2)` from the mapping.
    fn fd_once(
        &self,
        into_region: bool,
        op: &'static str,
        offset: usize,
        len: usize,
        fd: BorrowedFd<'_>,
    ) -> Result<usize> {
        let map = self.view.map();
        if into_region && !map.is_writable() {
            return Err(Error::new(ErrorKind::ReadOnly, op));
        }
        if !self.view.check(offset, len) {
            return Err(self.refused(op, offset, len));
        }
        // A range a contained `SIGBUS` already cut: no call, so that no
        // replaced (private) page is written out or read into.
        self.after_access(op, offset, len)?;
        #[cfg(test)]
        super::seam::before_fd_limit();
        // Read again after the check: another thread of this handle may
        // have found a truncation meanwhile, and the call must not reach
        // past it (the mapping checks the range against this limit).
        let limit = self.view.accessible_len();
        let call = || {
            if into_region {
                map.read_fd(offset, len, limit, fd)
            } else {
                map.write_fd(offset, len, limit, fd)
            }
        };
        match call() {
            None => Err(self.fd_refused(into_region, op, offset, len)),
            Some(Ok(n)) => {
                self.after_access(op, offset, n)?;
                Ok(n)
            }
            Some(Err(Errno::FAULT)) => Err(self.fault_error(op, offset, len, call)),
            Some(Err(e)) => Err(Error::os(op, e)),
        }
    }

    /// [`fd_once`](Self::fd_once) until `len` bytes are done, retrying
    /// `EINTR`.
    fn fd_all(
        &self,
        into_region: bool,
        op: &'static str,
        offset: usize,
        len: usize,
        fd: BorrowedFd<'_>,
    ) -> Result<()> {
        let mut done = 0;
        loop {
            // `offset + len` fits: the first call checked the whole range.
            let n = match self.fd_once(into_region, op, offset + done, len - done, fd) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(Errno::INTR.raw_os_error()) => continue,
                Err(e) => return Err(e),
            };
            done += n;
            if done == len {
                return Ok(());
            }
            if n == 0 {
                return Err(if into_region {
                    Error::unexpected_eof(op, done, len)
                } else {
                    Error::new(ErrorKind::Os, op).because("write(2) accepted no bytes")
                });
            }
        }
    }

    /// The error of a descriptor call the mapping refused to make:
    /// `ReadOnly` for a read into a read-only mapping, otherwise as
    /// [`refused`](Self::refused) tells.
    #[cold]
    fn fd_refused(&self, into_region: bool, op: &'static str, offset: usize, len: usize) -> Error {
        if into_region && !self.view.map().is_writable() {
            return Error::new(ErrorKind::ReadOnly, op);
        }
        self.refused(op, offset, len)
    }

    /// The error of a descriptor call whose copy met a page it could not
    /// fault in (`EFAULT`):
    ///
    /// 1. `Truncated` if a contained `SIGBUS` cut the range;
    /// 2. `Truncated` if the file now ends before the range does (`fstat`;
    ///    the truncation is recorded for the handle at the file's size, as
    ///    [`MmapRegion::check_and_remap`](crate::MmapRegion::check_and_remap)
    ///    records one);
    /// 3. otherwise the same call is made once more (`retry`): if it now
    ///    moves bytes, the page the first call could not fault in has come
    ///    back, so the file was cut and grown again in between (its bytes
    ///    there are lost): `Truncated`, recorded at the start of the page
    ///    holding `offset`;
    /// 4. if the retry fails with `EFAULT` again, steps 1 and 2 are taken
    ///    once more, and otherwise it is `Os` with `EFAULT` (a page the
    ///    file has but the kernel could not bring in, such as a hole on a
    ///    full tmpfs); any other outcome of the retry (another error, or a
    ///    count of 0) is `Os` with that error, or with `EFAULT`.
    #[cold]
    fn fault_error(
        &self,
        op: &'static str,
        offset: usize,
        len: usize,
        retry: impl FnOnce() -> Option<std::result::Result<usize, Errno>>,
    ) -> Error {
        if let Some(e) = self.efault_explained(op, offset, len) {
            return e;
        }
        match retry() {
            Some(Ok(n)) if n > 0 => {
                let page = offset - offset % sys::page_size();
                self.view.lower_limit(page);
                Error::with_errno(ErrorKind::Truncated, op, Errno::FAULT).because(
                    "the kernel's copy met a page the file did not have, and the file \
                     has grown back since (its bytes there are lost)",
                )
            }
            Some(Err(Errno::FAULT)) => self
                .efault_explained(op, offset, len)
                .unwrap_or_else(|| Error::os(op, Errno::FAULT)),
            Some(Err(e)) => Error::os(op, e),
            Some(Ok(_)) | None => Error::os(op, Errno::FAULT),
        }
    }

    /// `Truncated` if a contained `SIGBUS` cut `[offset, offset + len)` or
    /// `fstat` shows the file ends before it (the truncation is then
    /// recorded for the handle); `None` if neither explains an `EFAULT`.
    #[cold]
    fn efault_explained(&self, op: &'static str, offset: usize, len: usize) -> Option<Error> {
        if let Err(e) = self.after_access(op, offset, len) {
            return Some(e.with_errno_of(Errno::FAULT));
        }
        #[cfg(test)]
        super::seam::before_fstat();
        // `offset + len` fits: the range was checked before the call.
        let end = offset + len;
        let size = self
            .view
            .map()
            .file()
            .and_then(|fd| crate::fs::size_of(fd, op).ok())?;
        // `size < end`, so it fits `usize`.
        let size_usize = usize::try_from(size).ok().filter(|&s| s < end)?;
        self.view.lower_limit(size_usize);
        Some(Error::truncated(op, self.view.len(), size).with_errno_of(Errno::FAULT))
    }
}
