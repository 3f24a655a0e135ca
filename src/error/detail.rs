//! What made an operation fail, with its numbers ([`Detail`]), and the
//! limit a size is past ([`Limit`]): the data of an [`Error`](super::Error)'s
//! message.
#![cfg_attr(
    windows,
    allow(dead_code, reason = "details of errors only the Unix paths make")
)]

use std::fmt;
use std::sync::atomic::Ordering;

/// What made an operation fail, with its numbers, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Detail {
    /// Nothing beyond the kind.
    None,
    /// A sentence that replaces the kind's description.
    Reason(&'static str),
    /// `InvalidSize`: the size asked for.
    Size { requested: usize },
    /// `FileTooLarge`: the size and the limit it is past.
    TooLarge { size: u64, limit: Limit },
    /// `NotRegularFile`: what the file is instead.
    FileType(&'static str),
    /// `UntrustedOwner`: the file's owner and our effective uid.
    Owner { uid: u32, euid: u32 },
    /// `InsecureMode`: the file's permission bits.
    Mode { mode: u32 },
    /// `HardLinked`: the file's link count.
    Links { count: u64 },
    /// `ShrinkRefused`: the mapped length and the size asked for.
    Shrink { current: usize, requested: usize },
    /// `Truncated`: the mapped length and the file's size now.
    Truncated { mapped: usize, file: u64 },
    /// `Truncated`: the access, the offset from which the handle has no
    /// file under the mapping, how it learnt that, and the range the caller
    /// asked for when the access was only a part of it (`for_each_chunk`).
    Cut {
        offset: usize,
        len: usize,
        cut: usize,
        by: CutBy,
        asked: Option<(usize, usize)>,
    },
    /// `OutOfBounds`: the access and the length it must fit in.
    Bounds {
        offset: usize,
        len: usize,
        accessible: usize,
    },
    /// `Misaligned`: the offset and the alignment it lacks.
    Align { offset: usize, align: usize },
    /// `NotFound`: the directory part of the path does not exist.
    MissingParent,
    /// `ReadOnly`: `attach_fd` was given a descriptor open read-only.
    ReadOnlyDescriptor,
    /// `InvalidOrdering`: the ordering asked for.
    Ordering(Ordering),
    /// `LockLimit`: the bytes that could not be locked.
    Lock { len: usize },
    /// `OutOfMemory`: the bytes of memory asked for.
    Memory { len: usize },
    /// `SigbusRegistry`: the mapping's size and the registry's slots.
    Registry { size: usize, slots: usize },
    /// `ExtraDescriptors`: how many descriptors arrived (at least that many
    /// if the control message was cut) and how many were asked for.
    Descriptors {
        received: usize,
        cut: bool,
        max: usize,
    },
    /// `MessageTruncated`: the buffer the message did not fit in.
    Message { buf: usize },
    /// `Os` (`EMFILE`): the kernel installed only `received` descriptors of
    /// a message although the buffer had room for more; the descriptor
    /// limit (`RLIMIT_NOFILE`) when it was read.
    NotInstalled { received: usize, limit: Option<u64> },
    /// `NotSealed`: the seals missing (`F_SEAL_*` bits), all of which
    /// `what` requires.
    MissingSeals { missing: u32, what: &'static str },
    /// `Sealed`: why, and the file's seals (`F_SEAL_*` bits).
    SealedBy { reason: &'static str, seals: u32 },
    /// `UnexpectedEof`: the bytes read before the end of input, of `len`.
    Eof { done: usize, len: usize },
    /// `Unsupported`: a sealed file of `size` bytes with a hole at `offset`.
    // Only `Frozen` (Linux and Android) refuses holes.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Holes { offset: u64, size: u64 },
    /// `NotEventfd`: the descriptor's number and what it is instead.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    NotEventfd { fd: i32, found: &'static str },
    /// `NotEventfd`: the descriptor is an eventfd in semaphore mode.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    SemaphoreEventfd { fd: i32 },
}

/// How a handle learnt that its file ends before an access, for
/// [`Detail::Cut`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CutBy {
    /// A contained `SIGBUS` replaced the mapping's pages from the cut on.
    Sigbus,
    /// A truncation found earlier (by `check_and_remap`, a descriptor call
    /// or a contained `SIGBUS` of another mapping) lowered the handle's
    /// truncation limit to the cut.
    Seen,
}

/// The `F_SEAL_*` bits as names, joined by `" | "` (`"none"` for 0).
pub(super) struct SealNames(pub(super) u32);

impl fmt::Display for SealNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 6] = [
            (0x1, "F_SEAL_SEAL"),
            (0x2, "F_SEAL_SHRINK"),
            (0x4, "F_SEAL_GROW"),
            (0x8, "F_SEAL_WRITE"),
            (0x10, "F_SEAL_FUTURE_WRITE"),
            (0x20, "F_SEAL_EXEC"),
        ];
        let mut first = true;
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                f.write_str(if first { "" } else { " | " })?;
                f.write_str(name)?;
                first = false;
            }
        }
        let unknown = self.0 & !0x3f;
        if unknown != 0 {
            write!(f, "{}{unknown:#x}", if first { "" } else { " | " })?;
            first = false;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// The limit a size is past, for
/// [`ErrorKind::FileTooLarge`](super::ErrorKind::FileTooLarge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// [`MmapOptions::max_size`](crate::MmapOptions::max_size).
    MaxSize(usize),
    /// `isize::MAX`, the most one mapping can hold.
    Mappable,
    /// A quarter of the address space this process had left (the bytes
    /// given), the most a file may take without an explicit `max_size`.
    AddressSpaceShare(usize),
    /// The share of the address space (`cap` bytes: a part of the user
    /// address space or of what a finite `RLIMIT_AS` leaves) that the
    /// mappings of files of one origin made without an explicit `max_size`
    /// may map together ([`unbounded_cap`](crate::map::unbounded_cap)).
    UnboundedShare {
        cap: usize,
        origin: crate::map::Origin,
    },
    /// The file-size limit, `RLIMIT_FSIZE`.
    FileSize(u64),
    /// `mmap` failed with `ENOMEM`: no address space or mapping slots left.
    AddressSpace,
    /// The length of the region being frozen: a peer grew its file past it,
    /// and `freeze` would allocate (and map) all of that. Only `freeze`
    /// (Linux and Android) gives it.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    GrownPast(usize),
    /// The bytes a Windows named section reserved when it was created
    /// (its size, which cannot change).
    #[cfg_attr(not(windows), allow(dead_code))]
    Reservation(usize),
}
