//! `FrozenMapping`: a read-only `MAP_SHARED` mapping of a memfd whose bytes
//! the kernel forbids every holder to change, and the one place the crate
//! forms a `&[u8]` over mapped memory (invariant 8 of the parent module).

use std::ffi::c_void;
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;

use rustix::fs::{OFlags, SealFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

use super::mapping::UNMAP_FAILURES;
use super::round_up_to_page;

/// The seals that make a file's bytes and size immutable (invariant 8).
pub(crate) const FROZEN_SEALS: SealFlags = SealFlags::WRITE
    .union(SealFlags::GROW)
    .union(SealFlags::SHRINK);

/// Why [`FrozenMapping::new`] refused a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A check or a system call failed with this error (see `new`).
    Os(Errno),
    /// The file (of `size` bytes) has a hole at `offset`: reading it would
    /// allocate a page, and raise `SIGBUS` if that is refused.
    Hole { offset: u64, size: u64 },
}

impl From<Errno> for Refusal {
    fn from(e: Errno) -> Self {
        Self::Os(e)
    }
}

/// The first hole of the file open at `fd` of `size` bytes, if it has one
/// before `size` (`lseek(SEEK_HOLE)`; the end of the file counts as no
/// hole). The descriptor's position is restored afterwards.
pub(crate) fn first_hole(fd: BorrowedFd<'_>, size: u64) -> Result<Option<u64>, Errno> {
    use rustix::fs::SeekFrom;
    let pos = rustix::fs::seek(fd, SeekFrom::Current(0))?;
    let hole = rustix::fs::seek(fd, SeekFrom::Hole(0));
    rustix::fs::seek(fd, SeekFrom::Start(pos))?;
    let hole = hole?;
    Ok((hole < size).then_some(hole))
}

/// A read-only shared mapping of a whole file that carries
/// [`FROZEN_SEALS`], made from a descriptor open read-only. Unmapped in
/// `Drop`.
#[derive(Debug)]
pub(crate) struct FrozenMapping {
    base: NonNull<u8>,
    /// The file's size: the bytes [`as_slice`](Self::as_slice) covers.
    len: usize,
    /// Bytes mapped: `len` rounded up to pages.
    mapped: usize,
}

// SAFETY: the pointer is only the address of a range this value owns
// (invariant 1); no thread and no process can change the bytes behind it
// (invariant 8), and it is unmapped once, in `Drop`, on whichever thread
// drops the value.
unsafe impl Send for FrozenMapping {}

// SAFETY: `&self` methods only read the bytes, which nothing can write
// (invariant 8), so sharing references across threads races nothing.
unsafe impl Sync for FrozenMapping {}

impl FrozenMapping {
    /// Maps the whole file open at `fd` read-only, after checking here the
    /// conditions of invariant 8: `fd` is open `O_RDONLY`, the file carries
    /// `F_SEAL_WRITE`, `F_SEAL_GROW` and `F_SEAL_SHRINK`, and its size
    /// (read after the seals, so final) is not 0 and fits `isize`, and it
    /// has no hole (`SEEK_HOLE` finds none before the end; final too, since
    /// `F_SEAL_WRITE` forbids punching holes).
    ///
    /// The caller must have refused files on hugetlbfs (invariant 1).
    ///
    /// # Errors
    ///
    /// `EACCES` if `fd` is not open read-only, `EPERM` if a seal is missing,
    /// `EINVAL` for an empty file (or `F_GET_SEALS` on a file that cannot
    /// carry seals), `EFBIG` for a size past `isize::MAX`, and whatever
    /// `fcntl`, `fstat`, `lseek` or `mmap` report, all as [`Refusal::Os`];
    /// [`Refusal::Hole`] for a file with a hole.
    ///
    /// With `fault_in`, for a file whose pages are all allocated (`freeze`
    /// allocated them with `fallocate` after the seals, which `SEEK_HOLE`
    /// still reports as holes until they are first touched), the holes
    /// `SEEK_HOLE` reports are read once through the mapping (which marks
    /// the allocated pages in use without allocating), and the check is
    /// made after that.
    pub(crate) fn new(fd: BorrowedFd<'_>, fault_in: bool) -> Result<Self, Refusal> {
        if rustix::fs::fcntl_getfl(fd)? & OFlags::RWMODE != OFlags::RDONLY {
            return Err(Errno::ACCESS.into());
        }
        if !rustix::fs::fcntl_get_seals(fd)?.contains(FROZEN_SEALS) {
            return Err(Errno::PERM.into());
        }
        let size = rustix::fs::fstat(fd)?.st_size;
        let len = usize::try_from(size)
            .ok()
            .filter(|&n| isize::try_from(n).is_ok())
            .ok_or(Errno::FBIG)?;
        if len == 0 {
            return Err(Errno::INVAL.into());
        }
        // Sealed against writes, the file cannot get new holes; one it has
        // would be filled on a read fault, which may fail with `SIGBUS`.
        let size = u64::try_from(len).map_err(|_| Errno::FBIG)?;
        let hole = first_hole(fd, size)?;
        if let (Some(offset), false) = (hole, fault_in) {
            return Err(Refusal::Hole { offset, size });
        }
        let mapped = round_up_to_page(len).ok_or(Errno::FBIG)?;
        // SAFETY: a null hint without `MAP_FIXED` lets the kernel choose a
        // free range, so no existing mapping is replaced; the range
        // returned is owned by the value built below (invariant 1) and
        // unmapped only in its `Drop`.
        let base = unsafe {
            rustix::mm::mmap(
                ptr::null_mut(),
                mapped,
                ProtFlags::READ,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let base = NonNull::new(base.cast::<u8>()).ok_or(Errno::NOMEM)?;
        let map = Self { base, len, mapped };
        if hole.is_some() {
            map.touch_pages();
            if let Some(offset) = first_hole(fd, size)? {
                return Err(Refusal::Hole { offset, size });
            }
        }
        Ok(map)
    }

    /// Reads one byte of every page, so that each is faulted in.
    fn touch_pages(&self) {
        let page = super::page_size();
        for offset in (0..self.len).step_by(page) {
            let at = self.base.as_ptr().wrapping_add(offset);
            // SAFETY: `offset < len`, so `at` is inside the range this value
            // owns, mapped readable (invariant 1); the read is volatile, so
            // the fault happens. Only `new` calls this, with `fault_in`,
            // which `freeze` alone passes, for a file it allocated whole
            // with `fallocate` after the seals: no hole was punched since
            // (`F_SEAL_WRITE` refuses that), so the fault finds every page
            // and allocates none (invariant 8: no `SIGBUS`). A file
            // allocated only before the seals would not do: a holder of a
            // writable descriptor could punch a hole in between.
            let _ = unsafe { ptr::read_volatile(at) };
        }
    }

    /// The file's bytes.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `[base, base + len)` is mapped readable for as long as
        // `self` lives (invariant 1: unmapped only in `Drop`), `len` fits
        // `isize` (checked in `new`) and the bytes are initialised (a
        // mapping of a file: its bytes, or zeros in holes); and no write can
        // reach them while the returned reference lives, in this process or
        // any other (invariant 8), which is what a shared reference needs.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }
}

impl Drop for FrozenMapping {
    fn drop(&mut self) {
        let base = self.base.as_ptr().cast::<c_void>();
        // SAFETY: we own `[base, base + mapped)` (invariant 1), returned by
        // `mmap`, and `Drop` runs once, when no reference from `as_slice`
        // can exist any more (it borrows `self`).
        let res = unsafe { rustix::mm::munmap(base, self.mapped) };
        if res.is_err() {
            // Invariant 5: the range stays mapped, and the leak is counted.
            UNMAP_FAILURES.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(miri), not(loom)))]
mod tests {
    use super::*;
    use rustix::fs::{MemfdFlags, Mode};
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};

    /// A memfd of `len` bytes (`b'f'`) with `seals`, and a read-only
    /// descriptor of it.
    fn memfd(len: u64, seals: SealFlags) -> (OwnedFd, OwnedFd) {
        let fd =
            rustix::fs::memfd_create("t", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, len).unwrap();
        let bytes = vec![b'f'; usize::try_from(len).unwrap()];
        let mut off = 0;
        while off < bytes.len() {
            off += rustix::io::pwrite(&fd, &bytes[off..], u64::try_from(off).unwrap()).unwrap();
        }
        rustix::fs::fcntl_add_seals(&fd, seals).unwrap();
        let ro = rustix::fs::open(
            format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        (fd, ro)
    }

    #[test]
    fn a_frozen_mapping_that_fails_to_unmap_is_counted_instead_of_panicking() {
        let before = super::super::unmap_failures();
        let ps = super::super::page_size();
        // Not page-aligned, so `munmap` refuses it (EINVAL) without
        // touching anything.
        let bogus = FrozenMapping {
            base: std::ptr::NonNull::dangling(),
            len: ps,
            mapped: ps,
        };
        drop(bogus);
        assert_eq!(super::super::unmap_failures(), before + 1);
    }

    #[test]
    fn frozen_mapping_checks_the_seals_and_the_access_mode_itself() {
        for missing in [SealFlags::WRITE, SealFlags::GROW, SealFlags::SHRINK] {
            let (_fd, ro) = memfd(10, FROZEN_SEALS.difference(missing));
            assert_eq!(
                FrozenMapping::new(ro.as_fd(), false).unwrap_err(),
                Refusal::Os(Errno::PERM),
                "{missing:?}"
            );
        }
        let (fd, ro) = memfd(10, FROZEN_SEALS);
        assert_eq!(
            FrozenMapping::new(fd.as_fd(), false).unwrap_err(),
            Refusal::Os(Errno::ACCESS)
        );
        let map = FrozenMapping::new(ro.as_fd(), false).unwrap();
        assert_eq!(map.as_slice(), b"ffffffffff");
        assert_eq!(map.mapped, round_up_to_page(10).unwrap());
        let (_fd, empty) = memfd(0, FROZEN_SEALS);
        assert_eq!(
            FrozenMapping::new(empty.as_fd(), false).unwrap_err(),
            Refusal::Os(Errno::INVAL)
        );
    }

    #[test]
    fn frozen_mapping_refuses_a_sealed_file_with_a_hole_and_keeps_the_position() {
        let ps = u64::try_from(super::super::page_size()).unwrap();
        // Data in the first page only; the next three are a hole.
        let fd =
            rustix::fs::memfd_create("t", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, 4 * ps).unwrap();
        rustix::io::pwrite(&fd, b"data", 0).unwrap();
        rustix::fs::fcntl_add_seals(&fd, FROZEN_SEALS).unwrap();
        let ro = rustix::fs::open(
            format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        rustix::fs::seek(&ro, rustix::fs::SeekFrom::Start(3)).unwrap();
        assert_eq!(
            FrozenMapping::new(ro.as_fd(), false).unwrap_err(),
            Refusal::Hole {
                offset: ps,
                size: 4 * ps
            }
        );
        assert_eq!(
            rustix::fs::seek(&ro, rustix::fs::SeekFrom::Current(0)).unwrap(),
            3
        );
        // Why a hole is refused rather than faulted in: a read fault on a
        // hole of a shared shmem mapping allocates the page, charged to the
        // reader (and raising `SIGBUS` where that is refused). Faulted in
        // (as `freeze` does, for pages it allocated first), the file has no
        // hole left, so the check after the faults passes.
        let filled = FrozenMapping::new(ro.as_fd(), true).unwrap();
        assert_eq!(filled.len, usize::try_from(4 * ps).unwrap());
        assert_eq!(first_hole(ro.as_fd(), 4 * ps), Ok(None));
        assert_eq!(
            rustix::fs::seek(&ro, rustix::fs::SeekFrom::Current(0)).unwrap(),
            3
        );
    }
}
