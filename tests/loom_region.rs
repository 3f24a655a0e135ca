//! Loom models of the real `MmapRegion::resize`, `check_and_remap` and
//! `peer` over in-memory regions (whose bytes are loom-modelled under
//! `--cfg loom`, see `src/sys/loom_memory.rs`): nothing of the remapping
//! logic is re-implemented here. Models 3 and 4 check a hand-over through
//! `Region::wait_u32` and `wake_u32` (their loom model is described on
//! `wait_u32`).
//!
//! Run with (as CI does):
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --test loom_region -- --nocapture
//! ```
#![cfg(loom)]
#![cfg(unix)]

mod common;
use common::model;

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::thread;
use shm_region::{MmapOptions, MmapRegion, Region};

/// The region starts 8 bytes long and grows to 16, then 24 (its whole
/// capacity: 6 loom words and 3 wide slots).
const CAPACITY: usize = 24;

/// The host writes bytes `0..4` before anything is shared, `4..8` before
/// its first growth and `8..16` between the two growths.
fn host_side(mut host: MmapRegion) -> MmapRegion {
    host.region().write_at(4, &[5; 4]).unwrap();
    host.resize(16).unwrap();
    host.region().write_at(8, &[9; 8]).unwrap();
    host.resize(CAPACITY).unwrap();
    host
}

/// Reads the whole of `r` and checks every byte that a handle of this
/// length must see: a length of 16 or more was published after `4..8` was
/// written, and one of 24 after `8..16`; bytes past 16 stay zero.
fn assert_contents(r: &Region) {
    let mut bytes = vec![0xAA; r.len()];
    r.read_at(0, &mut bytes).unwrap();
    assert_eq!(bytes[..4], [1; 4]);
    if r.len() >= 16 {
        assert_eq!(
            bytes[4..8],
            [5; 4],
            "bytes written before the growth to {} are stale",
            r.len()
        );
    }
    if r.len() >= 24 {
        assert_eq!(
            bytes[8..16],
            [9; 8],
            "bytes written before the growth to 24 are stale"
        );
        assert_eq!(bytes[16..24], [0; 8]);
    }
}

/// Model 1. The host grows its in-memory region twice (in place) on one
/// thread while, on another, a peer made before follows with
/// `check_and_remap` (twice) and a second peer is made from it mid-growth.
/// Proves, for the crate's real code: a handle's generation goes up by one
/// exactly when `check_and_remap` reports a growth; a view taken before is
/// then stale, and its `refresh` moves it to the handle's newest length and
/// generation; a length published by `resize`, `check_and_remap` or `peer`
/// comes with every byte the host wrote before that growth; the host's own
/// stale view (each growth in place bumps the generation) refreshes to the
/// final length.
#[test]
fn resize_races_check_and_remap_and_peer() {
    model("resize_races_check_and_remap_and_peer", || {
        let host = MmapOptions::new()
            .address_space(CAPACITY)
            .in_memory(8)
            .unwrap();
        host.region().write_at(0, &[1; 4]).unwrap();
        let mut peer = host.peer().unwrap();
        let mut host_view = host.region();
        let grower = thread::spawn(move || host_side(host));

        let late = peer.peer().unwrap();
        assert_eq!(late.generation(), 0);
        assert_contents(&late.region());

        let mut view = peer.region();
        for _ in 0..2 {
            let before = peer.generation();
            let grew = peer.check_and_remap().unwrap();
            assert_eq!(peer.generation(), before + u64::from(grew));
            assert_contents(&peer.region());
            assert_eq!(
                view.is_current(),
                !grew,
                "staleness disagrees with the growth"
            );
            assert_eq!(view.refresh(), grew);
            assert_eq!(
                (view.len(), view.generation()),
                (peer.len(), peer.generation())
            );
        }

        let host = grower.join().unwrap();
        assert_eq!((host.len(), host.generation()), (CAPACITY, 2));
        assert!(
            !host_view.is_current(),
            "growth in place left the generation"
        );
        assert!(host_view.refresh());
        assert_eq!((host_view.len(), host_view.generation()), (CAPACITY, 2));
        assert_contents(&host_view);
        peer.check_and_remap().unwrap();
        assert_eq!(peer.len(), CAPACITY);
        assert_contents(&peer.region());
    });
}

/// Model 2. A view of the host is cloned into two threads, which refresh
/// and read it, while the host grows (once, in place) on the main thread.
/// Proves: a clone seen stale is moved by `refresh` to the new length and
/// generation together, and reads through it see the bytes written before
/// the growth.
/// Two growers and a late peer. Two handles of one in-memory region grow
/// it on two threads, one to 16 and one to the whole capacity, while the
/// main thread makes a peer from a third handle mid-growth and follows
/// with it. Proves, for the crate's real `resize`, `check_and_remap` and
/// `peer`: in every interleaving no handle sees its region shorter than
/// its own length (a grower that publishes a smaller size after a larger
/// one must not lower it: no spurious `Truncated`), the late peer starts
/// at a size some grower published, and every handle ends at exactly the
/// largest size asked for.
#[test]
fn two_growers_and_a_late_peer_never_see_a_truncation() {
    model("two_growers_and_a_late_peer_never_see_a_truncation", || {
        let host = MmapOptions::new()
            .address_space(CAPACITY)
            .in_memory(8)
            .unwrap();
        let growers: Vec<_> = [16, CAPACITY]
            .into_iter()
            .map(|to| {
                let mut h = host.peer().unwrap();
                thread::spawn(move || {
                    h.resize(to).unwrap();
                    assert_eq!(h.len(), to);
                    h
                })
            })
            .collect();
        let mut late = host.peer().unwrap();
        assert!([8, 16, CAPACITY].contains(&late.len()), "{}", late.len());
        late.check_and_remap().unwrap();
        let mut handles = vec![host, late];
        for g in growers {
            handles.push(g.join().unwrap());
        }
        for h in &mut handles {
            h.check_and_remap().unwrap();
            assert_eq!(h.len(), CAPACITY);
        }
    });
}

#[test]
fn host_views_cloned_into_threads_follow_a_growth_in_place() {
    model(
        "host_views_cloned_into_threads_follow_a_growth_in_place",
        || {
            let mut host = MmapOptions::new().address_space(16).in_memory(8).unwrap();
            let view = host.region();
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let mut v = view.clone();
                    thread::spawn(move || {
                        let stale = !v.is_current();
                        let moved = v.refresh();
                        assert!(moved || !stale, "refresh did not move a view seen stale");
                        assert_eq!(
                            (v.len(), v.generation()),
                            if moved { (16, 1) } else { (8, 0) }
                        );
                        if moved {
                            let mut b = [0; 4];
                            v.read_at(4, &mut b).unwrap();
                            assert_eq!(b, [5; 4], "bytes written before the growth are stale");
                        }
                    })
                })
                .collect();
            drop(view);
            host.region().write_at(4, &[5; 4]).unwrap();
            host.resize(16).unwrap();
            for r in readers {
                r.join().unwrap();
            }
        },
    );
}

/// The waiter of models 3 and 4: loads the flag at 0 with `Acquire` and
/// calls `wait_u32` while it is 0, then reads the record at 8..16. Returns
/// how many waits timed out.
fn wait_for_record(view: &Region, timeout: Option<std::time::Duration>) -> usize {
    let mut timeouts = 0;
    while view.load_u32(0, Ordering::Acquire).unwrap() == 0 {
        if view.wait_u32(0, 0, timeout).unwrap() {
            // The model has no spurious wake-ups: `Ok(true)` means the
            // wait saw the flag stored.
            assert_ne!(view.load_u32(0, Ordering::Relaxed).unwrap(), 0);
        } else {
            assert!(timeout.is_some(), "a wait without a timeout timed out");
            timeouts += 1;
        }
    }
    let mut record = [0; 8];
    view.read_at(8, &mut record).unwrap();
    assert_eq!(record, [7; 8], "the record stored before the flag is stale");
    timeouts
}

/// The storer of models 3 and 4: writes the record, stores the flag with
/// `Release` and wakes (`Ok(0)` under loom: waiters re-load by themselves).
fn store_record(view: &Region) {
    view.write_at(8, &[7; 8]).unwrap();
    view.atomic_u32(0).unwrap().store(1, Ordering::Release);
    assert_eq!(view.wake_u32(0, 1), Ok(0));
}

/// Model 3. A thread waits for a flag with `wait_u32` (no timeout) while
/// another writes a record, stores the flag and wakes. Proves, for the
/// crate's loom model of the wait: it returns `Ok(true)` once the flag is
/// stored and never otherwise, the waiter's loop ends, and the record read
/// after the loop's `Acquire` load is complete; `wake_u32` is `Ok(0)`.
#[test]
fn wait_u32_ends_once_a_flag_is_stored_and_the_record_is_seen() {
    model(
        "wait_u32_ends_once_a_flag_is_stored_and_the_record_is_seen",
        || {
            let host = MmapOptions::new().address_space(16).in_memory(16).unwrap();
            let view = host.region();
            let waiter = {
                let view = view.clone();
                thread::spawn(move || wait_for_record(&view, None))
            };
            store_record(&view);
            assert_eq!(waiter.join().unwrap(), 0);
        },
    );
}

/// Model 4. As model 3 with a timeout on every wait: some executions
/// (counted across them) see a wait return `Ok(false)`, the loop goes on,
/// and the record is complete once the flag is seen.
#[test]
fn wait_u32_with_a_timeout_ends_once_a_flag_is_stored_and_the_record_is_seen() {
    static TIMED_OUT: AtomicUsize = AtomicUsize::new(0);
    model(
        "wait_u32_with_a_timeout_ends_once_a_flag_is_stored_and_the_record_is_seen",
        || {
            let host = MmapOptions::new().address_space(16).in_memory(16).unwrap();
            let view = host.region();
            let waiter = {
                let view = view.clone();
                thread::spawn(move || {
                    wait_for_record(&view, Some(std::time::Duration::from_millis(1)))
                })
            };
            store_record(&view);
            if waiter.join().unwrap() > 0 {
                TIMED_OUT.fetch_add(1, Ordering::Relaxed);
            }
        },
    );
    assert!(
        TIMED_OUT.load(Ordering::Relaxed) > 0,
        "loom never explored a timeout"
    );
}

/// Model 5. A peer reads its whole region with `for_each_chunk` on one
/// thread, before and after following a growth, while the host grows
/// twice (in place) on another. Proves: the chunks of a range the handle
/// published cover it exactly, in order, and carry every byte the host
/// wrote before publishing that length (the same guarantee as `read_at`),
/// whether the growth happened before, during or after the pass.
#[test]
fn for_each_chunk_races_a_growth_and_sees_every_published_byte() {
    model(
        "for_each_chunk_races_a_growth_and_sees_every_published_byte",
        || {
            let host = MmapOptions::new()
                .address_space(CAPACITY)
                .in_memory(8)
                .unwrap();
            host.region().write_at(0, &[1; 4]).unwrap();
            let mut peer = host.peer().unwrap();
            let grower = thread::spawn(move || host_side(host));

            for _ in 0..2 {
                let view = peer.region();
                let mut seen = Vec::new();
                view.for_each_chunk(0, view.len(), |c| seen.extend_from_slice(c))
                    .unwrap();
                assert_eq!(seen.len(), view.len());
                // The same checks as `assert_contents`, on the chunks.
                assert_eq!(seen[..4], [1; 4]);
                if view.len() >= 16 {
                    assert_eq!(seen[4..8], [5; 4], "chunk bytes stale after growth");
                }
                if view.len() >= 24 {
                    assert_eq!(seen[8..16], [9; 8], "chunk bytes stale after growth");
                }
                peer.check_and_remap().unwrap();
            }
            grower.join().unwrap();
        },
    );
}

/// Model 6. The host writes bytes `4..8` and grows its in-memory region
/// from 8 to 16 bytes on one thread, then raises a flag with a `Relaxed`
/// store; the main thread spins on the flag with `Relaxed` loads (no
/// synchronisation: it only steers loom to the interleaving that matters),
/// then makes a new handle with `peer` from a handle made before, reads
/// through it, and follows with `check_and_remap` and reads again. The
/// only edge from the host's bytes to the new handles is the published
/// length, which `peer` and `check_and_remap` must load with `Acquire`.
/// Proves: a handle that takes the length 16 reads the bytes written
/// before it was published. (The spin is needed: loom's search keeps only
/// the last access to each atomic, and `resize` loads the length itself
/// just before it raises it, which hides the peer's earlier load from the
/// search; without the flag loom runs one interleaving, the peer's first,
/// and a `Relaxed` load of the length passes, as it passes model 1.)
#[test]
fn a_peer_made_after_a_growth_reads_every_byte_written_before_the_length_it_took() {
    model(
        "a_peer_made_after_a_growth_reads_every_byte_written_before_the_length_it_took",
        || {
            let mut host = MmapOptions::new().address_space(16).in_memory(8).unwrap();
            let mut follower = host.peer().unwrap();
            let grown = loom::sync::Arc::new(loom::sync::atomic::AtomicUsize::new(0));
            let flag = loom::sync::Arc::clone(&grown);
            let grower = thread::spawn(move || {
                host.region().write_at(4, &[5; 4]).unwrap();
                host.resize(16).unwrap();
                flag.store(1, Ordering::Relaxed);
                host
            });
            while grown.load(Ordering::Relaxed) == 0 {
                thread::yield_now();
            }
            let stale = |h: &MmapRegion, what: &str| {
                assert!([8, 16].contains(&h.len()), "{what}: {}", h.len());
                if h.len() == 16 {
                    let mut b = [0; 4];
                    h.region().read_at(4, &mut b).unwrap();
                    assert_eq!(b, [5; 4], "{what} took the length 16 with stale bytes");
                }
            };
            let late = follower.peer().unwrap();
            stale(&late, "peer");
            let grew = follower.check_and_remap().unwrap();
            assert_eq!(grew, follower.len() == 16);
            stale(&follower, "check_and_remap");
            grower.join().unwrap();
        },
    );
}
