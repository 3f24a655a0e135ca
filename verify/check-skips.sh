#!/usr/bin/env bash
# Checks the skips one CI stage recorded against verify/skips.allow.
#
#   verify/check-skips.sh STAGE LOG
#
# LOG is the file the stage's tests appended to through SHM_REGION_SKIP_LOG
# (one line per skip: `<binary>::<test>` TAB `<reason>`; tests/common's
# `skip` and the lib tests' copy of it write them). Prints every skip, then
# exits 1 if any (STAGE, test) pair is not on the allow-list. A missing or
# empty LOG means nothing skipped.
set -euo pipefail
stage="$1"
log="$2"
allow="$(cd "$(dirname "$0")" && pwd)/skips.allow"
[[ -s "$log" ]] || { echo "skips in stage $stage: none"; exit 0; }
status=0
echo "skips in stage $stage:"
# Each test once, however many times (child processes, sizes) it skipped.
while IFS=$'\t' read -r test reason; do
    # Allow-list lines: `stage | test | reason`; '#' starts a comment.
    if awk -F'|' -v s="$stage" -v t="$test" '
        /^[[:space:]]*(#|$)/ { next }
        { gsub(/^[[:space:]]+|[[:space:]]+$/, "", $1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", $2) }
        $1 == s && $2 == t { found = 1 }
        END { exit !found }' "$allow"; then
        echo "  allowed:     $test: $reason"
    else
        echo "  NOT ALLOWED: $test: $reason"
        status=1
    fi
done < <(sort -u "$log")
if [[ $status != 0 ]]; then
    echo "stage $stage skipped tests that verify/skips.allow does not list:"
    echo "make them run, or add 'stage | test | reason' lines with the reason"
fi
exit $status
