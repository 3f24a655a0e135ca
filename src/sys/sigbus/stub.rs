//! Everywhere but Linux outside Miri and loom: no registry and no handler,
//! behind the same interface ([`install`] returns `ENOTSUP`; every
//! mapping's cut offset stays `usize::MAX`).

use crate::sys::Errno;

use super::NOT_CUT;

/// No registry here: every mapping is unregistered.
#[derive(Debug)]
pub(crate) struct Registration;

#[allow(
    clippy::unused_self,
    clippy::unnecessary_wraps,
    reason = "the same interface as the Linux registry"
)]
#[cfg_attr(
    windows,
    allow(
        dead_code,
        reason = "Windows mappings are never registered: there is no SIGBUS"
    )
)]
impl Registration {
    pub(crate) fn none() -> Self {
        Self
    }

    pub(crate) fn register(_base: *mut u8, _len: usize, _writable: bool) -> Result<Self, Errno> {
        Ok(Self)
    }

    #[inline]
    pub(crate) fn cut(&self) -> usize {
        NOT_CUT
    }

    pub(crate) fn set_advice(&self, _dont_dump: bool, _dont_fork: bool) {}

    pub(crate) fn join(&mut self, _earlier: &Self) {}

    pub(crate) fn retire(&self) {}

    pub(crate) fn release(&self) {}
}

#[cfg(unix)]
pub(crate) fn is_installed() -> bool {
    false
}

pub(crate) fn slots() -> usize {
    0
}

#[cfg(unix)]
pub(crate) fn install() -> Result<(), Errno> {
    Err(Errno::NOTSUP)
}
