//! `Frozen::attach_fd` over descriptors of every type: memfds with any
//! subset of seals (`F_SEAL_SHRINK`, `GROW`, `WRITE`, `FUTURE_WRITE`,
//! `SEAL`), any size (0, 1, a page less one, a page, huge and sparse),
//! passed open for writing, read-only or `O_PATH`; memfds made without
//! `MFD_ALLOW_SEALING`; tmpfs files (`O_TMPFILE` under `/dev/shm`); regular
//! files; pipes, sockets, `/dev/zero`, directories.
//!
//! Asserted, for every input:
//! - `Ok` exactly when the descriptor is a regular file carrying
//!   `F_SEAL_WRITE`, `F_SEAL_GROW` and `F_SEAL_SHRINK`, not empty and
//!   without a hole (`SEEK_HOLE`; a huge size may also be `FileTooLarge`);
//!   otherwise the documented kind: `NotRegularFile`, `NotSealed` (also for
//!   files that cannot carry seals, and for an `O_PATH` descriptor, through
//!   which seals cannot be read), `EmptyFile`, `Unsupported` for a hole;
//! - on `Ok`: the length is the file's size, the bytes read through the
//!   slice are the memfd's contents (written before sealing, zeros
//!   elsewhere), its descriptor is open read-only, and the original
//!   descriptor still cannot write;
//! - no descriptor leaks, on `Ok` or on error.
#![no_main]

use std::os::fd::OwnedFd;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags, CWD};
use shm_region::{ErrorKind, Frozen};

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `MFD_ALLOW_SEALING`, then the seals of `Input::seals`.
    Memfd,
    /// Without `MFD_ALLOW_SEALING` (the kernel sets `F_SEAL_SEAL` alone).
    MemfdNoSealing,
    /// `O_TMPFILE` in `/dev/shm`: tmpfs, but no seals.
    TmpfsFile,
    RegularFile,
    Pipe,
    Socket,
    DevZero,
    Directory,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    /// Reopened `O_RDONLY` through `/proc/self/fd`.
    ReadOnly,
    /// Reopened `O_PATH`.
    Path,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Size {
    Zero,
    One,
    PageLessOne,
    Page,
    Bytes(u16),
    Pages(u8),
    /// `1 << (20 + n % 43)`: sparse, up to 4 EiB.
    Huge(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: Kind,
    access: Access,
    size: Size,
    /// Bits: SHRINK, GROW, WRITE, FUTURE_WRITE, SEAL.
    seals: u8,
    /// Added in two calls (the first half of the bits, then the rest).
    split: bool,
    writes: Vec<(u32, Vec<u8>)>,
    probes: Vec<u32>,
    clone_first: bool,
}

const PAGE: u64 = 4096;

fn size_of(s: Size) -> u64 {
    match s {
        Size::Zero => 0,
        Size::One => 1,
        Size::PageLessOne => PAGE - 1,
        Size::Page => PAGE,
        Size::Bytes(n) => u64::from(n),
        Size::Pages(p) => u64::from(p) * PAGE,
        Size::Huge(n) => 1u64 << (20 + u32::from(n % 43)),
    }
}

fn seal_set(bits: u8) -> SealFlags {
    let mut s = SealFlags::empty();
    for (bit, flag) in [
        (1, SealFlags::SHRINK),
        (2, SealFlags::GROW),
        (4, SealFlags::WRITE),
        (8, SealFlags::FUTURE_WRITE),
        (16, SealFlags::SEAL),
    ] {
        if bits & bit != 0 {
            s |= flag;
        }
    }
    s
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn reopen(fd: &OwnedFd, flags: OFlags) -> OwnedFd {
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
    rustix::fs::openat(CWD, path.as_str(), flags | OFlags::CLOEXEC, Mode::empty()).unwrap()
}

/// The file's contents, the model: (offset, bytes) written in order.
struct Model {
    size: u64,
    writes: Vec<(u64, Vec<u8>)>,
}

impl Model {
    fn byte(&self, at: u64) -> u8 {
        let mut b = 0;
        for (off, bytes) in &self.writes {
            if at >= *off && at < off + bytes.len() as u64 {
                b = bytes[usize::try_from(at - off).unwrap()];
            }
        }
        b
    }
}

/// Writes the input's bytes into a fresh file of `size` bytes.
fn fill(fd: &OwnedFd, size: u64, input: &Input) -> Model {
    rustix::fs::ftruncate(fd, size).unwrap();
    let mut writes = Vec::new();
    if size > 0 {
        for (off, bytes) in input.writes.iter().take(8) {
            let off = u64::from(*off) % size;
            let len = bytes
                .len()
                .min(usize::try_from(size - off).unwrap_or(usize::MAX));
            // The kernel may refuse to back a page of a huge sparse file
            // (ENOSPC under memory pressure): the model keeps what was
            // written.
            match rustix::io::pwrite(fd, &bytes[..len], off) {
                Ok(n) => writes.push((off, bytes[..n].to_vec())),
                Err(rustix::io::Errno::NOSPC | rustix::io::Errno::NOMEM) => {}
                Err(e) => panic!("pwrite of {len} bytes at {off}: {e}"),
            }
        }
    }
    Model { size, writes }
}

/// The descriptor to attach, whether it may be `Ok`, and the model of its
/// bytes (for regular files).
fn make(input: &Input) -> (OwnedFd, Option<OwnedFd>, bool, Option<Model>) {
    let size = size_of(input.size);
    let cloexec = |f: OFlags| f | OFlags::CLOEXEC;
    match input.kind {
        Kind::Memfd | Kind::MemfdNoSealing => {
            let flags = if input.kind == Kind::Memfd {
                MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING
            } else {
                MemfdFlags::CLOEXEC
            };
            let fd = rustix::fs::memfd_create("frozen_attach", flags).unwrap();
            let model = fill(&fd, size, input);
            let mut sealed = false;
            if input.kind == Kind::Memfd {
                let all = seal_set(input.seals);
                let (a, b) = if input.split {
                    (
                        seal_set(input.seals & 0b00101),
                        seal_set(input.seals & 0b11010),
                    )
                } else {
                    (all, SealFlags::empty())
                };
                rustix::fs::fcntl_add_seals(&fd, a).unwrap();
                if !b.is_empty() {
                    let second = rustix::fs::fcntl_add_seals(&fd, b);
                    if a.contains(SealFlags::SEAL) {
                        assert_eq!(second, Err(rustix::io::Errno::PERM));
                    } else {
                        second.unwrap();
                    }
                }
                let got = rustix::fs::fcntl_get_seals(&fd).unwrap();
                sealed = got.contains(SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK);
            } else {
                assert_eq!(
                    rustix::fs::fcntl_get_seals(&fd).unwrap(),
                    SealFlags::SEAL,
                    "a memfd without MFD_ALLOW_SEALING"
                );
            }
            let (attach, keep) = match input.access {
                Access::ReadWrite => (fd, None),
                Access::ReadOnly => (reopen(&fd, OFlags::RDONLY), Some(fd)),
                Access::Path => {
                    sealed = false;
                    (reopen(&fd, OFlags::PATH), Some(fd))
                }
            };
            (attach, keep, sealed, Some(model))
        }
        Kind::TmpfsFile | Kind::RegularFile => {
            let fd = if input.kind == Kind::TmpfsFile {
                rustix::fs::openat(
                    CWD,
                    "/dev/shm",
                    cloexec(OFlags::TMPFILE | OFlags::RDWR),
                    Mode::RUSR | Mode::WUSR,
                )
                .unwrap()
            } else {
                OwnedFd::from(tempfile::tempfile().unwrap())
            };
            // Sparse and huge is fine on tmpfs; elsewhere keep it small.
            let size = if input.kind == Kind::RegularFile {
                size.min(1 << 30)
            } else {
                size
            };
            let model = fill(&fd, size, input);
            (fd, None, false, Some(model))
        }
        Kind::Pipe => {
            let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
            (r, Some(w), false, None)
        }
        Kind::Socket => {
            let (a, b) = rustix::net::socketpair(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )
            .unwrap();
            (a, Some(b), false, None)
        }
        Kind::DevZero => (
            rustix::fs::openat(CWD, "/dev/zero", cloexec(OFlags::RDWR), Mode::empty()).unwrap(),
            None,
            false,
            None,
        ),
        Kind::Directory => (
            rustix::fs::openat(
                CWD,
                "/tmp",
                cloexec(OFlags::PATH | OFlags::DIRECTORY),
                Mode::empty(),
            )
            .unwrap(),
            None,
            false,
            None,
        ),
    }
}

fn iteration(input: &Input) {
    let (fd, keep, sealed, model) = make(input);
    let regular = model.is_some();
    let size = model.as_ref().map_or(0, |m| m.size);
    let original = keep
        .as_ref()
        .map(|k| k.try_clone().unwrap())
        .unwrap_or_else(|| fd.try_clone().unwrap());
    // Where `SEEK_HOLE` finds the first hole (`None` where it cannot be
    // asked, as through `O_PATH`).
    let hole = rustix::fs::seek(&original, rustix::fs::SeekFrom::Hole(0)).ok();
    let holey = hole.is_some_and(|h| h < size);
    let result = Frozen::attach_fd(fd);
    match result {
        Ok(frozen) => {
            assert!(regular && sealed && size > 0 && !holey, "{input:?}: Ok");
            let model = model.unwrap();
            assert_eq!(frozen.len() as u64, size);
            let flags = rustix::fs::fcntl_getfl(frozen.fd()).unwrap();
            assert_eq!(
                flags & OFlags::ACCMODE,
                OFlags::RDONLY,
                "not open read-only"
            );
            let frozen = if input.clone_first {
                let c = frozen.clone();
                drop(frozen);
                c
            } else {
                frozen
            };
            for (off, bytes) in &model.writes {
                for i in 0..bytes.len() {
                    let at = off + i as u64;
                    assert_eq!(
                        frozen[usize::try_from(at).unwrap()],
                        model.byte(at),
                        "byte {at}"
                    );
                }
            }
            for p in input.probes.iter().take(16) {
                let at = u64::from(*p) % size;
                assert_eq!(
                    frozen[usize::try_from(at).unwrap()],
                    model.byte(at),
                    "byte {at}"
                );
            }
            let last = size - 1;
            assert_eq!(frozen[usize::try_from(last).unwrap()], model.byte(last));
            // The kernel still refuses writes through the original.
            if rustix::fs::fcntl_getfl(&original).unwrap() & OFlags::ACCMODE == OFlags::RDWR {
                assert_eq!(
                    rustix::io::pwrite(&original, b"x", 0),
                    Err(rustix::io::Errno::PERM)
                );
            }
            drop(frozen);
        }
        Err(e) => {
            let kind = e.kind();
            if !regular {
                assert_eq!(kind, ErrorKind::NotRegularFile, "{input:?}: {e}");
            } else if !sealed {
                assert_eq!(kind, ErrorKind::NotSealed, "{input:?}: {e}");
            } else if size == 0 {
                assert_eq!(kind, ErrorKind::EmptyFile, "{input:?}: {e}");
            } else {
                assert!(
                    (kind == ErrorKind::Unsupported && holey)
                        || (kind == ErrorKind::FileTooLarge && size >= 1 << 36),
                    "{input:?}: {e}"
                );
            }
        }
    }
    drop((original, keep));
}

fuzz_target!(|input: Input| {
    let before = open_fds();
    iteration(&input);
    assert_eq!(open_fds(), before, "descriptors leaked");
});
