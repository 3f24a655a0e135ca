//! `MmapRegion::ensure_len`: no system call while enough is mapped, one
//! `check_and_remap` otherwise, `OutOfBounds` for a length the file does
//! not have. The in-memory test also runs under Miri.
#![cfg(unix)]

mod common;

use std::sync::atomic::Ordering;

use common::kind;
use shm_region::{ErrorKind, MmapOptions, MmapRegion};

const PAGE: usize = 4096;
/// The header word where the producer announces the length it grew to.
const LEN: usize = 0;

fn announce(producer: &MmapRegion) {
    producer
        .region()
        .atomic_u64(LEN)
        .unwrap()
        .store(u64::try_from(producer.len()).unwrap(), Ordering::Release);
}

fn announced(consumer: &MmapRegion) -> usize {
    let v = consumer.region().load_u64(LEN, Ordering::Acquire).unwrap();
    usize::try_from(v).unwrap()
}

#[test]
fn ensure_len_on_an_in_memory_region_follows_a_peers_growth() {
    let mut producer = MmapOptions::new()
        .address_space(16 * PAGE)
        .in_memory(PAGE)
        .unwrap();
    announce(&producer);
    let mut consumer = producer.peer().unwrap();
    assert_eq!(consumer.ensure_len(announced(&consumer)), Ok(false));

    producer.resize(8 * PAGE).unwrap();
    producer.region().write_at(8 * PAGE - 4, b"tail").unwrap();
    announce(&producer);
    let want = announced(&consumer);
    assert_eq!(want, 8 * PAGE);
    assert_eq!(consumer.ensure_len(want), Ok(true));
    assert_eq!((consumer.len(), consumer.generation()), (8 * PAGE, 1));
    let mut b = [0u8; 4];
    consumer.region().read_at(8 * PAGE - 4, &mut b).unwrap();
    assert_eq!(&b, b"tail");
    assert_eq!(consumer.ensure_len(want), Ok(false));
    assert_eq!(consumer.generation(), 1);

    // Past what the peers published: refused, nothing changes.
    let view = consumer.region();
    let err = consumer.ensure_len(8 * PAGE + 1).unwrap_err();
    assert_eq!(
        (err.kind(), err.operation()),
        (ErrorKind::OutOfBounds, "ensure_len")
    );
    assert_eq!((consumer.len(), consumer.generation()), (8 * PAGE, 1));
    assert!(view.is_current());
}

#[cfg(not(miri))]
mod native {
    use super::common::{role, run_self, seg, set_file_len};
    use super::*;
    use shm_region::FileCleanup;

    #[test]
    fn ensure_len_makes_no_system_call_while_enough_is_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let host = MmapRegion::create(seg(&dir), 4 * PAGE, FileCleanup::Manual).unwrap();
        let mut guest = MmapRegion::attach(seg(&dir)).unwrap();
        let view = guest.region();

        // The file grows behind the guest's back: `check_and_remap` would
        // follow, but `ensure_len` does not look at the file.
        set_file_len(&dir, 8 * PAGE);
        assert_eq!(guest.ensure_len(4 * PAGE), Ok(false));
        assert_eq!(guest.ensure_len(1), Ok(false));
        assert_eq!(guest.ensure_len(0), Ok(false));
        assert_eq!((guest.len(), guest.generation()), (4 * PAGE, 0));
        assert!(view.is_current());

        // Now it shrinks behind the guest's back: `check_and_remap` would
        // report it, `ensure_len` still does not notice.
        set_file_len(&dir, PAGE);
        assert_eq!(guest.ensure_len(4 * PAGE), Ok(false));
        assert_eq!((guest.len(), guest.generation()), (4 * PAGE, 0));
        assert_eq!(kind(guest.check_and_remap()), ErrorKind::Truncated);
        drop(host);
    }

    #[test]
    fn ensure_len_follows_growth_by_a_peer_process_announced_in_a_header_word() {
        const NAME: &str =
            "native::ensure_len_follows_growth_by_a_peer_process_announced_in_a_header_word";
        if let Some(path) = role() {
            // The producer: another process that grows, fills and announces.
            let mut producer = MmapRegion::attach(&path).unwrap();
            producer.resize(32 * PAGE).unwrap();
            producer
                .region()
                .write_at(32 * PAGE - 8, b"producer")
                .unwrap();
            announce(&producer);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut consumer = MmapRegion::create(seg(&dir), PAGE, FileCleanup::Manual).unwrap();
        announce(&consumer);
        assert_eq!(consumer.ensure_len(announced(&consumer)), Ok(false));
        run_self(NAME, seg(&dir).to_str().unwrap());

        let want = announced(&consumer);
        assert_eq!(want, 32 * PAGE);
        assert_eq!(consumer.ensure_len(want), Ok(true));
        assert_eq!((consumer.len(), consumer.generation()), (32 * PAGE, 1));
        let mut b = [0u8; 8];
        consumer.region().read_at(32 * PAGE - 8, &mut b).unwrap();
        assert_eq!(&b, b"producer");
        assert_eq!(consumer.ensure_len(want), Ok(false));
        assert_eq!(consumer.generation(), 1);
    }

    #[test]
    fn ensure_len_follows_growth_by_a_second_handle_and_on_a_read_only_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut producer = MmapRegion::create(seg(&dir), PAGE, FileCleanup::Manual).unwrap();
        let mut peer = producer.peer().unwrap();
        let mut reader = MmapRegion::attach_read_only(seg(&dir)).unwrap();
        producer.resize(4 * PAGE).unwrap();
        producer.region().write_at(4 * PAGE - 2, b"ok").unwrap();
        announce(&producer);
        for consumer in [&mut peer, &mut reader] {
            let want = announced(consumer);
            assert_eq!(consumer.ensure_len(want), Ok(true));
            assert_eq!((consumer.len(), consumer.generation()), (4 * PAGE, 1));
            let mut b = [0u8; 2];
            consumer.region().read_at(4 * PAGE - 2, &mut b).unwrap();
            assert_eq!(&b, b"ok");
        }
    }

    #[test]
    fn ensure_len_past_the_file_is_out_of_bounds_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let host = MmapRegion::create(seg(&dir), 2 * PAGE, FileCleanup::Manual).unwrap();
        let mut guest = MmapRegion::attach(seg(&dir)).unwrap();
        let view = guest.region();
        for min in [2 * PAGE + 1, 1 << 30, usize::MAX] {
            let err = guest.ensure_len(min).unwrap_err();
            assert_eq!(
                (err.kind(), err.operation()),
                (ErrorKind::OutOfBounds, "ensure_len")
            );
            assert_eq!((guest.len(), guest.generation()), (2 * PAGE, 0));
            assert!(view.is_current());
            assert_eq!(
                err.to_string(),
                format!(
                    "ensure_len: access out of bounds: {min} bytes at offset 0, accessible length {}",
                    2 * PAGE
                )
            );
        }
        assert_eq!(std::fs::metadata(seg(&dir)).unwrap().len(), 2 * 4096);
        // A growth short of `min` is still followed before the refusal.
        set_file_len(&dir, 3 * PAGE);
        assert_eq!(kind(guest.ensure_len(4 * PAGE)), ErrorKind::OutOfBounds);
        assert_eq!((guest.len(), guest.generation()), (3 * PAGE, 1));
        drop(host);
    }

    #[test]
    fn ensure_len_passes_the_errors_of_check_and_remap_through() {
        let dir = tempfile::tempdir().unwrap();
        let host = MmapRegion::create(seg(&dir), 2 * PAGE, FileCleanup::Manual).unwrap();
        let mut capped = MmapOptions::new()
            .max_size(3 * PAGE)
            .attach(seg(&dir))
            .unwrap();
        let mut guest = MmapRegion::attach(seg(&dir)).unwrap();

        set_file_len(&dir, 4 * PAGE);
        let err = capped.ensure_len(4 * PAGE).unwrap_err();
        assert_eq!(
            (err.kind(), err.operation()),
            (ErrorKind::FileTooLarge, "check_and_remap")
        );
        assert_eq!((capped.len(), capped.generation()), (2 * PAGE, 0));

        set_file_len(&dir, PAGE);
        let err = guest.ensure_len(3 * PAGE).unwrap_err();
        assert_eq!(
            (err.kind(), err.operation()),
            (ErrorKind::Truncated, "check_and_remap")
        );
        // Once a truncation was seen, the accessible length is what is left:
        // within it no system call, past it `Truncated` again.
        assert_eq!(guest.ensure_len(PAGE), Ok(false));
        assert_eq!(kind(guest.ensure_len(PAGE + 1)), ErrorKind::Truncated);
        drop(host);
    }
}
