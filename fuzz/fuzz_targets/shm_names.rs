//! POSIX shared-memory names: `MmapRegion::create_shm`, `attach_shm` and
//! `attach_shm_read_only` with arbitrary names (slashes, dots, NUL, up to
//! ~300 bytes) and sizes.
//!
//! Asserted, for every input:
//! - a name that is not 1 to 255 bytes after one optional leading `/`, or
//!   has another `/` or a NUL, or is `.` or `..`, is `InvalidPath` for all
//!   three calls, and creates nothing;
//! - a valid name (always made unique: this process's id and a counter,
//!   so that parallel runs never meet) is created under `/dev/shm` with
//!   `Manual` and never named with `Auto`; attaching round-trips bytes both
//!   ways; a read-only attach refuses writes;
//! - after the handles are dropped, `/dev/shm` holds no segment of this
//!   process, and the current directory has no new entry.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shm_region::{ErrorKind, FileCleanup, MmapRegion};

#[derive(Arbitrary, Debug)]
enum Name {
    /// `[/]` + the unique prefix + `tail`, the tail cycled up to `repeat`
    /// bytes (so that lengths reach past 255).
    Prefixed {
        slash: bool,
        tail: String,
        repeat: u16,
    },
    /// The fuzzer's string as it is, when it is an invalid name (a valid
    /// one is prefixed, so that nothing outside this run is touched).
    Raw(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Size {
    Zero,
    Bytes(u16),
    Pages(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    name: Name,
    size: Size,
    manual: bool,
    /// Offset (modulo the size) and bytes the host writes, read back by
    /// the guest; then the guest writes `reply` at the same offset.
    offset: u32,
    bytes: Vec<u8>,
    reply: Vec<u8>,
    read_only_guest: bool,
    /// Drop the host before the guest.
    host_first: bool,
    /// Attach under the other spelling (with or without the leading `/`).
    respell: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn prefix() -> String {
    format!("srfz-{}-", std::process::id())
}

/// The documented rule, written out independently of the crate.
fn valid(name: &str) -> bool {
    let bare = name.strip_prefix('/').unwrap_or(name);
    !bare.is_empty()
        && bare != "."
        && bare != ".."
        && bare.len() <= 255
        && !bare.contains('/')
        && !bare.contains('\0')
}

fn ours() -> BTreeSet<String> {
    let p = prefix();
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&p))
        .collect()
}

fn cwd_entries() -> BTreeSet<std::ffi::OsString> {
    std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

fn name_of(input: &Name) -> String {
    let unique = format!("{}{}-", prefix(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let prefixed = |slash: bool, tail: &str, len: usize| {
        let mut s = String::from(if slash { "/" } else { "" });
        s.push_str(&unique);
        let chars: Vec<char> = tail.chars().collect();
        if !chars.is_empty() {
            let mut i = 0;
            while s.len() < len {
                s.push(chars[i % chars.len()]);
                i += 1;
            }
        }
        s
    };
    match input {
        Name::Prefixed {
            slash,
            tail,
            repeat,
        } => prefixed(*slash, tail, usize::from(*repeat % 320)),
        Name::Raw(raw) if !valid(raw) => raw.clone(),
        Name::Raw(raw) => prefixed(raw.starts_with('/'), raw, 0) + raw.trim_start_matches('/'),
    }
}

fn size_of(s: Size) -> usize {
    match s {
        Size::Zero => 0,
        Size::Bytes(n) => usize::from(n),
        Size::Pages(p) => usize::from(p % 64) * 4096,
    }
}

fn iteration(input: &Input, name: &str) {
    let size = size_of(input.size);
    let cleanup = if input.manual {
        FileCleanup::Manual
    } else {
        FileCleanup::Auto
    };
    if !valid(name) {
        let e = MmapRegion::create_shm(name, size.max(1), cleanup).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidPath, "{name:?}: {e}");
        let e = MmapRegion::attach_shm(name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidPath, "{name:?}: {e}");
        let e = MmapRegion::attach_shm_read_only(name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidPath, "{name:?}: {e}");
        return;
    }
    let bare = name.strip_prefix('/').unwrap_or(name);
    let path = Path::new("/dev/shm").join(bare);
    let host = match MmapRegion::create_shm(name, size, cleanup) {
        Ok(host) => host,
        Err(e) => {
            assert_eq!(size, 0, "{name:?}, {size} bytes: {e}");
            assert_eq!(e.kind(), ErrorKind::InvalidSize, "{e}");
            assert!(!path.exists(), "a failed create left {path:?}");
            return;
        }
    };
    assert_ne!(size, 0);
    assert_eq!(host.len(), size);
    assert_eq!(path.exists(), input.manual, "{path:?}");
    let other = if input.respell {
        if name.starts_with('/') {
            bare.to_owned()
        } else {
            format!("/{name}")
        }
    } else {
        name.to_owned()
    };
    let attach = if input.read_only_guest {
        MmapRegion::attach_shm_read_only
    } else {
        MmapRegion::attach_shm
    };
    if !input.manual {
        let e = attach(&other).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        return;
    }
    let guest = attach(&other).unwrap();
    assert_eq!(guest.len(), size);
    let offset = usize::try_from(input.offset).unwrap() % size;
    let n = input.bytes.len().min(size - offset);
    host.region().write_at(offset, &input.bytes[..n]).unwrap();
    let mut seen = vec![0u8; n];
    guest.region().read_at(offset, &mut seen).unwrap();
    assert_eq!(seen, input.bytes[..n]);
    let m = input.reply.len().min(size - offset);
    let wrote = guest.region().write_at(offset, &input.reply[..m]);
    if input.read_only_guest {
        // Refused whatever its length, an empty write too.
        assert_eq!(wrote.unwrap_err().kind(), ErrorKind::ReadOnly);
    } else {
        wrote.unwrap();
        let mut back = vec![0u8; m];
        host.region().read_at(offset, &mut back).unwrap();
        assert_eq!(back, input.reply[..m]);
    }
    if input.host_first {
        drop(host);
        assert!(!path.exists(), "the owner's drop left {path:?}");
        drop(guest);
    } else {
        drop(guest);
        assert!(path.exists(), "a guest's drop removed {path:?}");
        drop(host);
    }
    assert!(
        !path.exists(),
        "{path:?} left after every handle was dropped"
    );
}

fuzz_target!(|input: Input| {
    let cwd = cwd_entries();
    let name = name_of(&input.name);
    iteration(&input, &name);
    let left = ours();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
    assert_eq!(cwd_entries(), cwd, "the current directory changed");
});
