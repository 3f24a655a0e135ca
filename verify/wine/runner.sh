#!/usr/bin/env bash
# cargo's runner for x86_64-pc-windows-gnu (.cargo/config.toml): runs the
# binary and its arguments under Wine in the prefix verify/wine/setup.sh
# made, and exits with the binary's exit code.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export WINEPREFIX="${WINEPREFIX:-$root/target/wine/prefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
if [ ! -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
    echo "runner.sh: no prepared Wine prefix in $WINEPREFIX: run verify/wine/setup.sh first" >&2
    exit 101
fi
exec "${WINE64:-/usr/lib/wine/wine64}" "$@"
