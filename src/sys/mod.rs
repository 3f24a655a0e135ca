//! The audited module: every `unsafe` operation of the crate lives here,
//! in its submodules `copy` (copies in and out of shared memory),
//! `mapping` (file mappings, their accesses and their release), `memory`
//! (the anonymous memory behind in-memory regions), `futex` (Linux: the
//! futex system calls on a word of a mapping), `hostile` (feature
//! `arbitrary`: in-memory mappings whose copies out and loads return a
//! fuzzer's input instead of the memory's bytes), `cmsg` (`recvmsg` with
//! a control buffer of its own, closing `SCM_PIDFD` descriptors), `fdio` (`read(2)` and
//! `write(2)` straight into and from a mapping), `peer` (Linux:
//! `getsockopt` of `SO_PEERPIDFD` and `SO_PEERCRED`), `frozen` (Linux: the
//! read-only mappings of write-sealed memfds behind `Frozen`, the only
//! `&[u8]` over mapped memory) and `sigbus` (Linux: the
//! registry of file mappings and the `SIGBUS` handler of
//! `shm_region::sigbus::install`; a directory: `sigbus/registry.rs` the
//! registry, `sigbus/handler.rs` the handler and its install,
//! `sigbus/replace.rs` the replacement pages and their fallbacks,
//! `sigbus/stub.rs` the stand-in elsewhere).
//!
//! Built with `--cfg loom`, the crate's `Mapping` is instead the loom model
//! in `loom_memory` (safe code: a table of loom atomics standing in for the
//! bytes of an in-memory region; see its documentation for the modelling
//! rules and the object count). The modules above still compile then, but
//! nothing creates their mappings: the file-backed constructors refuse with
//! `ErrorKind::Unsupported` and in-memory regions use the model.
//!
//! # Safety
//!
//! This module owns address-space ranges created with `mmap` and is the only
//! code that maps, unmaps or dereferences them. The rest of the crate reaches
//! the memory through the safe, bounds-checked methods of [`Mapping`]. The
//! invariants, referred to by number in the `SAFETY:` comments below:
//!
//! 1. **Ownership.** A `Mapping` exclusively owns the address range
//!    `[base, base + len)` from construction until `Drop`. For a file it was
//!    returned by `mmap` with a null hint (so the kernel chose a free
//!    range), nothing outside this module maps, unmaps or remaps inside it,
//!    and it is unmapped exactly once, in `Drop`. For an in-memory region
//!    (`memory.rs`) it is private anonymous memory, from `mmap` with a null
//!    hint, unmapped exactly once, in `Drop`; under Miri it was returned by
//!    the global allocator's `alloc_zeroed` with a page-aligned layout, and
//!    it is deallocated with that layout exactly once, in `Drop`. The file
//!    is never on hugetlbfs (`fs::validate` and the create path refuse
//!    it), so the kernel backs the range with base pages and
//!    `munmap(base, len)` covers all of it. A mapping made with
//!    `MmapOptions::dont_fork` (`MADV_DONTFORK`) does not exist in a child
//!    made by `fork`: there the child's copies of the handles and views own
//!    nothing, and the child may map something else at that address. The
//!    crate cannot see a `fork`; `MmapOptions::dont_fork` documents that
//!    such a child must neither use nor drop them (it may `exec`, which
//!    discards them unused, or leave with `_exit`). `fork` is `unsafe` to
//!    call from Rust for similar reasons.
//! 2. **Whole range mapped.** All of `[base, base + len)` is mapped readable
//!    (and writable when `writable`), `MAP_SHARED`, to the file from offset 0,
//!    or, in memory, is private anonymous (under Miri: allocated) memory,
//!    zero-initialised and writable (a
//!    hostile region's initial bytes are copied in before it is shared).
//!    `len` is a multiple of the page size and never changes. The range may
//!    extend past the file's end: that is how a region grows in place (the
//!    file grows under an existing mapping, so the base address stays and no
//!    page already faulted in is dropped). One exception: the `SIGBUS`
//!    handler (invariant 6) may replace pages of a file mapping at or past
//!    a page-aligned offset with anonymous zero pages: shared (`MAP_SHARED
//!    | MAP_ANONYMOUS`: no file name or descriptor, so no peer reaches
//!    them through the file; a child made by `fork` shares them, and a
//!    privileged process can open them through `/proc/<pid>/map_files/`,
//!    so they are foreign memory as in invariant 3) with the same
//!    protection; or, when those are refused, one page of the sink (a
//!    one-page memfd the crate made at `install`, sealed against shrinking
//!    and growing, so never past its end), `MAP_SHARED` with the same
//!    protection, whose bytes are garbage shared by every sink-replaced
//!    page; or, as a last resort, one private read-only page. The
//!    range stays mapped, owned and of the same length, so every read the
//!    other invariants allow stays valid (a write to a read-only
//!    last-resort page faults with `SIGSEGV`: a crash, not undefined
//!    behaviour, as in invariant 4); the replaced bytes are just no longer
//!    the file's, which `Mapping::cut` reports.
//! 3. **Foreign memory.** Other processes may write any byte of the mapping
//!    at any time, and so may other threads of this process through other
//!    views. No `&[u8]` or `&mut [u8]` is ever formed over it (the one
//!    exception, a `FrozenMapping`, is not a `Mapping`: invariant 8): bytes move
//!    only through [`copy_from_shared`](copy::copy_from_shared) and [`copy_to_shared`](copy::copy_to_shared) between the
//!    mapping and a caller's private buffer, or through
//!    `AtomicU32`/`AtomicU64` references. A copy racing a write may observe
//!    a mix of old and new bytes, but every byte it reads is a value some
//!    write stored there; it never reads outside the mapping.
//!
//!    *Copies racing accesses from this process.* The `core::sync::atomic`
//!    module documentation, "Memory model for atomic accesses", makes a data
//!    race (conflicting, unsynchronized accesses, at least one non-atomic)
//!    undefined behaviour, so a plain `ptr::copy_nonoverlapping` racing
//!    another thread's copy or atomic store would be. The copies therefore
//!    are:
//!    - on x86 and x86_64 (outside Miri), `asm!` blocks: `rep movsb`, or on
//!      x86_64 for copies of at most 256 bytes 16-byte moves in a loop (from
//!      65 bytes) or a few overlapping 16-, 8-, 4- and 1-byte moves, and
//!      above 256 bytes, where `rep movsb` would be slow (`copy::large_copy`
//!      chooses by CPU, length and the distance between the buffers modulo
//!      4096), loops of 32-byte AVX moves (AVX detected at run time;
//!      forwards, backwards, or forwards with non-temporal stores and a
//!      final `sfence`, which orders them before any later store such as a
//!      `Release` that publishes them) or, without AVX, of 16-byte SSE2
//!      moves backwards (a byte written twice gets, each time, a value read
//!      from its source byte). Every access is a plain load or store of 1
//!      to 32 bytes, or `rep movsb`'s. Copies out of at most 64
//!      bytes on x86_64 are instead a block that only loads the source into
//!      registers, declared `readonly` (not `pure`, so it is never merged
//!      with or hoisted past another read), followed by plain Rust stores
//!      of those registers into the caller's private buffer.
//!      By the Rust Reference's rules for inline assembly the
//!      compiler treats each block as a black box and may assume only its
//!      declared interface (`asm.rules.black-box`): its register operands,
//!      `nostack`, `preserves_flags`, and that it may read and write any
//!      memory an FFI function could (`asm.rules.mem-same-as-ffi`; neither
//!      `nomem` nor, except on the register-loading blocks, which only
//!      read, `readonly` is declared). The block is not a Rust
//!      non-atomic access, so there is no data race for the compiler to
//!      assume absent, and what the copy observes is defined by the
//!      hardware: x86 memory is coherent (x86-TSO) and every byte load and
//!      store is single-copy atomic, so each byte the copy reads or writes
//!      holds a value some store wrote. That is the outcome a loop of
//!      per-byte relaxed atomic accesses would give.
//!    - on every other target, and under Miri (which cannot run `asm!`), a
//!      loop of per-byte `AtomicU8` accesses with `Ordering::Relaxed`. The
//!      `AtomicU8::from_ptr` requirements hold: the alignment of `AtomicU8`
//!      is 1; the bytes are valid for reads and writes for the duration of
//!      each access (invariants 1 and 2), except on read-only mappings,
//!      where only relaxed loads are made, which the module documentation's
//!      "Atomic accesses to read-only memory" allows for sizes up to 4 or 8
//!      bytes on the targets it lists ([`read_only_load_ok`]); and the
//!      memory model is followed, since every copy uses the same 1-byte size
//!      and so races other copies only with same-size atomic accesses. Word
//!      and byte accesses are never mixed inside copies: two copies at
//!      different alignments would then race with different sizes. On
//!      targets outside that table a read-only mapping is read with
//!      `ptr::copy_nonoverlapping`: nothing in this process writes through a
//!      read-only mapping (the crate refuses, and the pages fault on a
//!      store), so that copy races only reads, which is no data race.
//!
//!    *Mixed-size atomics.* `Mapping::atomic_u32` and
//!    `Mapping::atomic_u64` at overlapping offsets (and, wherever copies are
//!    the per-byte loop, a copy's 1-byte atomics and a wider atomic) are
//!    atomic accesses of different sizes to the same bytes. The memory-model
//!    section allows racing ones only if both are reads, and the `from_ptr`
//!    requirements repeat that atomic accesses of different sizes may not be
//!    mixed without synchronization. The crate does not prevent such a race
//!    between two threads of this process: that is the caller's
//!    responsibility, documented on `Region::atomic_u32` and
//!    `Region::atomic_u64`. Refusing it would need a per-byte registry
//!    consulted on every access through every view, it could not cover
//!    other processes anyway, and the hardware keeps such accesses coherent:
//!    on x86, Arm, RISC-V and POWER each byte that a racing access of any
//!    size reads is a value some store wrote to it. Racing mixed-size reads
//!    are allowed by std. On x86 and x86_64 (outside Miri) a copy racing an
//!    atomic is not in this case: the copy is not a Rust atomic access.
//!
//!    *Futex words.* `futex.rs` also lets the kernel reach a word: it forms
//!    an `&AtomicU32` over an aligned word inside the mapping only to hand
//!    its address to `FUTEX_WAIT` (the kernel reads the word, atomically
//!    with respect to its queue) or `FUTEX_WAKE` (the kernel uses only the
//!    address). No Rust access is made through that reference, it never
//!    leaves `futex.rs`, and the kernel never writes the word, so it is
//!    formed over read-only mappings too, under the same target condition
//!    as the loads of read-only memory ([`read_only_load_ok`]`(4)`). The
//!    kernel's read is outside Rust's memory model, like another process's
//!    access; it orders nothing for the caller.
//! 4. **File length.** Pages of the mapping that lie past the file's current
//!    end raise `SIGBUS` when touched. That is a crash, not undefined
//!    behaviour: this module's own checks keep every access inside the
//!    mapping, and the callers bound every access by the length they last
//!    validated against `fstat`. A peer that truncates the file between that
//!    check and the access can still cause it. Unless the program installed
//!    the handler (invariant 6), which then contains it, that kills the
//!    process; `SECURITY.md` documents both.
//! 5. **Release.** `Drop` never panics and never leaks silently: if the
//!    kernel refuses to unmap the range, it stays mapped (nothing else can
//!    be placed there, so no memory is misused) and the crate-global counter
//!    read by [`unmap_failures`] goes up by one.
//! 6. **SIGBUS registry** (`sigbus/`, Linux outside Miri and loom). Every
//!    `Mapping` of a file is registered in a table of slots (a chain of
//!    chunks, allocated by `register` when every slot is taken, linked once
//!    and never freed) right after `mmap` returns it, before any other code
//!    can reach it,
//!    and is taken out of the handler's reach (`retire`: its slot marked
//!    `RETIRED`, then a wait until no handler is running) *before* `Drop`
//!    unmaps it; the slot is freed for reuse only after the unmap. All
//!    registry accesses are `SeqCst`, and a handler counts itself in a
//!    counter before it reads any slot and until it last uses one, so a
//!    handler that finds a slot `LIVE` acts on a range that stays mapped
//!    and owned by the crate until it returns, and no slot is reused while
//!    a handler may read it. Across `fork`: the counter and the per-slot
//!    "claimed by this process" flags live in private mappings advised
//!    `MADV_WIPEONFORK`, so a child starts with no handler counted (none
//!    runs in it) and no slot of its own. Its inherited slots are right for
//!    every mapping that came along (the range, the `Mapping` owning it and
//!    the slot were copied together); the slots of `dont_fork` mappings
//!    (recorded before the advice is given) name ranges the child does not
//!    have, and the handler skips them unless the child claimed them
//!    itself. The handler maps `MAP_FIXED` only inside such a range, and
//!    only pages at or past a value the range's cut has held (the cut only
//!    goes down; a registration resets it, so a reused slot starts uncut),
//!    so never over memory that is not ours and never below the cut: every
//!    range is checked (`within`) before its `mmap`, and a debug assertion
//!    fails first in debug builds. It stores the cut (`fetch_min`), in the
//!    slot and in the cut cell of the mapping's handle, before the `mmap`: the
//!    thread that faulted resumes after the store, and another thread can
//!    see the zero pages only after the `mmap` (a system call, and the TLB
//!    flush it waits for), which follows the store; every checked access
//!    loads the cut after an acquire fence once it has accessed the bytes,
//!    and refuses bytes at or past it (`ErrorKind::Truncated`). The cut the
//!    accessors load is the handle's cell (an `Arc` that every mapping of
//!    the handle holds, joined before the mapping is reachable): a cut of
//!    any of them is a cut of all. The slot's pointer to that cell is set
//!    at registration (and moved by `join`) and not cleared at release,
//!    but the handler dereferences it only for a slot it found `LIVE` and
//!    may act on, while it is counted in the counter: the registration
//!    holding the slot, and so the `Arc` (both the cell made at
//!    registration and the one joined), is dropped only after `retire`
//!    has waited for such handlers, and a freed slot's stale pointer is
//!    overwritten when the slot is claimed again, before it is `LIVE`.
//! 7. **Async-signal safety.** The `SIGBUS` handler allocates nothing,
//!    takes no lock and cannot panic (wrapping arithmetic, iterator
//!    bounds, no indexing; in debug builds one assertion, which aborts the
//!    process, that a replacement stays in its mapping): it runs with every
//!    blockable signal blocked (`sa_mask` full), so no other handler runs
//!    inside it; it makes atomic accesses to static memory, to the chunks
//!    of the registry (allocated outside the handler, never freed), to the
//!    cut cells of live slots, and to the `MADV_WIPEONFORK` pages (mapped
//!    outside the handler, never unmapped), and system calls only: `mmap` and
//!    `madvise` as rustix's raw system calls (the `linux_raw` backend: no
//!    `errno`, no allocation; on the Linux architectures where rustix uses
//!    libc instead, such as powerpc, mips and s390x, libc's thin wrappers,
//!    which touch `errno` only when the call fails: there a refused
//!    candidate `mmap` overwrites the interrupted code's `errno`, also when
//!    a later candidate succeeds and the interrupted code resumes, so code
//!    that faults between a failing call and its read of `errno` can read
//!    `ENOMEM`; when every candidate is refused the signal goes on to the
//!    previous disposition, and a failed `madvise` to the default action), and `sigaction` and `raise` from libc, both
//!    async-signal-safe in POSIX. The disposition it forwards to is two
//!    atomics (the handler's address and whether it takes `SA_SIGINFO`),
//!    stored before the handler was first installed; the address changes
//!    only to `SIG_DFL`, which needs no flags.
//! 8. **Frozen memory** (`frozen.rs`, Linux and Android). The one
//!    exception to invariant 3: a `FrozenMapping` hands out a `&[u8]` over
//!    its bytes, which is sound only because no write can reach them while
//!    the mapping exists, by anyone. `FrozenMapping::new` checks, itself,
//!    that the file carries `F_SEAL_WRITE`, `F_SEAL_GROW` and
//!    `F_SEAL_SHRINK` (memfd seals, Linux 3.17) and that the descriptor it
//!    maps is open `O_RDONLY`, and that the file has no hole
//!    (`lseek(SEEK_HOLE)` from 0 finds only the end; final too, since
//!    `F_SEAL_WRITE` refuses hole punching, and `fallocate` can only fill
//!    holes). For `freeze` it faults in once, through its own mapping, the
//!    pages `SEEK_HOLE` reports (`freeze` allocated every page with
//!    `fallocate` after the seals, when no hole can be punched any more,
//!    and shmem reports an allocated page never touched as a hole; the
//!    fault allocates nothing), then checks. It
//!    maps the whole file (its size read after
//!    the seals, so final) `PROT_READ`, `MAP_SHARED`, at a range the kernel
//!    chose, which it owns as invariant 1 says of a `Mapping`, unmaps once
//!    in `Drop` and, if the kernel refuses, leaves mapped and counts
//!    (invariant 5). Seals belong to the inode and can never be removed. Every
//!    route to a write is then refused by the kernel (`mm/memfd.c`,
//!    `mm/shmem.c`):
//!    - writes through any descriptor of the file, whoever holds it and
//!      however it was opened (received, duplicated, or reopened `O_RDWR`
//!      through `/proc/<pid>/fd`): `write`, `pwrite`, `writev`, and what
//!      goes through the same page-cache write path (`splice`, `sendfile`,
//!      `copy_file_range`, `io_uring`, AIO) fail with `EPERM`;
//!    - `fallocate` that punches a hole: `EPERM`; one that zeroes,
//!      collapses or inserts a range: `EOPNOTSUPP` (shmem implements only
//!      allocation and hole punching); allocation within the size leaves
//!      the bytes as they are (it fills no page that has data); `ftruncate`
//!      to a smaller or larger size: `EPERM` (`F_SEAL_SHRINK`,
//!      `F_SEAL_GROW`), so the mapped pages stay inside the file. No access
//!      raises `SIGBUS`: every page is inside the file, and none is a hole,
//!      so a read fault finds the page and allocates nothing (a hole would
//!      be filled by a new page on a read fault of a shared mapping, and
//!      raise `SIGBUS` where strict overcommit or a memory cgroup refuses
//!      it). Invariant 4 cannot apply, and the
//!      mapping is not in the `SIGBUS` registry, so the handler of
//!      invariant 6 never replaces its pages;
//!    - a new writable shared mapping, from any process: `EPERM`;
//!    - a writable shared mapping made before the seal: none exists.
//!      Adding `F_SEAL_WRITE` fails with `EBUSY` while any shared mapping
//!      of the file that may be made writable exists (even a `PROT_READ`
//!      one from a writable descriptor), or while pages of the file are
//!      pinned by the kernel for a write in flight (direct I/O, registered
//!      `io_uring` buffers): the seal waits for such pins and refuses if
//!      they stay;
//!    - `mprotect(PROT_WRITE)` of this mapping (or of any read-only shared
//!      mapping made from a read-only descriptor): `EACCES`, since such a
//!      mapping never has `VM_MAYWRITE`. Linux 6.7 and later also clear
//!      `VM_MAYWRITE` on read-only shared mappings of a write-sealed file
//!      made from writable descriptors; mapping from `O_RDONLY` does not
//!      depend on that. The crate never calls `mprotect` on it, and a
//!      caller needs `unsafe` code and the address to try;
//!    - a writable private mapping (`MAP_PRIVATE`) copies each page it
//!      writes: the file's pages are not changed;
//!    - `process_vm_writev` into this range: refused (`EFAULT`), since it
//!      writes only through writable mappings.
//!
//!    `/proc/self/mem` (and so `/proc/<pid>/mem` and `PTRACE_POKEDATA`,
//!    which write through the same forced access) cannot write this range:
//!    a forced write to a shared mapping without `VM_MAYWRITE` is refused,
//!    and the write fails with `EIO` (verified for `/proc/self/mem` by the
//!    test `the_kernel_refuses_writes_to_the_frozen_range_through_proc_self_mem`).
//!    Out of scope, as for every Rust guarantee: a process allowed to
//!    `ptrace` this one (same user, or root) can make it run any code, and
//!    so unmap the range and map other memory there, or write any of its
//!    private memory; and the kernel or hardware itself (a kernel bug, a
//!    swap device failing to read a page back, a device writing by DMA, `/dev/mem`). `F_SEAL_FUTURE_WRITE` (Linux 5.1) is not
//!    enough for this invariant: mappings made writable before it keep
//!    writing, which is what `MmapRegion::share_read_only` relies on, so
//!    regions sealed that way are still reached only through copies
//!    (invariant 3).
//! 9. **Descriptor I/O** (`fdio.rs`). `Mapping::write_fd` and
//!    `Mapping::read_fd` hand the kernel a range of the mapping as a
//!    pointer and a length: one `write(2)` from it or one `read(2)` into
//!    it (libc's calls, because rustix's take slices, which would be
//!    references over the shared bytes, forbidden by invariant 3). The
//!    range is checked as a copy's is (inside the caller's limit and,
//!    whatever that is, inside the mapping; invariants 1 and 2), and
//!    `read_fd` refuses read-only mappings, so the kernel stores only into
//!    pages mapped writable. The kernel's copy is not a Rust access: it
//!    reads or stores the pages as another process's access would
//!    (invariant 3), so it is no data race with this process's copies and
//!    atomics, and each byte it reads is a value some write stored there.
//!    No Rust reference to the range is formed and no intermediate buffer
//!    is used. A page the kernel cannot fault in, such as one past the
//!    file's end after a peer truncated it (invariant 4), raises no
//!    `SIGBUS`: the kernel's user-copy routines catch the fault, and the
//!    call returns a short count up to that page or fails with `EFAULT`
//!    (checked on Linux 6.18: a `write(2)` of 1 MiB from a mapping cut at
//!    4096 bytes returned 4096, the next call `EFAULT`; a `read(2)` into
//!    the cut range, `EFAULT`; with or without a `SIGBUS` handler). So
//!    descriptor I/O needs no guard, and the caller classifies `EFAULT` by
//!    `fstat` of the file (the mapping keeps the descriptor its handle
//!    opened, `Mapping::file`, for that alone). Pages the handler of
//!    invariant 6 replaced are private memory the kernel reads and writes
//!    like any; as after a copy, the caller checks the cut after the call.
//!    Under loom the model has no bytes for the kernel to copy: its
//!    `write_fd`/`read_fd` go through a private buffer instead (safe code).
//!    Under Miri the in-memory range is an allocation and Miri carries out
//!    the calls on the descriptors it emulates.
//! 10. **Received control messages** (`cmsg.rs`). `recvmsg_once` owns its
//!     control buffer, allocated zeroed, and lends it only to rustix's
//!     `recvmsg`, which hands it to the kernel; so every byte of it is
//!     initialised (a zero, or a byte the kernel wrote) when it is read back
//!     as `u8`. A descriptor number found there in an `SCM_PIDFD` message
//!     was installed in this process by the kernel for that message and is
//!     owned by nothing else: rustix 1.1 (the version in `Cargo.lock`)
//!     surfaces only `SCM_RIGHTS` and `SCM_CREDENTIALS`, so it neither
//!     returns nor closes it. It is adopted as an `OwnedFd` and closed once.
//!     `RecvAncillaryMessage` is non-exhaustive: if the rustix in use
//!     surfaces any other kind of message (a later 1.x that knows
//!     `SCM_PIDFD` would, and would close it when the message is dropped),
//!     nothing is adopted, so no descriptor is ever closed twice.
//! 11. **Peer pidfds** (`peer.rs`, Linux and Android). `getsockopt` is
//!     lent only live locals and their true length: an `int` for
//!     `SO_PEERPIDFD`, a `struct ucred` (plain integers, valid whatever
//!     the kernel writes, pid 0 included) for `SO_PEERCRED`. `peer_pidfd`
//!     takes ownership of the descriptor number only when the call
//!     succeeded and wrote a non-negative `int` of that length:
//!     `SO_PEERPIDFD` then installed a fresh pidfd in this process for this
//!     call, which nothing else owns.
// Only this module (and its submodules) may use unsafe code and the raw
// mapping calls.
#![allow(unsafe_code)]
#![allow(clippy::disallowed_methods)]

// Under loom their mappings are never made (see above).
#[cfg(unix)]
pub(crate) mod cmsg;
#[cfg_attr(loom, allow(dead_code))]
mod copy;
#[cfg(all(unix, not(loom)))]
mod fdio;
#[cfg(any(target_os = "linux", target_os = "android"))]
#[cfg_attr(loom, allow(dead_code))]
mod frozen;
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri), not(loom)))]
mod futex;
#[cfg(all(
    test,
    any(target_os = "linux", target_os = "android"),
    not(miri),
    not(loom)
))]
pub(crate) use futex::seam as futex_seam;
#[cfg(all(feature = "arbitrary", not(loom)))]
mod hostile;
#[cfg(loom)]
mod loom_memory;
#[cfg_attr(loom, allow(dead_code))]
mod mapping;
#[cfg_attr(loom, allow(dead_code))]
mod memory;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) mod peer;
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod sigbus;

// The platform part: the same names on every platform (`page_size`,
// `anonymous`, `Mapping`'s constructors, advice and release, `Errno`).
#[cfg(unix)]
#[cfg_attr(loom, allow(dead_code))]
mod unix;
#[cfg(unix)]
use unix as platform;
#[cfg(windows)]
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod windows;
#[cfg(windows)]
use windows as platform;

use std::sync::atomic::Ordering;

/// An operating-system error code: `errno` on Unix (rustix's type), a
/// Win32 error code on Windows, with the same constant names for the
/// situations the portable code tells apart.
#[cfg(unix)]
pub(crate) use rustix::io::Errno;
/// An owned descriptor (Unix) or handle (Windows) of a mapped file.
#[cfg(unix)]
pub(crate) type OwnedFile = std::os::fd::OwnedFd;
#[cfg(windows)]
pub(crate) use windows::OwnedFile;
/// A borrowed descriptor (Unix) or handle (Windows) of a mapped file.
#[cfg(unix)]
pub(crate) type BorrowedFile<'a> = std::os::fd::BorrowedFd<'a>;
#[cfg(windows)]
pub(crate) type BorrowedFile<'a> = std::os::windows::io::BorrowedHandle<'a>;

/// `file` borrowed, as the platform's calls take it.
pub(crate) fn borrow_file(file: &OwnedFile) -> BorrowedFile<'_> {
    #[cfg(unix)]
    return std::os::fd::AsFd::as_fd(file);
    #[cfg(windows)]
    return std::os::windows::io::AsHandle::as_handle(file);
}
#[cfg(windows)]
pub(crate) use windows::Errno;

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use frozen::{first_hole, FrozenMapping, Refusal as FrozenRefusal, FROZEN_SEALS};
#[cfg(loom)]
pub(crate) use loom_memory::Mapping;
pub use mapping::unmap_failures;
pub(crate) use mapping::Hint;
#[cfg(not(loom))]
pub(crate) use mapping::Mapping;

/// The system page size in bytes (a power of two).
pub(crate) fn page_size() -> usize {
    platform::page_size()
}

pub(crate) use platform::{address_space_limit, address_space_used};
#[cfg(windows)]
pub(crate) use windows::cpu_count;

/// Rounds `n` up to a multiple of the page size, or `None` on overflow.
pub(crate) fn round_up_to_page(n: usize) -> Option<usize> {
    let mask = page_size() - 1;
    n.checked_add(mask).map(|v| v & !mask)
}

/// Whether `len` bytes starting at `offset` lie inside `0..limit`, computed
/// without overflow (`offset + len` is never formed).
#[inline]
pub(crate) fn range_fits(offset: usize, len: usize, limit: usize) -> bool {
    offset <= limit && len <= limit - offset
}

/// After a relaxed load, the fence that gives it `order`'s guarantees (the
/// way std recommends acquiring on read-only memory).
pub(crate) fn fence_for(order: Ordering) {
    match order {
        Ordering::Acquire => std::sync::atomic::fence(Ordering::Acquire),
        Ordering::SeqCst => std::sync::atomic::fence(Ordering::SeqCst),
        _ => {}
    }
}

/// The widest relaxed atomic load, in bytes, that works on read-only memory
/// on this target, per the table in `core::sync::atomic`'s documentation
/// (0: none).
const READ_ONLY_LOAD_MAX: usize = if cfg!(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "loongarch64",
    target_arch = "mips64",
    target_arch = "powerpc64",
    target_arch = "riscv64",
    target_arch = "sparc64",
    target_arch = "s390x"
)) {
    8
} else if cfg!(any(
    target_arch = "x86",
    target_arch = "arm",
    target_arch = "loongarch32",
    target_arch = "mips",
    target_arch = "powerpc",
    target_arch = "riscv32",
    target_arch = "sparc",
    target_arch = "hexagon"
)) {
    4
} else {
    0
};

/// Whether a relaxed atomic load of `size` bytes works on read-only memory
/// on this target (see [`READ_ONLY_LOAD_MAX`]).
pub(crate) const fn read_only_load_ok(size: usize) -> bool {
    size <= READ_ONLY_LOAD_MAX
}

#[cfg(test)]
mod arithmetic_tests {
    use super::*;

    #[test]
    fn range_fits_rejects_overflowing_ranges() {
        assert!(range_fits(0, 10, 10));
        assert!(range_fits(10, 0, 10));
        assert!(!range_fits(10, 1, 10));
        assert!(!range_fits(11, 0, 10));
        assert!(!range_fits(usize::MAX, 2, 10));
        assert!(!range_fits(2, usize::MAX, 10));
        assert!(!range_fits(1, usize::MAX, usize::MAX));
        assert!(range_fits(1, usize::MAX - 1, usize::MAX));
    }

    #[test]
    fn round_up_to_page_is_exact_and_overflow_checked() {
        let ps = page_size();
        assert!(ps.is_power_of_two());
        assert_eq!(round_up_to_page(0), Some(0));
        assert_eq!(round_up_to_page(1), Some(ps));
        assert_eq!(round_up_to_page(ps), Some(ps));
        assert_eq!(round_up_to_page(ps + 1), Some(2 * ps));
        assert_eq!(round_up_to_page(usize::MAX), None);
        assert_eq!(round_up_to_page(usize::MAX - ps + 2), None);
    }

    #[test]
    fn read_only_loads_are_allowed_up_to_the_targets_width_and_no_wider() {
        let max = if cfg!(target_pointer_width = "64") {
            8
        } else {
            4
        };
        if READ_ONLY_LOAD_MAX > 0 {
            assert_eq!(READ_ONLY_LOAD_MAX, max);
        }
        for size in [1, 2, 4, 8, 16] {
            assert_eq!(
                read_only_load_ok(size),
                size <= READ_ONLY_LOAD_MAX,
                "{size}"
            );
        }
        if cfg!(target_arch = "x86_64") {
            assert!(read_only_load_ok(8) && !read_only_load_ok(9));
        }
    }
}
