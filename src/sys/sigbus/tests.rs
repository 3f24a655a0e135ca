use std::collections::HashSet;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::handler::{handler_address, query};
use super::registry::{in_handler, is_ours, local, Registration};
use super::replace::{contain, Outcome};
use crate::sys::{page_size, Mapping};

/// Serialises the tests that call `contain` (the `REFUSED` seam is
/// process-wide).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A file mapping of `pages` pages, registered.
fn mapping(pages: usize) -> (std::fs::File, Mapping) {
    let file = tempfile::tempfile().unwrap();
    let len = pages * page_size();
    file.set_len(u64::try_from(len).unwrap()).unwrap();
    let map = Mapping::new(file.as_fd(), len, 0, true).unwrap();
    (file, map)
}

/// A registered file mapping of 4 pages whose next page is a
/// private `PROT_NONE` page of this test's (the fence): no mapping
/// another test registers concurrently can lie there. Without it
/// the page just past a mapping is often another test's (the kernel
/// places new mappings next to old ones; failed once in CI). Five
/// pages are reserved, the first four given back, and the mapping
/// made, until it lands in them. Returns the mappings tried (the
/// last one is the fenced one) and the fence's address, to unmap.
fn mapping_with_a_fence() -> (Vec<(std::fs::File, Mapping)>, usize) {
    use rustix::mm::{mmap_anonymous, munmap, MapFlags, ProtFlags};
    let page = page_size();
    let mut tried = Vec::new();
    for _ in 0..64 {
        // SAFETY: a null hint without `MAP_FIXED` makes a new private
        // range that replaces nothing; it is this test's alone.
        let space = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                5 * page,
                ProtFlags::empty(),
                MapFlags::PRIVATE,
            )
        }
        .unwrap()
        .cast::<u8>();
        // SAFETY: the first four pages of the range just made, which
        // nothing uses.
        unsafe { munmap(space.cast(), 4 * page) }.unwrap();
        let fence = space.wrapping_add(4 * page);
        let (file, map) = mapping(4);
        let landed = map.base() == space;
        tried.push((file, map));
        if landed {
            return (tried, fence as usize);
        }
        // SAFETY: the fifth page of the range made above, which
        // nothing uses.
        unsafe { munmap(fence.cast(), page) }.unwrap();
    }
    panic!("no 4-page mapping landed before a fence page in 64 tries");
}

#[test]
fn the_handler_replaces_the_faulting_page_of_a_live_slot_and_nothing_of_a_retired_one() {
    let _serial = serial();
    let page = page_size();
    let (mut tried, fence) = mapping_with_a_fence();
    let (_file, map) = tried.pop().unwrap();
    let local = local().unwrap();
    assert_eq!(
        format!("{:?}", map.guard),
        format!("Registration {{ registered: true, cut: {} }}", usize::MAX)
    );
    // Called as the handler calls it, without a signal: the slot is
    // live, so page 2 is replaced and the cut drops to it.
    assert_eq!(
        contain(local, map.base().wrapping_add(2 * page + 5)),
        Outcome::Contained
    );
    assert_eq!(map.cut(), 2 * page);
    assert_eq!(
        contain(local, map.base().wrapping_add(3 * page)),
        Outcome::Contained
    );
    assert_eq!(map.cut(), 2 * page, "the lowest cut wins");
    // Just past the mapping: not ours.
    assert_eq!(
        contain(local, map.base().wrapping_add(4 * page)),
        Outcome::NotOurs
    );
    map.guard.retire();
    assert_eq!(contain(local, map.base()), Outcome::NotOurs);
    assert_eq!(map.cut(), 2 * page);
    // SAFETY: `fence` is the private page `mapping_with_a_fence`
    // mapped for this test, used by nothing.
    unsafe { rustix::mm::munmap(fence as *mut std::ffi::c_void, page) }.unwrap();
}

#[test]
fn the_replaced_range_is_in_the_mapping_and_at_or_past_the_cut() {
    use super::replace::{span, within, MAX_PIECES};
    use super::NOT_CUT;
    const P: usize = 4096;
    const LEN: usize = 64 * P;
    // The first fault: from its page to the end.
    assert_eq!(span(8 * P, LEN, NOT_CUT, 8 * P, 0), (8 * P, LEN));
    // At or past the cut (a pending or refused replacement): from
    // the cut as it is now to the end.
    assert_eq!(span(12 * P, LEN, 8 * P, 8 * P, 0), (8 * P, LEN));
    assert_eq!(span(8 * P, LEN, 8 * P, 6 * P, 3), (6 * P, LEN));
    // Below the cut: up to the old cut, a piece.
    assert_eq!(span(4 * P, LEN, 8 * P, 4 * P, 0), (4 * P, 8 * P));
    assert_eq!(
        span(4 * P, LEN, 8 * P, 4 * P, MAX_PIECES - 1),
        (4 * P, 8 * P)
    );
    // With as many pieces as allowed: one area again.
    assert_eq!(span(4 * P, LEN, 8 * P, 4 * P, MAX_PIECES), (4 * P, LEN));
    // Every result holds the page and stays in the mapping.
    for cut in (0..LEN).step_by(P) {
        for old in [NOT_CUT, 0, 3 * P, cut, cut + P, LEN - P] {
            for pieces in [0, MAX_PIECES] {
                let now = old.min(cut);
                let (lo, hi) = span(cut, LEN, old, now, pieces);
                assert!(within(lo, hi, cut, LEN), "{cut} {old} {pieces}");
                assert!(lo >= now, "{cut} {old} {pieces}");
            }
        }
    }
    assert!(!within(0, LEN + P, 0, LEN));
    assert!(!within(P, 2 * P, 0, LEN));
    assert!(!within(0, P, P, LEN));
}

/// The bytes of page `i` of `map` read through it.
fn page_byte(map: &Mapping, i: usize) -> u8 {
    let mut b = [0u8; 1];
    assert!(map.read(i * page_size(), &mut b));
    b[0]
}

#[test]
fn when_the_wide_replacement_is_refused_the_faulting_page_alone_is_replaced() {
    let _serial = serial();
    let page = page_size();
    let (_file, map) = mapping(8);
    for i in 0..8 {
        assert!(map.write(i * page, &[0x5A]));
    }
    let local = local().unwrap();
    super::replace::REFUSED.store(1, Ordering::SeqCst);
    let first = contain(local, map.base().wrapping_add(5 * page + 1));
    let below = contain(local, map.base().wrapping_add(2 * page));
    super::replace::REFUSED.store(0, Ordering::SeqCst);
    assert_eq!((first, below), (Outcome::Contained, Outcome::Contained));
    assert_eq!(map.cut(), 2 * page);
    // Pages 2 and 5 are zero pages; the file's pages around them
    // are still the file's.
    let bytes: Vec<u8> = (0..8).map(|i| page_byte(&map, i)).collect();
    assert_eq!(bytes, [0x5A, 0x5A, 0, 0x5A, 0x5A, 0, 0x5A, 0x5A]);
    // Without the seam the wide range goes in: from the cut to the
    // end.
    assert_eq!(
        contain(local, map.base().wrapping_add(3 * page)),
        Outcome::Contained
    );
    let bytes: Vec<u8> = (0..8).map(|i| page_byte(&map, i)).collect();
    assert_eq!(bytes, [0x5A, 0x5A, 0, 0, 0, 0, 0, 0]);
}

/// The permissions `/proc/self/maps` gives the page at `addr`.
fn perms_at(addr: usize) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .find_map(|l| {
            let (range, rest) = l.split_once(' ')?;
            let (lo, hi) = range.split_once('-')?;
            let lo = usize::from_str_radix(lo, 16).ok()?;
            let hi = usize::from_str_radix(hi, 16).ok()?;
            (lo <= addr && addr < hi).then(|| rest[..4].to_string())
        })
        .unwrap()
}

/// The `/proc/self/maps` line of the mapping holding `addr`.
fn maps_line(addr: usize) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .find(|l| {
            let Some((range, _)) = l.split_once(' ') else {
                return false;
            };
            let Some((lo, hi)) = range.split_once('-') else {
                return false;
            };
            let lo = usize::from_str_radix(lo, 16).unwrap();
            let hi = usize::from_str_radix(hi, 16).unwrap();
            lo <= addr && addr < hi
        })
        .unwrap()
        .to_string()
}

#[test]
fn when_every_shared_anonymous_replacement_is_refused_the_sink_page_is_mapped_writable() {
    let _serial = serial();
    super::replace::make_sink().unwrap();
    let page = page_size();
    let (_file, map) = mapping(4);
    assert!(map.write(2 * page, &[0x5A]));
    let local = local().unwrap();
    // The three shared anonymous candidates are refused.
    super::replace::REFUSED.store(3, Ordering::SeqCst);
    let outcome = contain(local, map.base().wrapping_add(2 * page));
    super::replace::REFUSED.store(0, Ordering::SeqCst);
    assert_eq!(outcome, Outcome::Contained);
    assert_eq!(map.cut(), 2 * page);
    let line = maps_line(map.base() as usize + 2 * page);
    assert!(line.contains("rw-s"), "{line}");
    assert!(line.contains("memfd:shm-region-sigbus-sink"), "{line}");
    // Exactly the faulting page: its neighbours are the file's.
    let above = maps_line(map.base() as usize + 3 * page);
    assert!(!above.contains("sink"), "{above}");
    let below = maps_line(map.base() as usize + page);
    assert!(!below.contains("sink"), "{below}");
    // Writable: a write there goes on (into garbage).
    assert!(map.write(2 * page + 8, &[9]));
}

#[test]
fn when_every_splitting_replacement_is_refused_the_whole_mapping_is_replaced_and_cut_at_0() {
    let _serial = serial();
    let page = page_size();
    let (_file, map) = mapping(8);
    for i in 0..8 {
        assert!(map.write(i * page, &[0x5A]));
    }
    let local = local().unwrap();
    // A first fault whose wide replacement is refused: the page
    // alone, so the mapping is three kernel mappings.
    super::replace::REFUSED.store(1, Ordering::SeqCst);
    let first = contain(local, map.base().wrapping_add(5 * page));
    // Every replacement that would split a mapping refused (the
    // wide one, the page alone, everything from the cut, the sink
    // page), as at `vm.max_map_count`.
    super::replace::REFUSED.store(4, Ordering::SeqCst);
    let second = contain(local, map.base().wrapping_add(2 * page + 3));
    super::replace::REFUSED.store(0, Ordering::SeqCst);
    assert_eq!((first, second), (Outcome::Contained, Outcome::Contained));
    assert_eq!(map.cut(), 0, "everything is cut");
    let bytes: Vec<u8> = (0..8).map(|i| page_byte(&map, i)).collect();
    assert_eq!(bytes, [0; 8]);
    // One shared mapping of exactly the whole range.
    let base = map.base() as usize;
    let line = maps_line(base);
    let (range, rest) = line.split_once(' ').unwrap();
    assert_eq!(range, format!("{base:x}-{:x}", base + 8 * page), "{line}");
    assert!(rest.starts_with("rw-s"), "{line}");
    assert_eq!(maps_line(base + 7 * page), line);
}

#[test]
fn when_every_writable_replacement_is_refused_the_page_is_replaced_read_only() {
    let _serial = serial();
    let page = page_size();
    let (_file, map) = mapping(4);
    assert!(map.write(2 * page, &[0x5A]));
    let local = local().unwrap();
    // The sink page and the whole mapping are refused too.
    super::replace::REFUSED.store(5, Ordering::SeqCst);
    let outcome = contain(local, map.base().wrapping_add(2 * page));
    super::replace::REFUSED.store(0, Ordering::SeqCst);
    assert_eq!(outcome, Outcome::Contained);
    assert_eq!(map.cut(), 2 * page);
    assert_eq!(page_byte(&map, 2), 0);
    assert_eq!(perms_at(map.base() as usize + 2 * page), "r--p");
    assert_eq!(perms_at(map.base() as usize + 3 * page), "rw-s");
    // Refused but the collapse: everything from the cut, shared.
    super::replace::REFUSED.store(2, Ordering::SeqCst);
    let outcome = contain(local, map.base().wrapping_add(page));
    super::replace::REFUSED.store(0, Ordering::SeqCst);
    assert_eq!(outcome, Outcome::Contained);
    for i in 1..4 {
        assert_eq!(perms_at(map.base() as usize + i * page), "rw-s", "{i}");
    }
    assert_eq!(page_byte(&map, 0), 0);
}

#[test]
fn a_slot_reused_by_a_smaller_mapping_starts_uncut_and_replaces_only_inside_it() {
    let _serial = serial();
    let page = page_size();
    let (_a_file, a) = mapping(64);
    let local = local().unwrap();
    let a_slot = a.guard.slot.map(std::ptr::from_ref);
    assert_eq!(
        contain(local, a.base().wrapping_add(60 * page)),
        Outcome::Contained
    );
    assert_eq!(a.cut(), 60 * page);
    drop(a);
    // The freed slot is the first free one again (other tests may
    // hold slots, so look for it among a few mappings).
    let mut held = Vec::new();
    let b = loop {
        let (f, m) = mapping(2);
        if m.guard.slot.map(std::ptr::from_ref) == a_slot {
            break (f, m);
        }
        held.push((f, m));
        assert!(held.len() < 5000, "slot never reused");
    };
    let b = b.1;
    assert!(b.write(0, &[1]) && b.write(page, &[2]));
    assert_eq!(b.cut(), usize::MAX, "a reused slot starts uncut");
    // Two faults, one above the other: both contained, both inside
    // the two pages (a range from the old cut would have mapped far
    // past them: the debug assertion in the handler, or a crash).
    for at in [page, 0] {
        assert_eq!(
            contain(local, b.base().wrapping_add(at)),
            Outcome::Contained
        );
    }
    assert_eq!(b.cut(), 0);
    assert_eq!((page_byte(&b, 0), page_byte(&b, 1)), (0, 0));
}

#[test]
fn a_cut_of_an_earlier_mapping_is_the_cut_of_every_mapping_joined_to_it() {
    let _serial = serial();
    let page = page_size();
    let (file, old) = mapping(4);
    let mut new = Mapping::new(file.as_fd(), 8 * page, 0, true).unwrap();
    new.join(&old);
    let local = local().unwrap();
    assert_eq!(
        contain(local, old.base().wrapping_add(3 * page)),
        Outcome::Contained
    );
    assert_eq!((old.cut(), new.cut()), (3 * page, 3 * page));
    // The new mapping's own pages are untouched: only the cut is
    // shared.
    assert!(new.write(3 * page, &[7]));
    assert_eq!(page_byte(&new, 3), 7);
    // A lower cut in the new one is the old one's too.
    assert_eq!(
        contain(local, new.base().wrapping_add(page)),
        Outcome::Contained
    );
    assert_eq!((old.cut(), new.cut()), (page, page));
    // A mapping cut before it joins brings its cut along.
    let (file2, first) = mapping(2);
    let mut second = Mapping::new(file2.as_fd(), 2 * page, 0, true).unwrap();
    assert_eq!(
        contain(local, second.base().wrapping_add(page)),
        Outcome::Contained
    );
    second.join(&first);
    assert_eq!((first.cut(), second.cut()), (page, page));
}

#[test]
fn a_registry_block_is_1024_slots_of_56_bytes_a_header_and_a_page() {
    use super::registry::{Chunk, Slot};
    use super::CHUNK;
    assert_eq!(CHUNK, 1024);
    if cfg!(target_pointer_width = "64") {
        // Six 8-byte fields and three flags, padded to 8.
        assert_eq!(std::mem::size_of::<Slot>(), 56);
        assert_eq!(CHUNK * std::mem::size_of::<Slot>(), 57_344);
        // The boxed slice, the flag slice, `high` and `next`.
        assert_eq!(std::mem::size_of::<Chunk>(), 48);
    }
    // The flags: one byte per slot, rounded up to a page.
    assert_eq!(
        crate::sys::round_up_to_page(CHUNK),
        Some(page_size().max(CHUNK))
    );
}

#[test]
fn retire_waits_for_a_running_handler() {
    let (_file, map) = mapping(1);
    let counter = &local().unwrap().in_handler;
    counter.fetch_add(1, Ordering::SeqCst);
    let retired = std::thread::scope(|s| {
        let t = s.spawn(|| map.guard.retire());
        std::thread::sleep(Duration::from_millis(50));
        let early = t.is_finished();
        counter.fetch_sub(1, Ordering::SeqCst);
        t.join().unwrap();
        early
    });
    assert!(!retired, "retire returned while a handler was counted");
}

#[test]
fn concurrent_registrations_claim_distinct_slots() {
    let memory = vec![0u8; 8];
    let memory = &memory;
    let regs: Vec<Registration> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    (0..200)
                        .map(|_| {
                            let base = memory.as_ptr().cast_mut();
                            Registration::register(base, 8, false).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    let slots: HashSet<usize> = regs
        .iter()
        .map(|r| r.slot.map_or(0, |s| std::ptr::from_ref(s) as usize))
        .collect();
    assert_eq!(slots.len(), 1600);
    assert!(!slots.contains(&0));
    for r in &regs {
        r.retire();
        r.release();
    }
    // Threads that register and release over and over fight for
    // the same first free slots: a slot claimed twice would be in
    // the set of live slots already.
    let live = std::sync::Mutex::new(HashSet::new());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..5000 {
                    let base = memory.as_ptr().cast_mut();
                    let r = Registration::register(base, 8, false).unwrap();
                    let at = r.slot.map_or(0, |s| std::ptr::from_ref(s) as usize);
                    assert!(live.lock().unwrap().insert(at), "slot claimed twice");
                    std::thread::yield_now();
                    live.lock().unwrap().remove(&at);
                    r.retire();
                    r.release();
                }
            });
        }
    });
}

#[test]
fn install_asks_for_siginfo_the_alternate_stack_and_restarted_calls() {
    // Installing in the unit-test process is harmless: the handler
    // forwards every fault that is not the crate's (to a handler
    // that returns, here: no unit test makes a foreign fault). The
    // only test that installs, so the disposition found is this
    // plain (not `SA_SIGINFO`) one.
    extern "C" fn plain(_sig: libc::c_int) {}
    // SAFETY: a zeroed `sigaction` is valid; flags stay 0.
    let mut before: libc::sigaction = unsafe { std::mem::zeroed() };
    before.sa_sigaction = plain as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `before` is initialised; `plain` does nothing.
    let rc = unsafe { libc::sigaction(libc::SIGBUS, &before, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    super::handler::install().unwrap();
    assert_eq!(
        super::handler::PREVIOUS.load(Ordering::SeqCst),
        before.sa_sigaction
    );
    assert!(!super::handler::PREVIOUS_SIGINFO.load(Ordering::SeqCst));
    let action = query().unwrap();
    assert_eq!(action.sa_sigaction, handler_address());
    let wanted = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    assert_eq!(action.sa_flags & wanted, wanted);
    assert_eq!(action.sa_flags & libc::SA_NODEFER, 0);
    // Every blockable signal is blocked while it runs: the standard
    // ones and the real-time ones the C library leaves to programs
    // (it keeps two below SIGRTMIN for itself).
    let blockable = (1..32)
        .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
        .filter(|&sig| sig != libc::SIGKILL && sig != libc::SIGSTOP);
    for sig in blockable {
        // SAFETY: `sa_mask` is a valid, initialised set.
        let member = unsafe { libc::sigismember(&action.sa_mask, sig) };
        assert_eq!(member, 1, "signal {sig} not blocked");
    }
}

#[test]
fn a_fork_child_starts_with_no_handler_counted_and_no_slot_of_its_own() {
    // A handler "running" in this process when it forks (counted, as
    // `on_sigbus` counts itself), and a slot this process claimed.
    let memory = vec![0u8; 4096];
    let reg = Registration::register(memory.as_ptr().cast_mut(), 4096, false).unwrap();
    let reg = std::sync::Arc::new(reg);
    assert!(is_ours(&reg));
    let in_child = std::sync::Arc::clone(&reg);
    in_handler().fetch_add(1, Ordering::SeqCst);
    let mut cmd = Command::new("true");
    // SAFETY: the closure runs in the child between fork and exec and
    // only makes atomic loads and stores; `retire` returns at once when
    // no handler is counted (it would spin forever otherwise).
    unsafe {
        cmd.pre_exec(move || {
            if in_handler().load(Ordering::SeqCst) != 0 {
                return Err(std::io::Error::from_raw_os_error(1001));
            }
            if is_ours(&in_child) {
                return Err(std::io::Error::from_raw_os_error(1002));
            }
            in_child.retire();
            Ok(())
        });
    }
    let status = cmd.status();
    drop(cmd);
    in_handler().fetch_sub(1, Ordering::SeqCst);
    reg.retire();
    reg.release();
    assert!(status.unwrap().success());
}

/// The `SIGBUS` registry and handler run outside every model that judges
/// orderings: loom does not model signals or `mmap`, Miri cannot run them,
/// and x86's strong ordering lets a weakened ordering pass every
/// behaviour test here (a `Relaxed` load of the cut compiles to the same
/// `mov` as an `Acquire` one). So their text is held to the audited
/// orderings: `SeqCst` everywhere, except the cut's `Acquire` fence and
/// load (`Registration::cut`, documented there) and the `Relaxed` load of
/// `Debug`. A change to any ordering in these files must come with a new
/// audit of it and a change here.
#[test]
#[cfg_attr(
    miri,
    ignore = "a check of these files' text: nothing for Miri to judge"
)]
fn every_atomic_ordering_of_the_sigbus_guard_is_the_audited_one() {
    let files = [
        ("registry.rs", include_str!("registry.rs")),
        ("handler.rs", include_str!("handler.rs")),
        ("replace.rs", include_str!("replace.rs")),
        ("mod.rs", include_str!("mod.rs")),
    ];
    let mut not_seq_cst = Vec::new();
    let mut seq_cst = 0;
    for (name, text) in files {
        for line in text.lines() {
            let mut rest = line;
            while let Some(at) = rest.find("Ordering::") {
                let after = &rest[at + "Ordering::".len()..];
                let word: String = after
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                if word == "SeqCst" {
                    seq_cst += 1;
                } else {
                    not_seq_cst.push((name, word, line.trim().to_owned()));
                }
                rest = after;
            }
        }
    }
    let audited: Vec<(&str, String, String)> = [
        (
            "Relaxed",
            r#".field("cut", &self.cut_cell().load(Ordering::Relaxed))"#,
        ),
        ("Acquire", "fence(Ordering::Acquire);"),
        ("Acquire", "self.cut_cell().load(Ordering::Acquire)"),
    ]
    .into_iter()
    .map(|(word, line)| ("registry.rs", word.to_owned(), line.to_owned()))
    .collect();
    assert_eq!(not_seq_cst, audited);
    // Every other ordering is `SeqCst` (a count, so that one turned into
    // something this scan cannot read is seen too).
    assert_eq!(seq_cst, 76, "SeqCst orderings in the guard's files");
}
