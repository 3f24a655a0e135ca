//! The file-system names the portable code calls (`map.rs`), on Windows.

use crate::error::{Error, Result};

/// A length as a file size: every `usize` fits a `u64` on Windows targets.
pub(crate) fn file_len(len: usize, op: &'static str) -> Result<u64> {
    u64::try_from(len).map_err(|_| Error::invalid_size(op, len))
}

/// Whether the handle was opened without write access: never asked on
/// Windows today (files by path are not built there yet), so `false`.
pub(crate) fn is_open_read_only(_file: crate::sys::BorrowedFile<'_>) -> bool {
    false
}
