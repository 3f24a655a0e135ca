//! Create + attach + drop of a 1 MiB region, with and without block
//! reservation, next to memmap2 mapping a freshly `set_len` file (created,
//! mapped, opened and mapped again, then unmapped and removed).

#[path = "support/mod.rs"]
mod support;

use std::fs::OpenOptions;
use std::hint::black_box;
use std::os::unix::fs::OpenOptionsExt;

use memmap2::MmapMut;
use shm_region::{FileCleanup, MmapOptions};
use support::Row;

const G: &str = "create_attach_drop_1mib";
const SIZE: usize = 1 << 20;

fn main() {
    let mut c = support::criterion();
    let dir = support::scratch();
    let path = dir.path().join("segment");

    let mut g = c.benchmark_group(G);
    for (id, reserve) in [("shm_region_reserved", true), ("shm_region_sparse", false)] {
        let mut options = MmapOptions::new();
        options.reserve_blocks(reserve);
        g.bench_function(id, |b| {
            b.iter(|| {
                let host = options
                    .create(&path, SIZE, FileCleanup::Manual)
                    .expect("create");
                let guest = options.attach(&path).expect("attach");
                black_box((&host, &guest));
                drop(guest);
                drop(host); // the owner removes the file
            });
        });
    }
    g.bench_function("memmap2", |b| {
        b.iter(|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .expect("create");
            file.set_len(u64::try_from(SIZE).unwrap()).expect("set_len");
            // SAFETY: the file is private to this benchmark.
            let host = unsafe { MmapMut::map_mut(&file) }.expect("map");
            let other = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .expect("open");
            // SAFETY: as above.
            let guest = unsafe { MmapMut::map_mut(&other) }.expect("map");
            black_box((&host, &guest));
            drop((guest, other, host, file));
            std::fs::remove_file(&path).expect("remove");
        });
    });
    g.finish();
    c.final_summary();

    support::report(
        G,
        &[
            Row {
                what: "shm_region (sparse) vs memmap2",
                ours: (G, "shm_region_sparse"),
                other: (G, "memmap2"),
                max_ratio: Some(1.5),
            },
            Row {
                what: "shm_region (blocks reserved) vs memmap2",
                ours: (G, "shm_region_reserved"),
                other: (G, "memmap2"),
                max_ratio: None,
            },
        ],
    );
}
