//! A hostile peer for fuzzing (feature `arbitrary`).
//!
//! Code that reads a [`Region`] reads memory that another process may
//! rewrite at any moment, including between two reads of the same bytes.
//! [`region`] makes a `Region` that behaves that way on purpose, driven by
//! a fuzzer's input, so that a fuzz target over your parser finds the bugs
//! such a peer could trigger: above all *double fetches*, where a value is
//! read once to check it and again to use it.
//!
//! ```
//! use arbitrary::Unstructured;
//! use shm_region::{hostile, Region};
//!
//! const MAX: usize = 64;
//!
//! /// Reads the message at offset 0 (a little-endian `u32` length, then the
//! /// payload) into `out`. Reads the header once: the copy it validated is
//! /// the copy it uses.
//! fn parse(region: &Region, out: &mut [u8; MAX]) -> Option<usize> {
//!     let mut header = [0u8; 4];
//!     region.read_at(0, &mut header).ok()?;
//!     let len = usize::try_from(u32::from_le_bytes(header)).ok()?;
//!     if len > MAX {
//!         return None;
//!     }
//!     region.read_at(4, &mut out[..len]).ok()?;
//!     Some(len)
//! }
//!
//! // In a fuzz target the bytes are the fuzzer's input. These say: no
//! // initial memory contents (0), then what successive reads return.
//! let input = [0, 3, 0, 0, 0, b'a', b'b', b'c'];
//! let mut u = Unstructured::new(&input);
//! let region = hostile::region(&mut u, 4096).unwrap();
//! let mut out = [0u8; MAX];
//! assert_eq!(parse(&region, &mut out).unwrap(), 3);
//! assert_eq!(&out[..3], b"abc");
//! // The input is used up: every later read returns zeros.
//! assert_eq!(parse(&region, &mut out).unwrap(), 0);
//! ```
//!
//! The guide's [`verifying`](crate::guide::verifying) (section "Fuzzing
//! your protocol against a hostile peer") shows a parser with a double fetch, the fuzz target that finds it
//! (`fuzz/fuzz_targets/double_fetch.rs` in the repository) and the
//! commands to run it.

use arbitrary::{Error as ArbitraryError, Unstructured};

use crate::protocol::Publisher;
use crate::sync::Arc;
use crate::sys::Mapping;
use crate::view::Region;

/// The largest `len` [`region`] accepts: 1 MiB.
///
/// The memory behind a hostile region is allocated whole (and zeroed) each
/// time, once per fuzz input, so it is kept small.
pub const MAX_LEN: usize = 1 << 20;

/// A [`Region`] of `len` bytes that behaves like memory a hostile peer
/// writes concurrently, driven by the rest of `u`'s input.
///
/// It takes *all* the input that remains in `u` (draw anything else the
/// target needs from `u` first) and reads it as:
///
/// ```text
/// [k] [min(k, len) bytes: initial contents] [stream: every later byte]
/// ```
///
/// - `k` is the first byte (0 when the input is empty). The next
///   `min(k, len)` bytes (fewer if the input ends first) become the first
///   bytes of the region's memory; the rest of the memory is zero.
/// - [`Region::read_at`] ignores the memory and fills its buffer with the
///   next bytes of the stream, whatever the offset, so two reads of the
///   same offset return different bytes, as they may when another process
///   writes in between. [`Region::load_u32`] and [`Region::load_u64`] take
///   the next 4 or 8 stream bytes, in native byte order (what `read_at` of
///   the same word followed by `from_ne_bytes` would give). Once the stream
///   is used up, reads and loads return zeros; they never panic.
/// - [`Region::write_at`] writes the memory, as on any region: the bytes are
///   not read back by `read_at` or the loads (the peer may overwrite them at
///   once), but [`Region::atomic_u32`] and [`Region::atomic_u64`], which
///   reference the memory itself, see them. Those atomics start from the
///   initial contents above, and the peer does not change them afterwards.
///   [`Region::as_ptr`] points to the memory too, and
///   [`Region::wait_u32`] and [`Region::wake_u32`] act on it (taking no
///   input).
///
/// Clones of the region share the stream: whichever reads first gets the
/// next bytes. Every check is that of any writable region of `len` bytes,
/// with the same errors ([`ErrorKind::OutOfBounds`](crate::ErrorKind::OutOfBounds),
/// [`ErrorKind::Misaligned`](crate::ErrorKind::Misaligned),
/// [`ErrorKind::InvalidOrdering`](crate::ErrorKind::InvalidOrdering)), and
/// a refused access consumes no input. The region never grows: its
/// generation is 0 and it is always current.
///
/// # Errors
///
/// [`arbitrary::Error::IncorrectFormat`] if `len` is 0 or over
/// [`MAX_LEN`] (no input is taken then), or if the allocator cannot
/// provide `len` bytes.
pub fn region(u: &mut Unstructured<'_>, len: usize) -> arbitrary::Result<Region> {
    if len == 0 || len > MAX_LEN {
        return Err(ArbitraryError::IncorrectFormat);
    }
    let data = u.bytes(u.len())?;
    let (k, rest) = match data.split_first() {
        Some((&k, rest)) => (usize::from(k), rest),
        None => (0, data),
    };
    let (init, stream) = rest.split_at(k.min(len).min(rest.len()));
    let map = Mapping::hostile(len, init, stream.to_vec())
        .map_err(|_| ArbitraryError::IncorrectFormat)?;
    let publisher = Publisher::new(Arc::new(map), len);
    Ok(Region::new(publisher.current().clone()))
}
