/* A stand-in for `ProcessPrng` of bcryptprimitives.dll, which Wine 8 lacks.
 *
 * Rust's standard library for x86_64-pc-windows-gnu imports `ProcessPrng`
 * (its random source for HashMap keys); without the DLL every Rust binary
 * fails to start under Wine 8 with STATUS_DLL_NOT_FOUND (c0000135).
 * verify/wine/setup.sh builds this file into a DLL and copies it into the
 * Wine prefix's system32. Test infrastructure only: it is never shipped.
 *
 * `SystemFunction036` is advapi32's export name of `RtlGenRandom`; it takes
 * a ULONG length, so larger requests are filled in pieces of at most
 * ULONG_MAX bytes. */
#include <windows.h>
#include <limits.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG piece = len > (SIZE_T)ULONG_MAX ? ULONG_MAX : (ULONG)len;
        if (!SystemFunction036(data, piece))
            return FALSE;
        data += piece;
        len -= piece;
    }
    return TRUE;
}
