#!/usr/bin/env bash
# Prepares a Wine prefix in which Rust test binaries for
# x86_64-pc-windows-gnu run (verify/wine/runner.sh is cargo's runner).
#
#   bash verify/wine/setup.sh            # prefix in target/wine/prefix
#   WINEPREFIX=/some/dir bash verify/wine/setup.sh
#
# Needs the Debian packages wine64 and gcc-mingw-w64-x86-64 (Wine 8.0 on
# bookworm: the loader is /usr/lib/wine/wine64, no `wine` on PATH) and
# `rustup target add x86_64-pc-windows-gnu`.
#
# Steps: build the ProcessPrng stand-in (processprng.c: Rust's std imports
# ProcessPrng from bcryptprimitives.dll, which Wine 8 lacks, so every Rust
# binary would fail to start with c0000135), create a fresh prefix, copy
# the DLL into its system32 as bcryptprimitives.dll.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/target/wine"
export WINEPREFIX="${WINEPREFIX:-$out/prefix}"
export WINEDEBUG=-all
WINE64=${WINE64:-/usr/lib/wine/wine64}

for tool in x86_64-w64-mingw32-gcc "$WINE64"; do
    command -v "$tool" >/dev/null || {
        echo "setup.sh: $tool not found (apt-get install -y wine64 gcc-mingw-w64-x86-64)" >&2
        exit 1
    }
done

mkdir -p "$out"
x86_64-w64-mingw32-gcc -O2 -shared -s -o "$out/bcryptprimitives.dll" \
    "$here/processprng.c" "$here/processprng.def" -ladvapi32

# A fresh prefix every time: nothing left from an earlier run (files,
# sections, registry) can change a test's outcome.
rm -rf "$WINEPREFIX"
mkdir -p "$WINEPREFIX"
# `wineboot -i` creates the prefix; `wineserver -w` waits until it is
# written to disk (the server would otherwise still be saving it).
"$WINE64" wineboot -i >/dev/null 2>&1
"$(dirname "$WINE64")/wineserver" -w 2>/dev/null || wineserver -w 2>/dev/null || true

sys32="$WINEPREFIX/drive_c/windows/system32"
[ -d "$sys32" ] || { echo "setup.sh: $sys32 missing after wineboot" >&2; exit 1; }
cp "$out/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"
# Fixtures for the symbolic-link tests of src/sys/windows/tests.rs
# (`link_fixtures`): Wine 8's CreateSymbolicLinkW reports success and
# creates nothing, but Unix symbolic links inside the prefix are links to
# Wine's file calls (followed by a plain open; CREATE_NEW refuses them).
fix="$WINEPREFIX/drive_c/shm-region-fixtures"
mkdir -p "$fix/real"
ln -s "$fix/missing" "$fix/dangling"
ln -s "$fix/real" "$fix/dirlink"
echo "setup.sh: Wine prefix ready in $WINEPREFIX"
