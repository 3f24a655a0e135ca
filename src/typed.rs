//! Typed copies (feature `zerocopy`): [`Region::read_val`] and
//! [`Region::write_val`], over the checked copies of `read_at` and
//! `write_at`. No `unsafe` here: zerocopy's traits say which types any
//! bytes make valid (`FromBytes`) and which have no padding to leak
//! (`IntoBytes`).

use std::io;

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::error::{Error, ErrorKind, Result};
use crate::view::Region;

/// Reads the region from `offset` on through [`Region::read_at`], keeping
/// the first error so that the caller gets it back unchanged.
struct Reader<'a> {
    region: &'a Region,
    offset: usize,
    error: Option<Error>,
}

impl io::Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.region.read_at(self.offset, buf) {
            Ok(()) => {
                // Cannot overflow: `read_at` checked that `offset + len` is
                // within the region's length.
                self.offset += buf.len();
                Ok(buf.len())
            }
            Err(e) => {
                self.error = Some(e.clone());
                Err(e.into())
            }
        }
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "zerocopy")))]
impl Region {
    /// Copies a `T` out of the region at `offset`, which need not be
    /// aligned.
    ///
    /// The `size_of::<T>()` bytes at `offset` are copied with
    /// [`read_at`](Self::read_at), so the bounds, the truncation limit and
    /// the errors are `read_at`'s, and the copy may race writers as
    /// `read_at` may: the value may then mix bytes of several writes, which
    /// `FromBytes` makes a valid `T` all the same (validate it as you would
    /// bytes from a peer). The bytes go straight into a zeroed `T` on the
    /// stack (zerocopy's `FromBytes::read_from_io`); nothing is allocated.
    /// A `T` of size 0 reads nothing and is refused only where `read_at`
    /// refuses an empty read (`offset` past the accessible length).
    ///
    /// ```
    /// # fn main() -> Result<(), shm_region::Error> {
    /// use shm_region::MmapRegion;
    /// use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    ///
    /// #[derive(Debug, PartialEq, FromBytes, IntoBytes, Immutable, KnownLayout)]
    /// #[repr(C)]
    /// struct Header {
    ///     magic: [u8; 4],
    ///     version: u32,
    ///     len: u64,
    /// }
    ///
    /// let region = MmapRegion::in_memory(4096)?;
    /// let header = Header { magic: *b"SHMR", version: 2, len: 4096 };
    /// region.region().write_val(3, &header)?;              // any offset
    /// assert_eq!(region.region().read_val::<Header>(3)?, header);
    /// assert_eq!(region.region().read_val::<u64>(3 + 8)?, 4096);
    /// assert!(region.region().read_val::<Header>(4090).is_err()); // out of bounds
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`read_at`](Self::read_at) for the same range, unchanged
    /// (operation `"read_at"`): [`ErrorKind::OutOfBounds`] if
    /// `size_of::<T>()` bytes at `offset` (computed without overflow) are
    /// not within the view's length, [`ErrorKind::Truncated`] if they are
    /// but reach past a truncation the handle found.
    pub fn read_val<T: FromBytes>(&self, offset: usize) -> Result<T> {
        if std::mem::size_of::<T>() == 0 {
            // `read_exact` makes no read for an empty buffer: check the
            // offset as `read_at` checks an empty read.
            self.read_at(offset, &mut [])?;
        }
        let mut reader = Reader {
            region: self,
            offset,
            error: None,
        };
        T::read_from_io(&mut reader).map_err(|_| {
            reader
                .error
                .take()
                .unwrap_or_else(|| Error::new(ErrorKind::OutOfBounds, "read_at"))
        })
    }

    /// Copies `value` into the region at `offset`, which need not be
    /// aligned: its `size_of::<T>()` bytes (`IntoBytes::as_bytes`, no
    /// padding), with [`write_at`](Self::write_at), so the bounds, the
    /// truncation limit, the racing guarantees and the errors are
    /// `write_at`'s. See [`read_val`](Self::read_val) for an example.
    ///
    /// # Errors
    ///
    /// Those of [`write_at`](Self::write_at) for the same range, unchanged
    /// (operation `"write_at"`): [`ErrorKind::ReadOnly`] for a read-only
    /// mapping, [`ErrorKind::OutOfBounds`] if the bytes are not within the
    /// view's length, [`ErrorKind::Truncated`] if they are but reach past a
    /// truncation the handle found. Nothing is written then.
    pub fn write_val<T: IntoBytes + Immutable>(&self, offset: usize, value: &T) -> Result<()> {
        self.write_at(offset, value.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_reader_moves_on_by_what_each_read_returned() {
        let host = crate::MmapRegion::in_memory(4096).unwrap();
        let region = host.region();
        region.write_at(100, b"abcdefgh").unwrap();
        let mut r = Reader {
            region: &region,
            offset: 100,
            error: None,
        };
        let (mut first, mut second) = ([0u8; 3], [0u8; 5]);
        assert_eq!(r.read(&mut first).unwrap(), 3);
        assert_eq!(r.read(&mut second).unwrap(), 5);
        assert_eq!((&first, &second), (b"abc", b"defgh"));
        assert_eq!(r.offset, 108);
        assert!(r.error.is_none());
    }
}
