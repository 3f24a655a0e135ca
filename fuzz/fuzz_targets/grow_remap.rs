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
//! accesses are fenced only after a handle has *detected* the truncation.
//! `Truncate` lets every live handle look right after truncating (as a
//! careful application would), and drops views whose handle is gone.
//! `TruncateLazy` lets only some handles look; the others (and views of
//! dropped handles) keep their old limit until they look themselves, so
//! their checked accesses are *not* fenced yet. Touching their pages past
//! the file's new end would raise `SIGBUS` (the documented window), so the
//! harness only performs an access that the model says succeeds when it also
//! lies below the file's current length; accesses the model says fail are
//! always performed (they must not touch memory).
//!
//! The `SIGBUS` guard (`shm_region::sigbus::install`) is installed, so the
//! harness also makes the accesses `safe` forbids. `HostileRead` reads (or
//! loads) through a view whose handle has not seen a truncation, past the
//! file's end: the result must be `Truncated` exactly when the range reaches
//! a page wholly past the end (it faulted), and otherwise `Ok` with the
//! model's bytes and zeros past the end. `TruncateDuringRead` truncates the
//! file from another thread while a view's whole accessible range is read:
//! `Ok` (each byte the model's, or 0 at or past the new end) or
//! `Truncated`. A handle whose mapping was cut (a `Truncated` from either)
//! is dropped with all its views, as an application would attach anew: the
//! model does not predict where later faults cut it.
//!
//! `Chunks`, `FdWrite` and `FdRead` run `for_each_chunk` and the descriptor
//! I/O (`write_to_fd`, `write_all_to_fd`, `read_from_fd`,
//! `read_exact_from_fd`) through a pipe, with the bounds, `ReadOnly` and
//! bytes the model predicts. `FdHostile` makes descriptor I/O reach past
//! the end of a file whose truncation the view's handle has not noticed:
//! the kernel's copy raises no signal; the result is `Truncated` exactly
//! when the range reaches a page wholly past the end, and the handle is
//! then fenced at the file's end, as if it had run `check_and_remap`.
//!
//! Any handle may resize (the creator and attached handles alike); a handle
//! that saw a truncation refuses every resize with `Truncated`, a read-only
//! handle refuses with `ReadOnly`. Read-only handles (`attach_read_only`)
//! refuse writes and atomic references, and load through `load_u32` /
//! `load_u64`. `flush_range` / `advise_range` fail with `OutOfBounds` exactly
//! when the range leaves the handle's accessible length. After every step,
//! each view's `as_ptr` must equal its handle's first mapping while the
//! handle's length stayed within that mapping's reservation (the default
//! reservation is at least 1 GiB, past `MAX_LEN`; with `small_reservation`
//! it is `max(16 pages, length at attach)`).
#![no_main]

use std::sync::atomic::Ordering;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shm_region::{Advice, ErrorKind, FileCleanup, MmapOptions, MmapRegion, Region};

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
    /// Handle `h` (any live handle, read-only ones included) resizes to its
    /// length plus `by` (negative: a refused shrink; zero: a no-op).
    Resize {
        h: u8,
        by: i16,
    },
    /// Attaches read-only.
    AttachReadOnly,
    /// `load_u32` / `load_u64` with ordering `order % 5`.
    Load {
        v: u8,
        offset: u32,
        wide: bool,
        order: u8,
    },
    FlushRange {
        h: u8,
        offset: u32,
        len: u16,
    },
    AdviseRange {
        h: u8,
        offset: u32,
        len: u16,
        advice: u8,
    },
    /// A hostile peer truncates the file; only the live handles whose index
    /// bit (mod 8) is set in `look` run `check_and_remap` at once.
    TruncateLazy {
        to: u32,
        look: u8,
    },
    /// A read (`wide`: `load_u64`) through view `v` that may reach past the
    /// file's end without the view's handle having noticed.
    HostileRead {
        v: u8,
        offset: u32,
        len: u16,
        wide: bool,
    },
    /// Another thread truncates the file to `to` while view `v` is read
    /// whole; no handle looks afterwards.
    TruncateDuringRead {
        v: u8,
        to: u32,
    },
    /// `for_each_chunk` over `len` bytes (up to four chunks).
    Chunks {
        v: u8,
        offset: u32,
        len: u16,
    },
    /// `write_to_fd` (`all`: `write_all_to_fd`) into the pipe, which is
    /// then drained and compared with the model.
    FdWrite {
        v: u8,
        offset: u32,
        len: u16,
        all: bool,
    },
    /// `len` bytes of `byte` into the pipe, then `read_from_fd` (`exact`:
    /// `read_exact_from_fd`) into view `v`.
    FdRead {
        v: u8,
        offset: u32,
        len: u16,
        byte: u8,
        exact: bool,
    },
    /// Descriptor I/O through a view whose handle has not noticed a
    /// truncation, reaching past the file's end: no `SIGBUS` (the kernel
    /// copies), `Truncated` exactly when a page wholly past the end is in
    /// the range, and the handle is then fenced at the file's end.
    FdHostile {
        v: u8,
        offset: u32,
        len: u16,
        read: bool,
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
    writable: bool,
    /// The base address of the handle's first mapping.
    first_ptr: usize,
    /// The first mapping's reservation covers lengths up to this.
    stable_until: usize,
}

struct View {
    handle: usize,
    region: Region,
    len: usize,
    generation: u64,
}

struct World {
    dir: tempfile::TempDir,
    /// A non-blocking pipe (read end, write end) for the descriptor I/O
    /// operations; empty between steps. Its 64 KiB take any `u16` length.
    pipe: (std::os::fd::OwnedFd, std::os::fd::OwnedFd),
    options: MmapOptions,
    small_reservation: bool,
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

/// The kind of a refused access of `n` bytes at `offset` through a view of
/// `len` bytes that the bounds check refused: `Truncated` within the view's
/// length (past the truncation its handle saw: every such access is
/// `Truncated`, whichever path found the truncation), `OutOfBounds` past it.
fn refusal_of(offset: usize, n: usize, len: usize) -> ErrorKind {
    if fits(offset, n, len) {
        ErrorKind::Truncated
    } else {
        ErrorKind::OutOfBounds
    }
}

const ORDERINGS: [Ordering; 5] = [
    Ordering::Relaxed,
    Ordering::Acquire,
    Ordering::SeqCst,
    Ordering::Release,
    Ordering::AcqRel,
];

const ADVICE: [Advice; 5] = [
    Advice::Normal,
    Advice::Random,
    Advice::Sequential,
    Advice::WillNeed,
    Advice::DontNeed,
];

impl World {
    fn new_handle(&self, region: MmapRegion, len: usize, owner: bool, writable: bool) -> Handle {
        let first_ptr = region.region().as_ptr() as usize;
        let stable_until = if self.small_reservation {
            (16 * PAGE).max(len)
        } else {
            // The default reservation is at least 1 GiB: nothing here moves.
            usize::MAX
        };
        Handle {
            region: Some(region),
            len,
            generation: 0,
            limit: usize::MAX,
            owner,
            writable,
            first_ptr,
            stable_until,
        }
    }

    /// Whether the harness may perform an access of `n` bytes at `offset`
    /// through a view whose checked limit is `limit`: one the model says
    /// fails touches nothing; one it says succeeds must stay below the
    /// file's end (an undetected truncation leaves the limit stale, and
    /// pages past the end raise `SIGBUS`).
    fn safe(&self, offset: usize, n: usize, limit: usize) -> bool {
        !fits(offset, n, limit) || fits(offset, n, self.file.len())
    }

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
        if self.handles[0].region.is_none() || new <= self.handles[0].len {
            return;
        }
        self.resize(0, new);
    }

    /// Live handle `i` resizes to `new`.
    fn resize(&mut self, i: usize, new: usize) {
        let file_len = self.file.len();
        let h = &mut self.handles[i];
        if new > MAX_LEN {
            return;
        }
        let res = h.region.as_mut().unwrap().resize(new);
        if !h.writable {
            // Refused before the file is looked at: nothing is detected.
            assert_eq!(res.unwrap_err().kind(), ErrorKind::ReadOnly);
            return;
        }
        if h.limit != usize::MAX || file_len < h.len {
            assert_eq!(res.unwrap_err().kind(), ErrorKind::Truncated);
            h.limit = h.limit.min(file_len);
            return;
        }
        if new < h.len {
            assert_eq!(res.unwrap_err().kind(), ErrorKind::ShrinkRefused);
            return;
        }
        res.unwrap();
        if new == h.len {
            return;
        }
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
            Op::Attach | Op::AttachReadOnly => {
                let writable = matches!(op, Op::Attach);
                let live_attached = self.handles[1..]
                    .iter()
                    .filter(|h| h.region.is_some())
                    .count();
                if live_attached >= MAX_LIVE_ATTACHED || self.handles.len() >= MAX_HANDLES_EVER {
                    return;
                }
                let res = if writable {
                    self.options.attach(&self.path())
                } else {
                    self.options.attach_read_only(&self.path())
                };
                if !self.linked {
                    assert_eq!(res.unwrap_err().kind(), ErrorKind::NotFound);
                } else if self.file.is_empty() {
                    assert_eq!(res.unwrap_err().kind(), ErrorKind::EmptyFile);
                } else {
                    let region = res.unwrap();
                    assert_eq!((region.len(), region.generation()), (self.file.len(), 0));
                    assert_eq!(region.is_read_only(), !writable);
                    assert_eq!(region.region().is_read_only(), !writable);
                    let h = self.new_handle(region, self.file.len(), false, writable);
                    self.handles.push(h);
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
                    // Past the view's length OutOfBounds; within it, past the
                    // truncation its handle saw, Truncated.
                    let refusal = refusal_of(offset, n, view.len);
                    if !self.safe(offset, n, limit) {
                        return;
                    }
                    let mut buf = vec![0xA5; n];
                    let res = view.region.read_at(offset, &mut buf);
                    if fits(offset, n, limit) {
                        res.unwrap();
                        assert_eq!(buf[..], self.file[offset..offset + n]);
                    } else {
                        assert_eq!(res.unwrap_err().kind(), refusal);
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
                    // Past the view's length OutOfBounds; within it, past the
                    // truncation its handle saw, Truncated.
                    let refusal = refusal_of(offset, n, view.len);
                    if !self.safe(offset, n, limit) {
                        return;
                    }
                    let res = view.region.write_at(offset, &vec![byte; n]);
                    if !self.handles[view.handle].writable {
                        assert_eq!(res.unwrap_err().kind(), ErrorKind::ReadOnly);
                    } else if fits(offset, n, limit) {
                        res.unwrap();
                        self.file[offset..offset + n].fill(byte);
                    } else {
                        assert_eq!(res.unwrap_err().kind(), refusal);
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
                    // Past the view's length OutOfBounds; within it, past the
                    // truncation its handle saw, Truncated.
                    let refusal = refusal_of(offset, size, view.len);
                    if !self.safe(offset, size, limit) {
                        return;
                    }
                    let expected_err = if !self.handles[view.handle].writable {
                        Some(ErrorKind::ReadOnly)
                    } else if offset % size != 0 {
                        Some(ErrorKind::Misaligned)
                    } else if !fits(offset, size, limit) {
                        Some(refusal)
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
                if self.file.is_empty() || !self.any_writable() {
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
                if new > MAX_LEN || !self.any_writable() {
                    return;
                }
                self.truncate_file(new);
                self.file.resize(new, 0);
            }
            Op::TruncateLazy { to, look } => {
                if self.file.is_empty() || !self.any_writable() {
                    return;
                }
                let to = usize::try_from(to).unwrap() % self.file.len();
                self.truncate_file(to);
                self.file.truncate(to);
                // Only some handles look now; the others, and views of
                // dropped handles, stay unfenced (see `safe`).
                for i in 0..self.handles.len() {
                    if self.handles[i].region.is_some() && look >> (i % 8) & 1 == 1 {
                        self.remap(i);
                    }
                }
            }
            Op::Resize { h, by } => {
                if let Some(i) = self.live(h) {
                    let len = self.handles[i].len;
                    let new = if by >= 0 {
                        len + usize::from(by.unsigned_abs())
                    } else {
                        len.saturating_sub(usize::from(by.unsigned_abs()))
                    };
                    self.resize(i, new);
                }
            }
            Op::Load {
                v,
                offset,
                wide,
                order,
            } => {
                if let Some(v) = self.view(v) {
                    let view = &self.views[v];
                    let limit = self.accessible(view);
                    let order = ORDERINGS[usize::from(order) % ORDERINGS.len()];
                    let size = if wide { 8 } else { 4 };
                    let offset = offset_of(offset, size, view.len, limit);
                    // Past the view's length OutOfBounds; within it, past the
                    // truncation its handle saw, Truncated.
                    let refusal = refusal_of(offset, size, view.len);
                    if !self.safe(offset, size, limit) {
                        return;
                    }
                    let expected_err = if matches!(order, Ordering::Release | Ordering::AcqRel) {
                        Some(ErrorKind::InvalidOrdering)
                    } else if offset % size != 0 {
                        Some(ErrorKind::Misaligned)
                    } else if !fits(offset, size, limit) {
                        Some(refusal)
                    } else {
                        None
                    };
                    let got = if wide {
                        view.region
                            .load_u64(offset, order)
                            .map(|x| x.to_le_bytes().to_vec())
                    } else {
                        view.region
                            .load_u32(offset, order)
                            .map(|x| x.to_le_bytes().to_vec())
                    };
                    match expected_err {
                        Some(kind) => assert_eq!(got.unwrap_err().kind(), kind),
                        None => assert_eq!(got.unwrap()[..], self.file[offset..offset + size]),
                    }
                }
            }
            Op::HostileRead {
                v,
                offset,
                len,
                wide,
            } => {
                if let Some(v) = self.view(v) {
                    let view = &self.views[v];
                    let limit = self.accessible(view);
                    let n = if wide { 8 } else { usize::from(len) };
                    let mut offset = offset_of(offset, n, view.len, limit);
                    if wide {
                        offset &= !7;
                    }
                    // Only what `safe` forbids: the model says the access
                    // fits, but it reaches past the file's end.
                    // (An empty read touches nothing, so it cannot fault.)
                    if n == 0 || !fits(offset, n, limit) || fits(offset, n, self.file.len()) {
                        return;
                    }
                    let mut buf = vec![0xA5; n];
                    let res = if wide {
                        view.region
                            .load_u64(offset, Ordering::Relaxed)
                            .map(|x| buf.copy_from_slice(&x.to_ne_bytes()))
                    } else {
                        view.region.read_at(offset, &mut buf)
                    };
                    let whole_pages = self.file.len().div_ceil(PAGE) * PAGE;
                    if offset + n > whole_pages {
                        assert_eq!(res.unwrap_err().kind(), ErrorKind::Truncated);
                        self.drop_cut(self.views[v].handle);
                    } else {
                        res.unwrap();
                        let end = self.file.len();
                        for (k, &b) in buf.iter().enumerate() {
                            let i = offset + k;
                            let want = if i < end { self.file[i] } else { 0 };
                            assert_eq!(b, want, "byte {i} (file length {end})");
                        }
                    }
                }
            }
            Op::TruncateDuringRead { v, to } => {
                if self.file.is_empty() || !self.any_writable() {
                    return;
                }
                if let Some(v) = self.view(v) {
                    let to = usize::try_from(to).unwrap() % self.file.len();
                    let fd = self
                        .handles
                        .iter()
                        .filter(|h| h.writable)
                        .find_map(|h| h.region.as_ref())
                        .unwrap()
                        .fd()
                        .unwrap()
                        .try_clone_to_owned()
                        .unwrap();
                    let view = &self.views[v];
                    let n = self.accessible(view).min(self.file.len());
                    let mut buf = vec![0xA5; n];
                    let worker = truncator();
                    worker
                        .jobs
                        .lock()
                        .unwrap()
                        .send((fd, u64::try_from(to).unwrap()))
                        .unwrap();
                    let res = view.region.read_at(0, &mut buf);
                    worker.done.lock().unwrap().recv().unwrap();
                    match res {
                        Ok(()) => {
                            for (i, &b) in buf.iter().enumerate() {
                                assert!(
                                    b == self.file[i] || (i >= to && b == 0),
                                    "byte {i} is {b:#04x}"
                                );
                            }
                        }
                        Err(ref e) => assert_eq!(e.kind(), ErrorKind::Truncated, "{e}"),
                    }
                    self.file.truncate(to);
                    if res.is_err() {
                        self.drop_cut(self.views[v].handle);
                    }
                }
            }
            Op::Chunks { v, offset, len } => {
                if let Some(v) = self.view(v) {
                    let view = &self.views[v];
                    let limit = self.accessible(view);
                    let n = usize::from(len);
                    let offset = offset_of(offset, n, view.len, limit);
                    // Past the view's length OutOfBounds; within it, past the
                    // truncation its handle saw, Truncated.
                    let refusal = refusal_of(offset, n, view.len);
                    if !self.safe(offset, n, limit) {
                        return;
                    }
                    let mut got = Vec::new();
                    let mut calls = 0;
                    let res = view.region.for_each_chunk(offset, n, |c| {
                        assert!(!c.is_empty() && c.len() <= Region::CHUNK_SIZE);
                        calls += 1;
                        got.extend_from_slice(c);
                    });
                    if fits(offset, n, limit) {
                        res.unwrap();
                        assert_eq!(calls, n.div_ceil(Region::CHUNK_SIZE));
                        assert!(got[..] == self.file[offset..offset + n], "chunks differ");
                    } else {
                        assert_eq!(res.unwrap_err().kind(), refusal);
                        assert_eq!(calls, 0);
                    }
                }
            }
            Op::FdWrite {
                v,
                offset,
                len,
                all,
            } => {
                if let Some(v) = self.view(v) {
                    let view = &self.views[v];
                    let limit = self.accessible(view);
                    let n = usize::from(len);
                    let offset = offset_of(offset, n, view.len, limit);
                    // Past the view's length OutOfBounds; within it, past the
                    // truncation its handle saw, Truncated.
                    let refusal = refusal_of(offset, n, view.len);
                    if !self.safe(offset, n, limit) {
                        return;
                    }
                    let w = &self.pipe.1;
                    let res = if all {
                        view.region.write_all_to_fd(offset, n, w).map(|()| n)
                    } else {
                        view.region.write_to_fd(offset, n, w)
                    };
                    let out = self.drain();
                    if fits(offset, n, limit) {
                        // An empty pipe takes up to 64 KiB in one call.
                        assert_eq!(res.unwrap(), n);
                        assert!(
                            out[..] == self.file[offset..offset + n],
                            "pipe bytes differ"
                        );
                    } else {
                        assert_eq!(res.unwrap_err().kind(), refusal);
                        assert!(out.is_empty());
                    }
                }
            }
            Op::FdRead {
                v,
                offset,
                len,
                byte,
                exact,
            } => {
                if let Some(v) = self.view(v) {
                    let view = &self.views[v];
                    let limit = self.accessible(view);
                    let n = usize::from(len);
                    let offset = offset_of(offset, n, view.len, limit);
                    // Past the view's length OutOfBounds; within it, past the
                    // truncation its handle saw, Truncated.
                    let refusal = refusal_of(offset, n, view.len);
                    if !self.safe(offset, n, limit) {
                        return;
                    }
                    self.feed(n, byte);
                    let view = &self.views[v];
                    let r = &self.pipe.0;
                    let res = if exact {
                        view.region.read_exact_from_fd(offset, n, r).map(|()| n)
                    } else {
                        view.region.read_from_fd(offset, n, r)
                    };
                    let writable = self.handles[view.handle].writable;
                    let left = self.drain();
                    if !writable {
                        assert_eq!(res.unwrap_err().kind(), ErrorKind::ReadOnly);
                        assert_eq!(left.len(), n);
                    } else if fits(offset, n, limit) {
                        // The pipe holds all `n` bytes: one call takes them.
                        assert_eq!(res.unwrap(), n);
                        assert!(left.is_empty());
                        self.file[offset..offset + n].fill(byte);
                    } else {
                        assert_eq!(res.unwrap_err().kind(), refusal);
                        assert_eq!(left.len(), n);
                    }
                }
            }
            Op::FdHostile {
                v,
                offset,
                len,
                read,
            } => {
                if let Some(v) = self.view(v) {
                    let view = &self.views[v];
                    let limit = self.accessible(view);
                    let n = usize::from(len);
                    let offset = offset_of(offset, n, view.len, limit);
                    // Only what `safe` forbids: the model says the range
                    // fits, but it reaches past the file's end.
                    if n == 0 || !fits(offset, n, limit) || fits(offset, n, self.file.len()) {
                        return;
                    }
                    let end = self.file.len();
                    let whole_pages = end.div_ceil(PAGE) * PAGE;
                    let handle = view.handle;
                    let truncated = if read {
                        // Into pages wholly past the end only: a read that
                        // stored some bytes first would leave the model
                        // unsure of them.
                        if offset < whole_pages {
                            return;
                        }
                        self.feed(n, 0x5A);
                        let res = self.views[v].region.read_from_fd(offset, n, &self.pipe.0);
                        self.drain();
                        if !self.handles[handle].writable {
                            assert_eq!(res.unwrap_err().kind(), ErrorKind::ReadOnly);
                            return;
                        }
                        assert_eq!(res.unwrap_err().kind(), ErrorKind::Truncated);
                        true
                    } else {
                        let res = view.region.write_all_to_fd(offset, n, &self.pipe.1);
                        let out = self.drain();
                        // What the pipe got: the file's bytes, then zeros to
                        // the end of its last page, and nothing past it.
                        assert!(out.len() <= n && offset + out.len() <= whole_pages.max(offset));
                        for (k, &b) in out.iter().enumerate() {
                            let i = offset + k;
                            let want = if i < end { self.file[i] } else { 0 };
                            assert_eq!(b, want, "byte {i} (file length {end})");
                        }
                        if offset + n <= whole_pages {
                            res.unwrap();
                            assert_eq!(out.len(), n);
                            false
                        } else {
                            let e = res.unwrap_err();
                            assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
                            true
                        }
                    };
                    if truncated {
                        // Fenced as a `check_and_remap` would fence it.
                        let h = &mut self.handles[handle];
                        h.limit = h.limit.min(end);
                    }
                }
            }
            Op::FlushRange { h, offset, len } => {
                if let Some(i) = self.live(h) {
                    let h = &self.handles[i];
                    let limit = h.len.min(h.limit);
                    let n = usize::from(len);
                    let offset = offset_of(offset, n, h.len, limit);
                    let res = h.region.as_ref().unwrap().flush_range(offset, n);
                    if fits(offset, n, limit) {
                        res.unwrap();
                    } else {
                        assert_eq!(res.unwrap_err().kind(), ErrorKind::OutOfBounds);
                    }
                }
            }
            Op::AdviseRange {
                h,
                offset,
                len,
                advice,
            } => {
                if let Some(i) = self.live(h) {
                    let h = &self.handles[i];
                    let limit = h.len.min(h.limit);
                    let n = usize::from(len);
                    let offset = offset_of(offset, n, h.len, limit);
                    let advice = ADVICE[usize::from(advice) % ADVICE.len()];
                    let res = h.region.as_ref().unwrap().advise_range(offset, n, advice);
                    if fits(offset, n, limit) {
                        res.unwrap();
                    } else {
                        assert_eq!(res.unwrap_err().kind(), ErrorKind::OutOfBounds);
                    }
                }
            }
        }
    }

    /// Drops handle `i` (if live) and every view of it: its mapping was
    /// cut by a contained `SIGBUS`.
    fn drop_cut(&mut self, i: usize) {
        self.views.retain(|v| v.handle != i);
        if self.handles[i].region.is_some() {
            drop(self.handles[i].region.take());
            if self.handles[i].owner {
                self.linked = false;
            }
            assert_eq!(self.path().exists(), self.linked);
        }
    }

    /// Everything waiting in the pipe (which is non-blocking).
    fn drain(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&self.pipe.0, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::AGAIN) => return out,
                Ok(k) => out.extend_from_slice(&buf[..k]),
                Err(e) => panic!("drain: {e}"),
            }
        }
    }

    /// Puts `n` bytes of `byte` into the (empty) pipe.
    fn feed(&self, n: usize, byte: u8) {
        let bytes = vec![byte; n];
        let mut done = 0;
        while done < n {
            done += rustix::io::write(&self.pipe.1, &bytes[done..]).unwrap();
        }
    }

    fn any_writable(&self) -> bool {
        self.handles
            .iter()
            .any(|h| h.region.is_some() && h.writable)
    }

    /// Sets the file's length as a peer with its own descriptor would.
    fn truncate_file(&self, to: usize) {
        let region = self
            .handles
            .iter()
            .filter(|h| h.writable)
            .find_map(|h| h.region.as_ref())
            .unwrap();
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
            // Growth inside the first mapping's reservation is in place: a
            // view's base is the newest view's.
            let h = &self.handles[v.handle];
            if h.len <= h.stable_until {
                assert_eq!(v.region.as_ptr() as usize, h.first_ptr, "view moved");
            }
        }
        for h in &self.handles {
            if let Some(r) = &h.region {
                assert_eq!(r.is_read_only(), !h.writable);
                if h.len <= h.stable_until {
                    assert_eq!(r.region().as_ptr() as usize, h.first_ptr, "mapping moved");
                }
            }
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

/// A thread that truncates files for `TruncateDuringRead`, made once and
/// kept for the process (a thread per input would show up in LeakSanitizer
/// as glibc's per-thread destructor list).
struct Truncator {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<(std::os::fd::OwnedFd, u64)>>,
    done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

fn truncator() -> &'static Truncator {
    static WORKER: std::sync::OnceLock<Truncator> = std::sync::OnceLock::new();
    WORKER.get_or_init(|| {
        let (jobs, rx) = std::sync::mpsc::channel::<(std::os::fd::OwnedFd, u64)>();
        let (tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (fd, to) in rx {
                rustix::fs::ftruncate(&fd, to).unwrap();
                drop(fd);
                tx.send(()).unwrap();
            }
        });
        Truncator {
            jobs: std::sync::Mutex::new(jobs),
            done: std::sync::Mutex::new(done),
        }
    })
}

fn base_dir() -> tempfile::TempDir {
    // tmpfs when available: faster, and what shared memory usually lives on.
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fuzz_target!(|input: Input| {
    // Idempotent: installed by the first input, kept for the process.
    shm_region::sigbus::install().unwrap();
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
        small_reservation: input.small_reservation,
        file: vec![0; initial],
        linked: true,
        handles: Vec::new(),
        views: Vec::new(),
        pipe: rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC,
        )
        .unwrap(),
    };
    let creator = world.new_handle(creator, initial, true, true);
    world.handles.push(creator);
    for op in input.ops.iter().take(256) {
        world.step(op);
        world.check();
    }
    world.check_contents();
});
