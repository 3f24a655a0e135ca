//! `Region::read_val` and `write_val` (feature `zerocopy`): typed copies at
//! any offset with exactly the bounds, truncation and read-only rules of
//! `read_at` and `write_at`. Tests over in-memory regions also run under
//! Miri (`cargo +nightly miri test --features zerocopy --test typed`).
#![cfg(all(unix, feature = "zerocopy"))]

mod common;

use shm_region::{ErrorKind, MmapOptions, MmapRegion, Region};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const PAGE: usize = 4096;

/// A protocol header: no padding (24 bytes, alignment 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Header {
    magic: [u8; 4],
    version: u32,
    len: u64,
    flags: u16,
    kind: u8,
    reserved: [u8; 5],
}

const SIZE: usize = std::mem::size_of::<Header>();

fn header(len: u64) -> Header {
    Header {
        magic: *b"SHMR",
        version: 0x0102_0304,
        len,
        flags: 0xA55A,
        kind: 7,
        reserved: [1, 2, 3, 4, 5],
    }
}

fn in_memory(size: usize) -> MmapRegion {
    MmapOptions::new()
        .address_space(4 * PAGE)
        .in_memory(size)
        .unwrap()
}

#[test]
fn typed_value_round_trips_at_an_unaligned_offset_as_its_exact_bytes() {
    assert_eq!((SIZE, std::mem::align_of::<Header>()), (24, 8));
    let region = in_memory(PAGE);
    let r = region.region();
    let h = header(0x1122_3344_5566_7788);
    for offset in [3, 1, 8, PAGE - SIZE] {
        r.write_val(offset, &h).unwrap();
        assert_eq!(r.read_val::<Header>(offset).unwrap(), h, "at {offset}");
        // The region holds exactly the value's bytes, native byte order.
        let mut bytes = [0u8; SIZE];
        r.read_at(offset, &mut bytes).unwrap();
        assert_eq!(&bytes, h.as_bytes(), "at {offset}");
        // And a field read on its own, at its unaligned place.
        assert_eq!(
            r.read_val::<u64>(offset + 8).unwrap(),
            0x1122_3344_5566_7788
        );
        assert_eq!(r.read_val::<u16>(offset + 16).unwrap(), 0xA55A);
    }
    // Bytes written as bytes read back as the value they make.
    r.write_at(100, h.as_bytes()).unwrap();
    assert_eq!(r.read_val::<Header>(100).unwrap(), h);
    // Arrays and other `FromBytes` types.
    r.write_val(5, &[1u32, 2, 3]).unwrap();
    assert_eq!(r.read_val::<[u32; 3]>(5).unwrap(), [1, 2, 3]);
}

#[test]
fn typed_accesses_fail_exactly_as_read_at_and_write_at_do_and_write_nothing() {
    let region = in_memory(PAGE);
    let r = region.region();
    let h = header(1);
    r.write_at(PAGE - SIZE, &[0xEE; SIZE]).unwrap();
    let cases = [
        PAGE - SIZE + 1,
        PAGE - 1,
        PAGE,
        PAGE + 1,
        usize::MAX - 1,
        usize::MAX,
    ];
    for offset in cases {
        let expected = r.read_at(offset, &mut [0u8; SIZE]).unwrap_err();
        assert_eq!(expected.kind(), ErrorKind::OutOfBounds);
        assert_eq!(
            r.read_val::<Header>(offset).unwrap_err(),
            expected,
            "{offset}"
        );
        let expected = r.write_at(offset, &[0u8; SIZE]).unwrap_err();
        assert_eq!(r.write_val(offset, &h).unwrap_err(), expected, "{offset}");
    }
    let mut tail = [0u8; SIZE];
    r.read_at(PAGE - SIZE, &mut tail).unwrap();
    assert_eq!(tail, [0xEE; SIZE], "a refused write wrote nothing");
    // The last place a value fits is accepted.
    r.write_val(PAGE - SIZE, &h).unwrap();
    assert_eq!(r.read_val::<Header>(PAGE - SIZE).unwrap(), h);
    // A value of size 0 is bounded as an empty `read_at` / `write_at`.
    assert_eq!(r.read_val::<()>(PAGE), Ok(()));
    assert_eq!(r.write_val(PAGE, &()), Ok(()));
    let expected = r.read_at(PAGE + 1, &mut []).unwrap_err();
    assert_eq!(r.read_val::<()>(PAGE + 1).unwrap_err(), expected);
    let expected = r.write_at(PAGE + 1, &[]).unwrap_err();
    assert_eq!(r.write_val(PAGE + 1, &()).unwrap_err(), expected);
}

#[test]
fn typed_value_written_by_one_handle_is_read_by_an_in_memory_peer() {
    let mut host = in_memory(PAGE);
    let mut peer = host.peer().unwrap();
    host.resize(2 * PAGE).unwrap();
    host.region()
        .write_val(2 * PAGE - SIZE, &header(2))
        .unwrap();
    // Not followed yet: the peer's view ends at PAGE.
    let stale: Region = peer.region();
    assert_eq!(
        stale
            .read_val::<Header>(2 * PAGE - SIZE)
            .unwrap_err()
            .kind(),
        ErrorKind::OutOfBounds
    );
    assert!(peer.check_and_remap().unwrap());
    assert_eq!(
        peer.region().read_val::<Header>(2 * PAGE - SIZE),
        Ok(header(2))
    );
}

#[cfg(not(miri))]
mod native {
    use super::common::{role, run_self, seg};
    use super::*;
    use shm_region::FileCleanup;

    #[test]
    fn typed_value_written_by_another_process_is_read_by_the_host() {
        const NAME: &str = "native::typed_value_written_by_another_process_is_read_by_the_host";
        if let Some(path) = role() {
            let guest = MmapRegion::attach(&path).unwrap();
            guest.region().write_val(PAGE / 2 + 1, &header(42)).unwrap();
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let host = MmapRegion::create(seg(&dir), PAGE, FileCleanup::Manual).unwrap();
        run_self(NAME, seg(&dir).to_str().unwrap());
        assert_eq!(
            host.region().read_val::<Header>(PAGE / 2 + 1),
            Ok(header(42))
        );
    }

    #[test]
    fn typed_write_is_refused_on_a_read_only_region_which_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let host = MmapRegion::create(seg(&dir), PAGE, FileCleanup::Manual).unwrap();
        host.region().write_val(11, &header(3)).unwrap();
        let reader = MmapRegion::attach_read_only(seg(&dir)).unwrap();
        let err = reader.region().write_val(11, &header(4)).unwrap_err();
        assert_eq!(
            (err.kind(), err.operation()),
            (ErrorKind::ReadOnly, "write_at")
        );
        assert_eq!(reader.region().read_val::<Header>(11), Ok(header(3)));
    }

    #[test]
    fn typed_accesses_stop_at_the_end_a_detected_truncation_left() {
        let dir = tempfile::tempdir().unwrap();
        let host = MmapRegion::create(seg(&dir), 2 * PAGE, FileCleanup::Manual).unwrap();
        host.region().write_val(PAGE - SIZE, &header(5)).unwrap();
        let mut guest = MmapRegion::attach(seg(&dir)).unwrap();
        let view = guest.region();
        std::fs::OpenOptions::new()
            .write(true)
            .open(seg(&dir))
            .unwrap()
            .set_len(u64::try_from(PAGE).unwrap())
            .unwrap();
        assert_eq!(
            guest.check_and_remap().unwrap_err().kind(),
            ErrorKind::Truncated
        );
        // Within what is left: fine; across the new end: refused as
        // `Truncated` (inside the view's length, past the truncation the
        // handle found), as `read_at` and `write_at` refuse it, without
        // touching the lost page; past the view's length: `OutOfBounds`.
        assert_eq!(view.read_val::<Header>(PAGE - SIZE), Ok(header(5)));
        for offset in [PAGE - SIZE + 1, PAGE, 2 * PAGE - SIZE] {
            let err = view.read_val::<Header>(offset).unwrap_err();
            assert_eq!(err, view.read_at(offset, &mut [0; SIZE]).unwrap_err());
            assert_eq!(err.kind(), ErrorKind::Truncated);
            let err = view.write_val(offset, &header(6)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Truncated);
        }
        for offset in [2 * PAGE - SIZE + 1, 2 * PAGE] {
            let err = view.read_val::<Header>(offset).unwrap_err();
            assert_eq!(err, view.read_at(offset, &mut [0; SIZE]).unwrap_err());
            assert_eq!(err.kind(), ErrorKind::OutOfBounds);
            let err = view.write_val(offset, &header(6)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::OutOfBounds);
        }
        drop(host);
    }
}
