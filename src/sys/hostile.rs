//! Hostile backing (feature `arbitrary`): an in-memory range (`memory.rs`,
//! invariants 1 and 2) whose initial bytes come from a fuzzer's input, plus
//! the rest of that input, which every copy out of the range and every
//! `load_u32`/`load_u64` draws from instead of reading the memory. Copies
//! into the range and the atomic references use the memory as usual.
//!
//! The range is made by `Mapping::in_memory`; its one `unsafe` operation
//! copies the initial bytes in before the range is shared.

use std::ptr;
use std::sync::{Mutex, PoisonError};

use super::Errno;

use super::mapping::Mapping;

/// The input a hostile region's reads draw from, shared by every view
/// (they share the `Mapping`) and consumed from `&self`.
#[derive(Debug)]
pub(crate) struct Input(Mutex<Stream>);

#[derive(Debug)]
struct Stream {
    bytes: Vec<u8>,
    /// Bytes of `bytes` already handed out; never past `bytes.len()`.
    used: usize,
}

impl Input {
    /// Fills `buf` with the next `buf.len()` input bytes, and with zeros
    /// once the input is exhausted.
    pub(super) fn fill(&self, buf: &mut [u8]) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let rest = s.bytes.get(s.used..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        let (head, tail) = buf.split_at_mut(n);
        head.copy_from_slice(&rest[..n]);
        tail.fill(0);
        s.used += n;
    }

    /// The next `N` input bytes, as [`fill`](Self::fill) gives them.
    pub(super) fn take<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

impl Mapping {
    /// A writable in-memory range of `len` bytes (rounded up to pages) whose
    /// first `init.len()` bytes are `init` and the rest zero, and whose
    /// copies out and loads draw from `stream` (zeros once it is used up).
    ///
    /// # Errors
    ///
    /// As [`Mapping::in_memory`]; `EINVAL` if `init` is longer than `len`.
    pub(crate) fn hostile(len: usize, init: &[u8], stream: Vec<u8>) -> Result<Self, Errno> {
        if init.len() > len {
            return Err(Errno::INVAL);
        }
        let mut map = Self::in_memory(len)?;
        // Accessible before anything touches it (Windows: committed).
        map.commit(len)?;
        // SAFETY: `map` was allocated just above with at least `len >=
        // init.len()` bytes (checked), writable and zeroed, and committed
        // on Windows (invariant 2, W11),
        // and is not shared yet: no other reference to it, in this thread or
        // another, exists before it is returned, so this plain copy races
        // nothing (invariant 3 concerns memory already shared). `init` is
        // the caller's slice, so the ranges cannot overlap. (A plain copy
        // rather than `Mapping::write`: the bytes are later accessed by
        // word-sized atomics, and a history of byte-sized atomic stores
        // under them is a mixed-size pattern Miri cannot model.)
        unsafe { ptr::copy_nonoverlapping(init.as_ptr(), map.base(), init.len()) };
        map.hostile = Some(Box::new(Input(Mutex::new(Stream {
            bytes: stream,
            used: 0,
        }))));
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn reads_follow_the_stream_then_zeros_while_memory_keeps_writes() {
        let map = Mapping::hostile(16, &[9, 8], vec![1, 2, 3, 4, 5]).unwrap();
        let mut b = [0xff; 3];
        assert!(map.read(0, &mut b));
        assert_eq!(b, [1, 2, 3]);
        assert!(map.read(0, &mut b));
        assert_eq!(b, [4, 5, 0]);
        assert!(map.read(0, &mut b));
        assert_eq!(b, [0, 0, 0]);
        assert!(!map.read(map.len, &mut b), "bounds are checked first");
        assert_eq!(
            map.atomic_u32(0).unwrap().load(Ordering::Relaxed),
            u32::from_ne_bytes([9, 8, 0, 0])
        );
        assert!(map.write(4, &7u32.to_ne_bytes()));
        assert_eq!(map.atomic_u32(4).unwrap().load(Ordering::Relaxed), 7);
        assert_eq!(
            map.load_u32(4, Ordering::Acquire),
            Some(0),
            "loads draw from the stream"
        );
    }

    #[test]
    fn init_longer_than_the_region_is_refused() {
        assert_eq!(
            Mapping::hostile(1, &[1, 2], Vec::new()).unwrap_err(),
            Errno::INVAL
        );
    }
}
