//! Random grow / remap / access sequences over one creator and up to four
//! attached handles and their views, checked against a shadow model after
//! every step.
//!
//! The shadow model: the file's bytes and length, whether it is still linked
//! at its path, and for each handle its length, generation, truncation limit
//! and ownership; for each view the handle it came from, its length and its
//! generation. Every operation's result (value or error kind) must be the one
//! the model predicts, and every byte read must be the model's byte.
//!
//! A hostile peer may truncate the file. The crate guarantees checked
//! accesses are fenced only after a handle has *detected* the truncation, so
//! the harness lets every live handle look right after truncating (as a
//! careful application would), and drops views whose handle is gone, which
//! nothing could fence (the documented `SIGBUS` window of path-backed files).
#![no_main]

use std::sync::atomic::Ordering;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shm_region::{ErrorKind, FileCleanup, MmapOptions, MmapRegion, Region};

const PAGE: usize = 4096;
const MAX_LEN: usize = 1 << 20;
const MAX_LIVE_ATTACHED: usize = 4;
const MAX_HANDLES_EVER: usize = 12;
const MAX_VIEWS: usize = 8;

#[derive(Arbitrary, Debug)]
enum Op {
    /// The creator grows by `by + 1` bytes.
    Grow {
        by: u16,
    },
    /// The creator grows by whole pages (crosses small reservations).
    GrowPages {
        pages: u8,
    },
    /// Handle `h` runs `check_and_remap`.
    Remap {
        h: u8,
    },
    Attach,
    DropHandle {
        h: u8,
    },
    TakeOwnership {
        h: u8,
    },
    ReleaseOwnership {
        h: u8,
    },
    NewView {
        h: u8,
    },
    DropView {
        v: u8,
    },
    Refresh {
        v: u8,
    },
    Read {
        v: u8,
        offset: u32,
        len: u16,
    },
    Write {
        v: u8,
        offset: u32,
        len: u16,
        byte: u8,
    },
    Atomic {
        v: u8,
        offset: u32,
        wide: bool,
        add: u32,
    },
    /// A hostile peer truncates the file below its length.
    Truncate {
        to: u32,
    },
    /// A peer extends the file (sparse) by `by + 1` bytes.
    PeerGrow {
        by: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    initial: u16,
    small_reservation: bool,
    ops: Vec<Op>,
}

struct Handle {
    region: Option<MmapRegion>,
    len: usize,
    generation: u64,
    limit: usize,
    owner: bool,
}

struct View {
    handle: usize,
    region: Region,
    len: usize,
    generation: u64,
}

struct World {
    dir: tempfile::TempDir,
    options: MmapOptions,
    file: Vec<u8>,
    linked: bool,
    handles: Vec<Handle>,
    views: Vec<View>,
}

/// An offset chosen by the top two bits of `raw`: anywhere up to two pages
/// past the view, just around the view's end or the truncation fence (for an
/// access of `n` bytes), or one whose sum with `n` overflows.
fn offset_of(raw: u32, n: usize, len: usize, accessible: usize) -> usize {
    let low = usize::try_from(raw & 0xffff).unwrap();
    let around = |end: usize| (end.saturating_sub(n) + low % 16).saturating_sub(8);
    match raw >> 30 {
        0 => low % (len + 2 * PAGE),
        1 => around(len),
        2 => around(accessible),
        _ => usize::MAX - (low & 0xff),
    }
}

fn fits(offset: usize, n: usize, limit: usize) -> bool {
    offset <= limit && n <= limit - offset
}

impl World {
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("segment")
    }

    fn live(&self, h: u8) -> Option<usize> {
        let live: Vec<usize> = (0..self.handles.len())
            .filter(|&i| self.handles[i].region.is_some())
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[usize::from(h) % live.len()])
    }

    fn view(&self, v: u8) -> Option<usize> {
        if self.views.is_empty() {
            None
        } else {
            Some(usize::from(v) % self.views.len())
        }
    }

    fn accessible(&self, v: &View) -> usize {
        v.len.min(self.handles[v.handle].limit)
    }

    /// The creator grows to `new`.
    fn grow_to(&mut self, new: usize) {
        let file_len = self.file.len();
        let Some(h) = self.handles.get_mut(0).filter(|h| h.region.is_some()) else {
            return;
        };
        if new > MAX_LEN || new <= h.len {
            return;
        }
        let res = h.region.as_mut().unwrap().resize(new);
        if h.limit != usize::MAX || file_len < h.len {
            assert_eq!(res.unwrap_err().kind(), ErrorKind::Truncated);
            h.limit = h.limit.min(file_len);
            return;
        }
        res.unwrap();
        h.len = new;
        h.generation += 1;
        if new > file_len {
            self.file.resize(new, 0);
        }
    }

    fn remap(&mut self, i: usize) {
        let file_len = self.file.len();
        let h = &mut self.handles[i];
        let res = h.region.as_mut().unwrap().check_and_remap();
        if h.limit != usize::MAX || file_len < h.len {
            // Truncations are sticky, even once the file grew back.
            assert_eq!(res.unwrap_err().kind(), ErrorKind::Truncated);
            h.limit = h.limit.min(file_len);
        } else if file_len == h.len {
            assert!(!res.unwrap());
        } else {
            assert!(res.unwrap());
            h.len = file_len;
            h.generation += 1;
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Grow { by } => {
                let cur = self.handles[0].len;
                self.grow_to(cur + usize::from(by) + 1);
            }
            Op::GrowPages { pages } => {
                let cur = self.handles[0].len;
                self.grow_to(cur + (usize::from(pages % 64) + 1) * PAGE);
            }
            Op::Remap { h } => {
                if let Some(i) = self.live(h) {
                    self.remap(i);
                }
            }
            Op::Attach => {
                let live_attached = self.handles[1..]
                    .iter()
                    .filter(|h| h.region.is_some())
                    .count();
                if live_attached >= MAX_LIVE_ATTACHED || self.handles.len() >= MAX_HANDLES_EVER {
                    return;
                }
                let res = self.options.attach(&self.path());
                if !self.linked {
                    assert_eq!(res.unwrap_err().kind(), ErrorKind::NotFound);
                } else if self.file.is_empty() {
                    assert_eq!(res.unwrap_err().kind(), ErrorKind::EmptyFile);
                } else {
                    let region = res.unwrap();
                    assert_eq!((region.len(), region.generation()), (self.file.len(), 0));
                    self.handles.push(Handle {
                        region: Some(region),
                        len: self.file.len(),
                        generation: 0,
                        limit: usize::MAX,
                        owner: false,
                    });
                }
            }
            Op::DropHandle { h } => {
                if let Some(i) = self.live(h) {
                    drop(self.handles[i].region.take());
                    if self.handles[i].owner {
                        self.linked = false;
                    }
                    assert_eq!(self.path().exists(), self.linked);
                }
            }
            Op::TakeOwnership { h } => {
                if let Some(i) = self.live(h) {
                    self.handles[i].region.as_mut().unwrap().take_ownership();
                    self.handles[i].owner = true;
                }
            }
            Op::ReleaseOwnership { h } => {
                if let Some(i) = self.live(h) {
                    self.handles[i].region.as_mut().unwrap().release_ownership();
                    self.handles[i].owner = false;
                }
            }
            Op::NewView { h } => {
                if self.views.len() >= MAX_VIEWS {
                    return;
                }
                if let Some(i) = self.live(h) {
                    let h = &self.handles[i];
                    let region = h.region.as_ref().unwrap().region();
                    assert!(region.is_current());
                    self.views.push(View {
                        handle: i,
                        region,
                        len: h.len,
                        generation: h.generation,
                    });
                }
            }
            Op::DropView { v } => {
                if let Some(v) = self.view(v) {
                    self.views.swap_remove(v);
                }
            }
            Op::Refresh { v } => {
                if let Some(v) = self.view(v) {
                    let (len, generation) = {
                        let h = &self.handles[self.views[v].handle];
                        (h.len, h.generation)
                    };
                    let view = &mut self.views[v];
                    let stale = view.generation != generation;
                    assert_eq!(view.region.is_current(), !stale);
                    assert_eq!(view.region.refresh(), stale);
                    view.len = len;
                    view.generation = generation;
                }
            }
            Op::Read { v, offset, len } => {
                if let Some(v) = self.view(v) {
                    let view = &self.views[v];
                    let limit = self.accessible(view);
                    let n = usize::from(len);
                    let offset = offset_of(offset, n, view.len, limit);
                    let mut buf = vec![0xA5; n];
                    let res = view.region.read_at(offset, &mut buf);
                    if fits(offset, n, limit) {
                        res.unwrap();
                        assert_eq!(buf[..], self.file[offset..offset + n]);
                    } else {
                        assert_eq!(res.unwrap_err().kind(), ErrorKind::OutOfBounds);
                        assert!(buf.iter().all(|&b| b == 0xA5), "failed read wrote");
                    }
                }
            }
            Op::Write {
                v,
                offset,
                len,
                byte,
            } => {
                if let Some(v) = self.view(v) {
                    let view = &self.views[v];
                    let limit = self.accessible(view);
                    let n = usize::from(len);
                    let offset = offset_of(offset, n, view.len, limit);
                    let res = view.region.write_at(offset, &vec![byte; n]);
                    if fits(offset, n, limit) {
                        res.unwrap();
                        self.file[offset..offset + n].fill(byte);
                    } else {
                        assert_eq!(res.unwrap_err().kind(), ErrorKind::OutOfBounds);
                    }
                }
            }
            Op::Atomic {
                v,
                offset,
                wide,
                add,
            } => {
                if let Some(v) = self.view(v) {
                    let view = &self.views[v];
                    let limit = self.accessible(view);
                    let size = if wide { 8 } else { 4 };
                    let offset = offset_of(offset, size, view.len, limit);
                    let expected_err = if offset % size != 0 {
                        Some(ErrorKind::Misaligned)
                    } else if !fits(offset, size, limit) {
                        Some(ErrorKind::OutOfBounds)
                    } else {
                        None
                    };
                    let old = if wide {
                        view.region.atomic_u64(offset).map(|a| {
                            a.fetch_add(u64::from(add), Ordering::AcqRel)
                                .to_le_bytes()
                                .to_vec()
                        })
                    } else {
                        view.region
                            .atomic_u32(offset)
                            .map(|a| a.fetch_add(add, Ordering::AcqRel).to_le_bytes().to_vec())
                    };
                    match expected_err {
                        Some(kind) => assert_eq!(old.unwrap_err().kind(), kind),
                        None => {
                            let old = old.unwrap();
                            let word = &mut self.file[offset..offset + size];
                            assert_eq!(old[..], word[..]);
                            let mut v = [0u8; 8];
                            v[..size].copy_from_slice(word);
                            let new = u64::from_le_bytes(v).wrapping_add(u64::from(add));
                            word.copy_from_slice(&new.to_le_bytes()[..size]);
                        }
                    }
                }
            }
            Op::Truncate { to } => {
                if self.file.is_empty() || !self.any_live() {
                    return;
                }
                let to = usize::try_from(to).unwrap() % self.file.len();
                self.truncate_file(to);
                self.file.truncate(to);
                // Every live handle looks at once; views of dropped handles
                // cannot be fenced and are dropped.
                for i in 0..self.handles.len() {
                    if self.handles[i].region.is_some() {
                        self.remap(i);
                    }
                }
                let handles = &self.handles;
                self.views.retain(|v| handles[v.handle].region.is_some());
            }
            Op::PeerGrow { by } => {
                let new = self.file.len() + usize::from(by) + 1;
                if new > MAX_LEN || !self.any_live() {
                    return;
                }
                self.truncate_file(new);
                self.file.resize(new, 0);
            }
        }
    }

    fn any_live(&self) -> bool {
        self.handles.iter().any(|h| h.region.is_some())
    }

    /// Sets the file's length as a peer with its own descriptor would.
    fn truncate_file(&self, to: usize) {
        let region = self.handles.iter().find_map(|h| h.region.as_ref()).unwrap();
        rustix::fs::ftruncate(region.fd().unwrap(), u64::try_from(to).unwrap()).unwrap();
    }

    /// The checks made after every step.
    fn check(&self) {
        for h in &self.handles {
            if let Some(r) = &h.region {
                assert_eq!((r.len(), r.generation()), (h.len, h.generation));
                let st = rustix::fs::fstat(r.fd().unwrap()).unwrap();
                assert_eq!(
                    u64::try_from(st.st_size).unwrap(),
                    u64::try_from(self.file.len()).unwrap()
                );
            }
        }
        for v in &self.views {
            assert_eq!(
                (v.region.len(), v.region.generation()),
                (v.len, v.generation)
            );
        }
    }

    /// Compares every accessible byte of every view with the model.
    fn check_contents(&self) {
        for v in &self.views {
            let n = self.accessible(v).min(self.file.len());
            let mut buf = vec![0u8; n];
            v.region.read_at(0, &mut buf).unwrap();
            assert!(
                buf[..] == self.file[..n],
                "view contents differ from the model"
            );
        }
    }
}

fn base_dir() -> tempfile::TempDir {
    // tmpfs when available: faster, and what shared memory usually lives on.
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fuzz_target!(|input: Input| {
    let mut options = MmapOptions::new();
    if input.small_reservation {
        options.address_space(16 * PAGE);
    }
    let dir = base_dir();
    let initial = usize::from(input.initial) + 1;
    let creator = options
        .create(&dir.path().join("segment"), initial, FileCleanup::Manual)
        .unwrap();
    let mut world = World {
        dir,
        options,
        file: vec![0; initial],
        linked: true,
        handles: vec![Handle {
            region: Some(creator),
            len: initial,
            generation: 0,
            limit: usize::MAX,
            owner: true,
        }],
        views: Vec::new(),
    };
    for op in input.ops.iter().take(256) {
        world.step(op);
        world.check();
    }
    world.check_contents();
});
