//! An [`Error`]'s `Display` (the one-line message: the operation, the path,
//! what went wrong with its numbers, the OS error and the option that would
//! allow what was refused) and its `Debug` (the fields, then that message).

use std::fmt;

use super::detail::{CutBy, Detail, Limit, SealNames};
use super::{Error, Inner};

/// The part of the message after the operation and path.
struct Describe<'a>(&'a Inner);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.detail {
            Detail::None => f.write_str(self.0.kind.describe()),
            Detail::Reason(reason) => f.write_str(reason),
            Detail::Size { requested: 0 } => f.write_str("size 0 is invalid: a region is never empty"),
            Detail::Size { requested } => write!(
                f,
                "size {requested} is too large to map (over isize::MAX or the largest file offset)"
            ),
            Detail::TooLarge { size, limit } => match limit {
                Limit::MaxSize(max) => write!(f, "size {size} is past max_size {max}"),
                Limit::Mappable => write!(
                    f,
                    "size {size} is past isize::MAX ({}), the most a mapping can hold",
                    isize::MAX
                ),
                Limit::FileSize(limit) => write!(
                    f,
                    "size {size} is past the file-size limit {limit} (RLIMIT_FSIZE)"
                ),
                Limit::AddressSpace => write!(
                    f,
                    "no address space or mapping slots left to map {size} bytes"
                ),
                Limit::AddressSpaceShare(left) => write!(
                    f,
                    "size {size} is past a quarter of the {left} bytes of address space left"
                ),
                Limit::Reservation(reserved) => write!(
                    f,
                    "size {size} is past the {reserved} bytes the named section reserved when \
                     it was created (a section cannot grow past that; create it with a larger \
                     MmapOptions::address_space)"
                ),
                Limit::GrownPast(len) => write!(
                    f,
                    "the file is {size} bytes, past the region's {len}: a holder grew it, and \
                     freezing it would allocate every page of that"
                ),
                Limit::UnboundedShare { cap, origin } => {
                    use crate::map::Origin;
                    let (what, part) = match origin {
                        Origin::Created => ("regions this process created", "a quarter"),
                        Origin::Named => ("files attached by path or name", "an eighth"),
                        Origin::Received => ("files received by descriptor", "an eighth"),
                    };
                    write!(
                        f,
                        "mapping {size} bytes would take the mappings of {what} made without a \
                         max_size past {cap} bytes, {part} of the address space, together"
                    )
                }
            },
            Detail::FileType(what) => write!(f, "not a regular file: {what}"),
            Detail::Owner { uid, euid } => write!(
                f,
                "file is owned by uid {uid}, not {euid} (our effective uid)"
            ),
            Detail::Mode { mode } => write!(
                f,
                "file is writable by group or others (mode {mode:04o})"
            ),
            Detail::Links { count } => write!(f, "file has {count} hard links, not 1"),
            Detail::Shrink { current, requested } => write!(
                f,
                "cannot shrink from {current} to {requested} bytes: a region can only grow"
            ),
            Detail::Truncated { mapped, file } => write!(
                f,
                "file was truncated below the mapped length {mapped} (it is {file} bytes now)"
            ),
            Detail::Cut {
                offset,
                len,
                cut,
                by,
                asked,
            } => {
                write!(f, "{len} bytes at offset {offset}")?;
                if let Some((asked_offset, asked_len)) = asked {
                    write!(
                        f,
                        " (of the {asked_len} bytes at offset {asked_offset} asked for)"
                    )?;
                }
                match by {
                    CutBy::Sigbus => write!(
                        f,
                        " reach pages the file lost under the mapping (a contained SIGBUS; gone from offset {cut})"
                    ),
                    CutBy::Seen => write!(
                        f,
                        " reach past offset {cut}, where this handle found the file truncated"
                    ),
                }
            }
            Detail::Bounds {
                offset,
                len,
                accessible,
            } => write!(
                f,
                "access out of bounds: {len} bytes at offset {offset}, accessible length {accessible}"
            ),
            Detail::Align { offset, align } => write!(
                f,
                "misaligned atomic access: offset {offset} is not a multiple of {align}"
            ),
            Detail::MissingParent => f.write_str("parent directory does not exist"),
            Detail::ReadOnlyDescriptor => f.write_str("descriptor is open read-only, not read-write"),
            Detail::Ordering(order) => write!(f, "{order:?} is not an ordering a load can use"),
            Detail::Lock { len } => write!(
                f,
                "cannot lock {len} bytes in memory (RLIMIT_MEMLOCK, or no privilege to lock)"
            ),
            Detail::Descriptors {
                received,
                cut: false,
                max,
            } => write!(
                f,
                "message carried {received} descriptors, more than the {max} asked for (all closed)"
            ),
            Detail::Descriptors {
                received,
                cut: true,
                max,
            } => write!(
                f,
                "message carried more than {received} descriptors (control message truncated), more than the {max} asked for (all closed)"
            ),
            Detail::NotInstalled { received, limit } => {
                write!(
                    f,
                    "the kernel installed only {received} of the message's descriptors and closed the rest, with room for more in the buffer: no free descriptor under the limit (RLIMIT_NOFILE "
                )?;
                match limit {
                    Some(n) => write!(f, "{n}")?,
                    None => f.write_str("unlimited")?,
                }
                f.write_str("), or a security module refused one (all received closed)")
            }
            Detail::Message { buf } => write!(
                f,
                "message was longer than the {buf}-byte buffer and was cut (its descriptors were closed)"
            ),
            Detail::MissingSeals { missing, what } => write!(
                f,
                "descriptor is not sealed with {} ({what})",
                SealNames(missing)
            ),
            Detail::SealedBy { reason, seals } => {
                write!(f, "{reason} (the file's seals: {})", SealNames(seals))
            }
            Detail::Holes { offset, size } => write!(
                f,
                "the sealed file of {size} bytes has a hole at offset {offset} (reading a hole allocates memory, and raises SIGBUS if that is refused): write every page (or read it once through a shared mapping, after fallocate) before sealing the file"
            ),
            Detail::Eof { done, len } => write!(
                f,
                "end of input after {done} of {len} bytes"
            ),
            Detail::Memory { len } => write!(
                f,
                "cannot get the memory for an in-memory region of {len} bytes and its capacity (more than the address space, RLIMIT_AS, RLIMIT_DATA or the commit limit allow); ask for a smaller size or capacity"
            ),
            Detail::NotEventfd { fd, found } => write!(
                f,
                "descriptor {fd} is not an eventfd: it is {found} (closed)"
            ),
            Detail::SemaphoreEventfd { fd } => write!(
                f,
                "descriptor {fd} is an eventfd in semaphore mode (EFD_SEMAPHORE): each read takes one ring, so rings would not coalesce (closed)"
            ),
            Detail::Registry { size, slots } => write!(
                f,
                "the SIGBUS registry ({slots} slots, all in use) cannot grow: no memory for more slots, so {size} bytes cannot be mapped with containment (drop mappings first)"
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &*self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &e.kind).field("op", &e.op);
        if let Some(path) = &e.path {
            d.field("path", path);
        }
        match e.detail {
            // The message says what these say.
            Detail::None
            | Detail::Reason(_)
            | Detail::MissingParent
            | Detail::ReadOnlyDescriptor => {}
            Detail::FileType(what) => {
                d.field("file_type", &what);
            }
            Detail::Size { requested } => {
                d.field("requested", &requested);
            }
            Detail::TooLarge { size, limit } => {
                d.field("size", &size);
                match limit {
                    Limit::MaxSize(max) => d.field("max_size", &max),
                    Limit::Mappable => d.field("limit", &isize::MAX),
                    Limit::AddressSpaceShare(left) => d.field("address_space_left", &left),
                    Limit::UnboundedShare { cap, origin } => {
                        d.field("unbounded_share", &cap).field("origin", &origin)
                    }
                    Limit::FileSize(limit) => d.field("rlimit_fsize", &limit),
                    Limit::AddressSpace => &mut d,
                    Limit::GrownPast(len) => d.field("region_len", &len),
                    Limit::Reservation(reserved) => d.field("section_reserved", &reserved),
                };
            }
            Detail::Owner { uid, euid } => {
                d.field("uid", &uid).field("euid", &euid);
            }
            Detail::Mode { mode } => {
                d.field("mode", &format_args!("{mode:#o}"));
            }
            Detail::Links { count } => {
                d.field("links", &count);
            }
            Detail::Shrink { current, requested } => {
                d.field("current", &current).field("requested", &requested);
            }
            Detail::Truncated { mapped, file } => {
                d.field("mapped", &mapped).field("file_len", &file);
            }
            Detail::Cut {
                offset,
                len,
                cut,
                by,
                asked,
            } => {
                d.field("offset", &offset).field("len", &len);
                match by {
                    CutBy::Sigbus => d.field("cut", &cut),
                    CutBy::Seen => d.field("truncated_at", &cut),
                };
                if let Some((asked_offset, asked_len)) = asked {
                    d.field("asked_offset", &asked_offset)
                        .field("asked_len", &asked_len);
                }
            }
            Detail::Bounds {
                offset,
                len,
                accessible,
            } => {
                d.field("offset", &offset)
                    .field("len", &len)
                    .field("accessible_len", &accessible);
            }
            Detail::Align { offset, align } => {
                d.field("offset", &offset).field("align", &align);
            }
            Detail::Ordering(order) => {
                d.field("ordering", &order);
            }
            Detail::Lock { len } | Detail::Memory { len } => {
                d.field("len", &len);
            }
            Detail::Descriptors { received, cut, max } => {
                d.field("received", &received)
                    .field("control_truncated", &cut)
                    .field("max_fds", &max);
            }
            Detail::Message { buf } => {
                d.field("buf_len", &buf);
            }
            Detail::NotInstalled { received, limit } => {
                d.field("received", &received)
                    .field("rlimit_nofile", &limit);
            }
            Detail::MissingSeals { missing, .. } => {
                d.field("missing_seals", &format_args!("{}", SealNames(missing)));
            }
            Detail::SealedBy { seals, .. } => {
                d.field("seals", &format_args!("{}", SealNames(seals)));
            }
            Detail::Eof { done, len } => {
                d.field("done", &done).field("len", &len);
            }
            Detail::Holes { offset, size } => {
                d.field("hole_at", &offset).field("size", &size);
            }
            Detail::Registry { size, slots } => {
                d.field("size", &size).field("slots", &slots);
            }
            Detail::NotEventfd { fd, found } => {
                d.field("fd", &fd).field("found", &found);
            }
            Detail::SemaphoreEventfd { fd } => {
                d.field("fd", &fd)
                    .field("reason", &format_args!("{}", Describe(e)));
            }
        }
        if let Some(os) = &e.os {
            d.field("os", &*os.error);
        }
        // The one-line message, hint included, as `std::io::Error`'s `Debug`
        // carries its message: `fn main() -> Result<(), Box<dyn Error>>`
        // prints `Debug`.
        d.field("message", &self.to_string());
        d.finish()
    }
}

/// The operation name of [`Frozen::attach_fd`](crate::Frozen::attach_fd).
pub(crate) const FROZEN_ATTACH: &str = "Frozen::attach_fd";

/// The call or option that would allow what was refused, for the end of
/// the message: every refusal an option can lift names it.
fn way_out(op: &str, detail: &Detail) -> Option<&'static str> {
    match detail {
        // A `Frozen` made by `Frozen::attach_fd` takes no options.
        Detail::TooLarge {
            limit: Limit::AddressSpaceShare(_) | Limit::UnboundedShare { .. },
            ..
        } if op == FROZEN_ATTACH => Some(
            "Frozen::attach_fd takes no max_size: MmapOptions::max_size with \
             attach_fd_read_only maps it as a region",
        ),
        Detail::ReadOnlyDescriptor => Some("use attach_fd_read_only to map it read-only"),
        Detail::TooLarge {
            limit: Limit::GrownPast(_),
            ..
        } => Some(
            "check_and_remap follows the growth (within MmapOptions::max_size), then freeze \
             freezes the file at its new size",
        ),
        Detail::Owner { .. } => Some("MmapOptions::allow_other_owner(true) accepts it"),
        Detail::Mode { .. } => Some("MmapOptions::allow_group_or_other_write(true) accepts it"),
        Detail::Links { .. } => Some("MmapOptions::allow_hard_links(true) accepts it"),
        Detail::TooLarge {
            limit: Limit::MaxSize(_),
            ..
        } => Some("a larger MmapOptions::max_size allows it"),
        Detail::TooLarge {
            limit: Limit::AddressSpaceShare(_) | Limit::UnboundedShare { .. },
            ..
        } => Some("an explicit MmapOptions::max_size allows it"),
        _ => None,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &*self.inner;
        f.write_str(e.op)?;
        if let Some(path) = &e.path {
            write!(f, " {}", path.display())?;
        }
        write!(f, ": {}", Describe(e))?;
        if let Some(os) = &e.os {
            write!(f, " ({})", *os.error)?;
        }
        if let Some(way_out) = way_out(e.op, &e.detail) {
            write!(f, "; {way_out}")?;
        }
        Ok(())
    }
}
