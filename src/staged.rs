//! Staged creation: build and initialise a region under a temporary name,
//! then publish it at its final path atomically.

use std::fmt;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::fs;
use crate::region::MmapRegion;
use crate::view::Region;

/// A region created under a temporary name, not yet visible at its path.
///
/// Made by [`MmapRegion::stage`]. Initialise it through
/// [`region`](Self::region), then [`publish`](Self::publish) it: attachers
/// by path see either nothing or the whole, initialised segment. Dropping a
/// `Staged` removes the temporary file.
///
/// ```
/// # #[cfg(miri)] fn main() {} // Miri cannot map files.
/// # #[cfg(not(miri))]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use shm_region::MmapRegion;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("segment");
///
/// let staged = MmapRegion::stage(&path, 4096)?;
/// staged.region().write_at(0, b"ready")?;
/// assert!(MmapRegion::attach(&path).is_err());     // not visible yet
/// let host = staged.publish()?;                       // atomic, never replaces
///
/// let guest = MmapRegion::attach(&path)?;
/// let mut buf = [0u8; 5];
/// guest.region().read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"ready");
/// # drop(host); Ok(()) }
/// ```
#[derive(Debug)]
pub struct Staged {
    region: MmapRegion,
    final_name: std::ffi::OsString,
    final_path: PathBuf,
}

impl Staged {
    /// A stage of `region` (a temporary file in the directory of
    /// `final_path`), to be published as `final_name`.
    pub(crate) fn from_parts(
        region: MmapRegion,
        final_name: std::ffi::OsString,
        final_path: PathBuf,
    ) -> Self {
        Self {
            region,
            final_name,
            final_path,
        }
    }

    /// A view of the staged region, for initialising it.
    #[must_use]
    pub fn region(&self) -> Region {
        self.region.region()
    }

    /// The staged handle, for growing it before publication.
    pub fn handle(&mut self) -> &mut MmapRegion {
        &mut self.region
    }

    /// The path the region will be published at.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Publishes the region at its path, atomically and only if nothing is
    /// there (`renameat2(RENAME_NOREPLACE)` on Linux, `link` + `unlink`
    /// elsewhere). The returned handle owns the file, as a
    /// [`FileCleanup::Manual`](crate::FileCleanup::Manual) creator does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyExists`] if something is at the path,
    /// [`ErrorKind::Truncated`] if the staged file is shorter than its
    /// mapping (a peer truncated it, or a contained `SIGBUS` cut the
    /// mapping; checked just before the rename), and [`ErrorKind::Os`] for
    /// other failures; the [`PublishError`] gives the stage back, still
    /// unpublished.
    pub fn publish(self) -> std::result::Result<MmapRegion, PublishError> {
        self.finish(false)
    }

    /// Publishes the region at its path, atomically replacing a file already
    /// there (`rename`). Processes that still map the old file keep their
    /// old memory, intact: nothing is truncated. Use it to replace a stale
    /// segment left by a crashed process.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Truncated`] as for [`publish`](Self::publish), and
    /// [`ErrorKind::Os`] if the rename fails (for example, a directory is at
    /// the path); the [`PublishError`] gives the stage back.
    pub fn publish_replace(self) -> std::result::Result<MmapRegion, PublishError> {
        self.finish(true)
    }

    fn finish(mut self, replace: bool) -> std::result::Result<MmapRegion, PublishError> {
        let op = if replace {
            "publish_replace"
        } else {
            "publish"
        };
        // Never publish a file shorter than the mapping (truncated under
        // it, or cut by a contained SIGBUS): peers would attach to less
        // than the handle claims. A larger file is followed.
        if let Err(error) = self.region.check_and_remap() {
            return Err(PublishError {
                error: error.with_path(&self.final_path),
                stage: Box::new(self),
            });
        }
        let Some(loc) = self.region.location() else {
            let error = Error::new(ErrorKind::NotFound, op).with_path(&self.final_path);
            return Err(PublishError {
                error,
                stage: Box::new(self),
            });
        };
        let dir = loc.dir.as_fd();
        let result = if replace {
            fs::rename_replace(dir, &loc.name, &self.final_name, op)
        } else {
            fs::rename_noreplace(dir, &loc.name, &self.final_name, op)
        };
        match result {
            Ok(()) => {
                self.region.published_as(self.final_name, self.final_path);
                Ok(self.region)
            }
            Err(error) => Err(PublishError {
                error: error.with_path(&self.final_path),
                stage: Box::new(self),
            }),
        }
    }
}

/// A failed [`Staged::publish`] or [`Staged::publish_replace`]: the error,
/// and the stage, still unpublished, to retry or drop.
pub struct PublishError {
    error: Error,
    stage: Box<Staged>,
}

impl PublishError {
    /// What went wrong.
    #[must_use]
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The kind of what went wrong (for example
    /// [`ErrorKind::AlreadyExists`]).
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }

    /// The stage, to retry (for example with
    /// [`publish_replace`](Staged::publish_replace)) or to drop.
    #[must_use]
    pub fn into_stage(self) -> Staged {
        *self.stage
    }
}

impl fmt::Debug for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishError")
            .field("error", &self.error)
            .field("path", &self.stage.final_path)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PublishError {
    /// The error's message, which names the path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<PublishError> for std::io::Error {
    /// The stage is dropped (its temporary file removed); the error is kept.
    fn from(e: PublishError) -> Self {
        e.error.into()
    }
}
