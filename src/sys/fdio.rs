//! Descriptor I/O straight from and into a mapping: one `write(2)` whose
//! source, or one `read(2)` whose destination, is a range of the mapping
//! (invariant 9 of the parent module). No Rust reference to the shared
//! bytes is formed and no intermediate buffer is used: the kernel copies
//! between the descriptor and the mapped pages itself.
//!
//! rustix's `read` and `write` take slices, which would be references over
//! memory other threads and processes write, so the calls are libc's
//! `read` and `write`, which take a pointer and a length.

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

use super::mapping::Mapping;

/// The error of the last failed libc call on this thread, as an `Errno`.
fn last_errno() -> Errno {
    // `last_os_error` always carries a code; `EIO` is unreachable.
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(5))
}

/// A byte count returned by `read(2)` or `write(2)`, or the call's error.
fn count(ret: isize) -> Result<usize, Errno> {
    // A negative return is `-1` with `errno` set; anything else is a count
    // of at most the length asked for, so it fits `usize`.
    usize::try_from(ret).map_err(|_| last_errno())
}

impl Mapping {
    /// One `write(fd, base + offset, len)`, if `[offset, offset + len)`
    /// lies inside both `0..limit` and the mapping (checked here whatever
    /// `limit` is); `None`, making no call, otherwise. `Some(Ok(n))` is the
    /// count the kernel wrote (`n <= len`; 0 without a call for `len == 0`),
    /// `Some(Err(e))` its error: in
    /// particular `EFAULT` if the kernel's copy met a page it could not
    /// fault in (the file lost it under the mapping), or `EINTR`.
    ///
    /// For a hostile region (feature `arbitrary`) the bytes written are the
    /// next `len` bytes of its input, as for every copy out of it.
    pub(crate) fn write_fd(
        &self,
        offset: usize,
        len: usize,
        limit: usize,
        fd: BorrowedFd<'_>,
    ) -> Option<Result<usize, Errno>> {
        let src = self.checked_ptr_within(offset, len, limit)?;
        if len == 0 {
            return Some(Ok(0));
        }
        #[cfg(all(feature = "arbitrary", not(loom)))]
        if let Some(input) = &self.hostile {
            let mut bytes = vec![0; len];
            input.fill(&mut bytes);
            return Some(rustix::io::write(fd, &bytes));
        }
        // SAFETY: `[src, src + len)` lies inside the mapping (checked by
        // `checked_ptr_within`), which stays mapped and readable while
        // `&self` lives (invariants 1 and 2). The kernel only reads the
        // range, and its copy is not a Rust access (invariant 9): it races
        // other threads' and processes' writes as another process's read
        // would, and a page it cannot fault in makes the call fail with
        // `EFAULT` or return a short count, never a signal.
        let ret = unsafe { libc::write(fd.as_raw_fd(), src.cast::<libc::c_void>(), len) };
        Some(count(ret))
    }

    /// One `read(fd, base + offset, len)`, if the mapping is writable and
    /// `[offset, offset + len)` lies inside both `0..limit` and the mapping;
    /// `None`, making no call, otherwise. The result is as for
    /// [`write_fd`](Self::write_fd): the count the kernel stored (0 at the
    /// end of the input) or its error.
    pub(crate) fn read_fd(
        &self,
        offset: usize,
        len: usize,
        limit: usize,
        fd: BorrowedFd<'_>,
    ) -> Option<Result<usize, Errno>> {
        if !self.writable {
            return None;
        }
        let dst = self.checked_ptr_within(offset, len, limit)?;
        if len == 0 {
            return Some(Ok(0));
        }
        // SAFETY: `[dst, dst + len)` lies inside the mapping (checked by
        // `checked_ptr_within`), mapped readable and writable (checked
        // above; invariant 2), and stays mapped while `&self` lives
        // (invariant 1). The kernel's stores are not Rust accesses
        // (invariant 9): they race other accesses as another process's
        // stores would, and a page it cannot fault in makes the call fail
        // with `EFAULT` or return a short count, never a signal.
        let ret = unsafe { libc::read(fd.as_raw_fd(), dst.cast::<libc::c_void>(), len) };
        Some(count(ret))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sys::page_size;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn write_fd_and_read_fd_refuse_ranges_outside_the_limit_and_the_mapping() {
        let ps = page_size();
        let m = Mapping::in_memory(ps).unwrap();
        let (r, w) = UnixStream::pair().unwrap();
        // As files, whose reads and writes are read(2) and write(2): Miri
        // runs those on a socket pair, not recv(2) and send(2).
        let file = |s: UnixStream| std::fs::File::from(std::os::fd::OwnedFd::from(s));
        let (mut r, mut w) = (file(r), file(w));
        // Past the caller's limit, past the mapping whatever the limit.
        assert!(m.write_fd(0, 11, 10, w.as_fd()).is_none());
        assert!(m.write_fd(ps, 1, usize::MAX, w.as_fd()).is_none());
        assert!(m.write_fd(usize::MAX, 2, usize::MAX, w.as_fd()).is_none());
        assert!(m.read_fd(5, 6, 10, r.as_fd()).is_none());
        assert!(m.read_fd(1, ps, usize::MAX, r.as_fd()).is_none());
        // Inside: the kernel copies the mapped bytes both ways.
        assert!(m.write(0, b"abcdef"));
        assert_eq!(m.write_fd(1, 4, 10, w.as_fd()), Some(Ok(4)));
        let mut got = [0u8; 4];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"bcde");
        w.write_all(b"XY").unwrap();
        assert_eq!(m.read_fd(ps - 2, 2, usize::MAX, r.as_fd()), Some(Ok(2)));
        let mut back = [0u8; 2];
        assert!(m.read(ps - 2, &mut back));
        assert_eq!(&back, b"XY");
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a file")]
    fn read_fd_refuses_a_read_only_mapping_and_makes_no_call() {
        let ps = page_size();
        let f = tempfile::tempfile().unwrap();
        f.set_len(u64::try_from(ps).unwrap()).unwrap();
        let m = Mapping::new(f.as_fd(), ps, 0, false).unwrap();
        let (r, mut w) = UnixStream::pair().unwrap();
        w.write_all(b"z").unwrap();
        assert!(m.read_fd(0, 1, usize::MAX, r.as_fd()).is_none());
        // The byte is still in the pipe: no read was made.
        let mut b = [0u8; 1];
        assert_eq!(rustix::io::read(&r, &mut b), Ok(1));
        assert_eq!(b, *b"z");
    }

    #[test]
    #[cfg_attr(miri, ignore = "shutdown(2) and an open of /")]
    fn errors_come_back_as_errno() {
        let m = Mapping::in_memory(page_size()).unwrap();
        let (r, _w) = UnixStream::pair().unwrap();
        r.shutdown(std::net::Shutdown::Write).unwrap();
        // Writing to a socket shut down for writing: EPIPE (Rust ignores
        // SIGPIPE). A directory cannot be read: EISDIR.
        assert_eq!(
            m.write_fd(0, 1, usize::MAX, r.as_fd()),
            Some(Err(Errno::PIPE))
        );
        let dir = std::fs::File::open("/").unwrap();
        assert_eq!(
            m.read_fd(0, 1, usize::MAX, dir.as_fd()),
            Some(Err(Errno::ISDIR))
        );
    }

    #[cfg(feature = "arbitrary")]
    #[test]
    fn a_hostile_mapping_writes_its_input_out_and_reads_into_its_memory() {
        let m = Mapping::hostile(page_size(), b"memory", b"input!".to_vec()).unwrap();
        let (mut r, mut w) = UnixStream::pair().unwrap();
        // Out: the next input bytes, as every copy out of it gives, then
        // zeros once the input is used up.
        assert_eq!(m.write_fd(0, 8, usize::MAX, w.as_fd()), Some(Ok(8)));
        let mut got = [0u8; 8];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"input!\0\0");
        // In: into the memory, which an atomic load (not drawn from the
        // input) then sees.
        w.write_all(&7u32.to_ne_bytes()).unwrap();
        assert_eq!(m.read_fd(0, 4, usize::MAX, r.as_fd()), Some(Ok(4)));
        assert_eq!(
            m.atomic_u32(0)
                .unwrap()
                .load(std::sync::atomic::Ordering::Relaxed),
            7
        );
    }
}
