//! A message parser over a `Region` fuzzed against a hostile peer
//! (`shm_region::hostile::region`, whose every read returns fresh bytes of
//! the fuzzer's input, as memory another process rewrites may).
//!
//! The message at offset 0 is a little-endian `u32` payload length, then
//! the payload, copied into a fixed buffer of `MAX` bytes.
//!
//! - By default the target runs `parse_fixed`, which reads the header once
//!   into a local copy, validates the copy and uses the copy. It survives
//!   any input; CI runs this (`cargo +nightly fuzz run double_fetch`).
//! - With `DOUBLE_FETCH_BUGGY=1` in the environment (read once, at the
//!   first input), it runs `parse_buggy`, which checks the length and then
//!   reads it again to use it: a double fetch. When the peer changes the
//!   length between the two reads, the second value indexes past the
//!   buffer and the parser panics, which libFuzzer reports as a crash.
//!   From an empty corpus:
//!
//!   ```sh
//!   cd fuzz && mkdir -p /tmp/df-empty && \
//!       DOUBLE_FETCH_BUGGY=1 cargo +nightly fuzz run double_fetch /tmp/df-empty -- -max_total_time=60
//!   ```
#![no_main]

use std::sync::LazyLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use shm_region::{hostile, Region};

/// The largest payload a message may carry.
const MAX: usize = 64;
/// A header and the largest payload.
const REGION_LEN: usize = 4 + MAX;

#[derive(Debug)]
enum ParseError {
    TooLong,
    Region,
}

impl From<shm_region::Error> for ParseError {
    fn from(_: shm_region::Error) -> Self {
        Self::Region
    }
}

/// Reads the header: the payload length.
fn payload_len(region: &Region) -> Result<usize, ParseError> {
    let mut header = [0u8; 4];
    region.read_at(0, &mut header)?;
    usize::try_from(u32::from_le_bytes(header)).map_err(|_| ParseError::TooLong)
}

/// The bug: the length is fetched from shared memory twice, once to check
/// it and once to use it.
fn parse_buggy<'a>(region: &Region, out: &'a mut [u8; MAX]) -> Result<&'a [u8], ParseError> {
    if payload_len(region)? > MAX {
        return Err(ParseError::TooLong);
    }
    let len = payload_len(region)?; // fetched again: the peer may have changed it
    let payload = &mut out[..len]; // panics when len > MAX
    region.read_at(4, payload)?;
    Ok(payload)
}

/// The fix: one fetch into a local copy; the copy is validated and used.
fn parse_fixed<'a>(region: &Region, out: &'a mut [u8; MAX]) -> Result<&'a [u8], ParseError> {
    let len = payload_len(region)?;
    if len > MAX {
        return Err(ParseError::TooLong);
    }
    let payload = &mut out[..len];
    region.read_at(4, payload)?;
    Ok(payload)
}

static BUGGY: LazyLock<bool> = LazyLock::new(|| {
    let buggy = std::env::var_os("DOUBLE_FETCH_BUGGY").is_some_and(|v| v == "1");
    if buggy {
        eprintln!("double_fetch: DOUBLE_FETCH_BUGGY=1, fuzzing the parser with the double fetch");
    }
    buggy
});

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(region) = hostile::region(&mut u, REGION_LEN) else {
        return;
    };
    let mut out = [0u8; MAX];
    let parsed = if *BUGGY {
        parse_buggy(&region, &mut out)
    } else {
        parse_fixed(&region, &mut out)
    };
    if let Ok(payload) = parsed {
        assert!(payload.len() <= MAX);
    }
});
