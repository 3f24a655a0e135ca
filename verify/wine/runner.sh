#!/usr/bin/env bash
# cargo's runner for x86_64-pc-windows-gnu (.cargo/config.toml): runs the
# binary and its arguments under Wine in the prefix verify/wine/setup.sh
# made, and exits with the binary's exit code.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export WINEPREFIX="${WINEPREFIX:-$root/target/wine/prefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
# No debugger for an unhandled exception: with winedbg started on a crash
# (an access violation in a test), the process's exit status was 0 in 5
# of 12 runs measured here (planted 130 then passed its harness), so a
# crashing test binary could pass; without it the status was 5 in all 13
# runs.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:+$WINEDLLOVERRIDES;}winedbg.exe=d"
if [ ! -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
    echo "runner.sh: no prepared Wine prefix in $WINEPREFIX: run verify/wine/setup.sh first" >&2
    exit 101
fi
exec "${WINE64:-/usr/lib/wine/wine64}" "$@"
