//! Private memory behind in-memory regions, and the system's page size,
//! allocation granularity and CPU count (invariants W2, W8).

use std::io;
use std::ptr::{self, NonNull};

use windows_sys::Win32::System::Memory::{
    VirtualAlloc, VirtualFree, MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_READWRITE,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessAffinityMask};

fn system_info() -> SYSTEM_INFO {
    let mut info = SYSTEM_INFO::default();
    // SAFETY: W2: `info` is a live local of the structure the call fills;
    // `GetSystemInfo` cannot fail.
    unsafe { GetSystemInfo(&mut info) };
    info
}

/// The page size (4096 on x86-64 and ARM64 Windows): the unit of
/// commitment and protection.
pub fn page_size() -> usize {
    usize::try_from(system_info().dwPageSize).unwrap_or(4096)
}

#[cfg_attr(
    not(test),
    allow(dead_code, reason = "used by the tests of `sys::windows`")
)]
/// The allocation granularity (65536 on Windows): views and reservations
/// start at multiples of it.
pub fn allocation_granularity() -> usize {
    usize::try_from(system_info().dwAllocationGranularity).unwrap_or(65536)
}

/// How many CPUs this process may run on: the bits of its affinity mask
/// (`GetProcessAffinityMask`; on a machine of more than 64 logical CPUs,
/// those of its processor group), or `std::thread::available_parallelism`
/// if that call fails; at least 1.
pub fn cpu_count() -> usize {
    let mut process = 0usize;
    let mut system = 0usize;
    // SAFETY: `GetCurrentProcess` takes nothing and returns a pseudo
    // handle that needs no closing.
    let me = unsafe { GetCurrentProcess() };
    // SAFETY: W2: both out-pointers are live locals; the pseudo handle is
    // always valid.
    let ok = unsafe { GetProcessAffinityMask(me, &mut process, &mut system) };
    let n = if ok != 0 {
        usize::try_from(process.count_ones()).unwrap_or(1)
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    n.max(1)
}

#[cfg_attr(
    not(test),
    allow(dead_code, reason = "used by the tests of `sys::windows`")
)]
/// Allocates `len` bytes (rounded up to pages) of private, committed,
/// zeroed, read-write memory at an address the system chooses
/// (`VirtualAlloc(MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE)`).
///
/// # Errors
///
/// `InvalidInput` for `len` 0; otherwise the error of `VirtualAlloc`,
/// with its code (`ERROR_NOT_ENOUGH_MEMORY`, 8, or
/// `ERROR_COMMITMENT_LIMIT`, 1455).
pub fn alloc_private(len: usize) -> io::Result<NonNull<u8>> {
    private(len, MEM_RESERVE | MEM_COMMIT)
}

/// Reserves `len` bytes (rounded up to pages) of private address space at
/// an address the system chooses, none of it committed
/// (`VirtualAlloc(MEM_RESERVE)`): an in-memory region commits what it
/// publishes (`section::commit` through `View::from_raw`), and touching a
/// page that is not committed is an access violation (W10).
///
/// # Errors
///
/// As [`alloc_private`].
pub(crate) fn reserve_private(len: usize) -> io::Result<NonNull<u8>> {
    private(len, MEM_RESERVE)
}

fn private(len: usize, how: u32) -> io::Result<NonNull<u8>> {
    if len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "private memory of 0 bytes",
        ));
    }
    // SAFETY: W8: no address hint, so the system picks a free range and
    // touches no existing memory.
    let p = unsafe { VirtualAlloc(ptr::null(), len, how, PAGE_READWRITE) };
    NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)
}

/// Releases memory from [`alloc_private`]; `false` if `VirtualFree`
/// failed (the memory then stays allocated).
///
/// # Safety
///
/// `base` was returned by [`alloc_private`] or [`reserve_private`] and
/// not freed since, and
/// nothing uses the memory any more (no reference or pointer into it is
/// dereferenced after this call).
pub unsafe fn free_private(base: NonNull<u8>) -> bool {
    // SAFETY: W8: `base` is the start of an `alloc_private` allocation no
    // one uses any more (this function's contract); `MEM_RELEASE` with
    // size 0 releases exactly that allocation.
    unsafe { VirtualFree(base.as_ptr().cast(), 0, MEM_RELEASE) != 0 }
}
