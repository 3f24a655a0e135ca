//! The guide: long-form documentation, one module per topic, with runnable
//! examples (each is a doctest). These modules hold no items; `cargo doc
//! --open` shows the same pages as docs.rs.
//!
//! `shm-region` keeps the API names of a widely copied implementation from
//! a Rust IPC project, without its defects: that one truncates existing
//! files, follows symlinks, hands out views that dangle after a remap,
//! shrinks files from the attaching side, turns a full tmpfs into
//! `SIGBUS`, and re-faults every page after each grow.
//!
//! Memory is reached through [`Region`](crate::Region) views: copies in and
//! out ([`read_at`](crate::Region::read_at),
//! [`write_at`](crate::Region::write_at)), shared atomics
//! ([`atomic_u32`](crate::Region::atomic_u32),
//! [`atomic_u64`](crate::Region::atomic_u64), and the owned
//! [`shared_u32`](crate::Region::shared_u32),
//! [`shared_u64`](crate::Region::shared_u64)), waiting for a word to change
//! ([`wait_u32`](crate::Region::wait_u32),
//! [`wake_u32`](crate::Region::wake_u32)) and a raw base pointer
//! ([`as_ptr`](crate::Region::as_ptr)). A view never hands out `&[u8]`
//! over memory another process may be writing. The rule of the crate: a
//! `&[u8]` is handed out only over frozen memory, a `Frozen` (see
//! [`frozen`]), whose file the kernel refuses to let anyone write.
//! [`MmapOptions`](crate::MmapOptions) sets the non-default policies
//! (sparse growth, address-space reservation size, attaching to files of
//! other owners or with group/other write permission, populate, lock, size
//! limit, creation mode, required seals).
//!
//! | module | topic |
//! |---|---|
//! | [`behaviour`] | what each operation does when the path, the file or a peer misbehaves (the hardened-behaviour table) |
//! | [`growth`] | growing while in use and following: `resize`, `check_and_remap`, `ensure_len`, staged publish, read-only peers, mapping options, in-memory regions and `peer`, what growth costs |
//! | [`access`] | typed copies (feature `zerocopy`), `for_each_chunk`, descriptor I/O straight to and from the mapping |
//! | [`frozen`] | sealed memfds no peer can truncate, `freeze` and `Frozen` (`&[u8]` the kernel guarantees), `share_read_only` |
//! | [`sigbus`] | surviving a peer that truncates the file: `sigbus::install` |
//! | [`pool_servers`] | descriptor passing, servers of untrusted clients (wl_shm-style pools), the `pool_server` example |
//! | [`notification`] | `wait_u32`, `wait_u32_spin`, `EventCount`, `Doorbell`, `fdpass::peer_process` |
//! | [`interop`] | Python and C peers: POSIX shared-memory names, descriptors both ways |
//! | [`verifying`] | checking your protocol: loom models, fuzzing against a hostile peer (feature `arbitrary`) |
//! | [`resources`] | descriptors each handle keeps open, address-space reservations, the shares of the address space |
//! | [`errors`] | what an error says and how to match on it |
//! | [`internals`] | the checks run in CI, the fuzz targets, mutation testing, the source layout |

#[doc = include_str!("behaviour.md")]
pub mod behaviour {}

#[doc = include_str!("growth.md")]
pub mod growth {}

#[doc = include_str!("access.md")]
pub mod access {}

#[doc = include_str!("frozen.md")]
pub mod frozen {}

#[doc = include_str!("sigbus.md")]
pub mod sigbus {}

#[doc = include_str!("pool_servers.md")]
pub mod pool_servers {}

#[doc = include_str!("notification.md")]
pub mod notification {}

#[doc = include_str!("interop.md")]
pub mod interop {}

#[doc = include_str!("verifying.md")]
pub mod verifying {}

#[doc = include_str!("resources.md")]
pub mod resources {}

#[doc = include_str!("errors.md")]
pub mod errors {}

#[doc = include_str!("internals.md")]
pub mod internals {}
