#!/usr/bin/env bash
# The planted-bug suite: applies each mutation in verify/planted/mutations
# to a scratch copy of the repository, runs the harness it names, reverts,
# and prints a table. Exits non-zero if any planted bug survives its
# harness, a mutation does not apply, a mutated tree does not build, or a
# harness fails on the unmutated tree.
#
#   verify/planted/run.sh                  every mutation
#   verify/planted/run.sh --ci             the CI subset (mutations named in ci.list)
#   verify/planted/run.sh NAME...          the mutations whose file names start so
#
# Each mutation's output is kept in target/planted-logs/NAME.log.
#
# Harness lines (in each .mut file):
#   test ARGS [-- FILTER]   cargo test ARGS -- FILTER
#   loom ARGS [-- FILTER]   RUSTFLAGS="--cfg loom" cargo test --release ARGS
#                           at LOOM_MAX_PREEMPTIONS (default 3 here)
#   miri ARGS [-- FILTER]   cargo +nightly miri test ARGS with
#                           -Zmiri-many-seeds=0..$MIRI_SEEDS (default 32)
# ARGS may name a target: `test --target x86_64-pc-windows-gnu --test
# windows -- NAME` runs under Wine (run verify/wine/setup.sh once first;
# WINEPREFIX, below, points at the repository's prefix).
# Builds go to target/planted/<kind> of the repository, never to the
# repository's own target directories: cargo gives the scratch copy's
# artifacts the same names as the repository's (the path is not part of
# them), so sharing a directory would leave mutated binaries behind for
# the next build of the repository. The first run builds the dependencies
# once per kind; after that a mutation rebuilds only the crate.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
# Harnesses with `--target x86_64-pc-windows-gnu` run under Wine through
# verify/wine/runner.sh, which defaults WINEPREFIX to target/wine/prefix
# beside ITSELF: in the scratch copy, which has no target/. The prefix
# verify/wine/setup.sh made in the repository is used instead.
export WINEPREFIX="${WINEPREFIX:-$repo/target/wine/prefix}"
MIRI_SEEDS="${MIRI_SEEDS:-32}"
HARNESS_TIMEOUT="${HARNESS_TIMEOUT:-600}"
export CARGO_TERM_COLOR=never

mutations=()
if [[ "${1:-}" == "--ci" ]]; then
    while read -r name; do
        [[ -z "$name" || "$name" == \#* ]] && continue
        mutations+=("$here/mutations/$name.mut")
    done <"$here/ci.list"
elif [[ $# -gt 0 ]]; then
    for prefix in "$@"; do
        for m in "$here"/mutations/"$prefix"*.mut; do mutations+=("$m"); done
    done
else
    mutations=("$here"/mutations/*.mut)
fi
for m in "${mutations[@]}"; do
    [[ -f "$m" ]] || { echo "no such mutation: $m" >&2; exit 2; }
done

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# The working tree as it is (uncommitted changes included), without builds.
tar -C "$repo" --exclude=./target --exclude=./.git --exclude=./fuzz/target -cf - . | tar -C "$scratch" -xf -
pristine="$scratch/.pristine"
mkdir -p "$pristine"
# Mutations change files under src/ or examples/: those are restored.
tar -C "$scratch" --exclude=./.pristine -cf - src examples | tar -C "$pristine" -xf -

# run_harness KIND ARGS... : builds (--no-run), then runs. Prints "build"
# and returns 2 if the build fails; returns the test's status otherwise.
run_harness() {
    local kind="$1"; shift
    local build=() rest=() seen=0
    for a in "$@"; do
        if [[ $seen == 0 && "$a" == "--" ]]; then seen=1; fi
        if [[ $seen == 0 ]]; then build+=("$a"); else rest+=("$a"); fi
    done
    local -a cmd env
    case "$kind" in
        test) env=(CARGO_TARGET_DIR="$repo/target/planted/test")
              cmd=(cargo test --locked -q "${build[@]}") ;;
        loom) env=(CARGO_TARGET_DIR="$repo/target/planted/loom" RUSTFLAGS="--cfg loom")
              cmd=(cargo test --locked -q --release "${build[@]}") ;;
        miri) env=(CARGO_TARGET_DIR="$repo/target/planted/miri"
                   MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check -Zmiri-many-seeds=0..$MIRI_SEEDS")
              cmd=(cargo +nightly miri test --locked -q "${build[@]}") ;;
        *) echo "unknown harness kind $kind" >&2; return 3 ;;
    esac
    if ! (cd "$scratch" && env "${env[@]}" "${cmd[@]}" --no-run) >"$scratch/.log" 2>&1; then
        return 2
    fi
    (cd "$scratch" && env "${env[@]}" timeout "$HARNESS_TIMEOUT" "${cmd[@]}" "${rest[@]}") >>"$scratch/.log" 2>&1
}

restore() {
    for d in src examples; do
        rm -rf "${scratch:?}/$d" && cp -r "$pristine/$d" "$scratch/$d"
    done
}

# Each mutation's build and test output, for a look after the run.
logs="$repo/target/planted-logs"
mkdir -p "$logs"
status=0
declare -A baseline
rows=()
printf '%-48s %-58s %-8s %s\n' "planted bug" "harness" "caught?" "seconds"
for m in "${mutations[@]}"; do
    name="$(basename "$m" .mut)"
    harness="$(python3 "$here/apply.py" --field harness "$m")"
    # shellcheck disable=SC2086
    set -- $harness
    # The harness must pass on the unmutated tree (once per harness).
    if [[ -z "${baseline[$harness]:-}" ]]; then
        restore
        if run_harness "$@" && grep -Eq '^running [1-9]' "$scratch/.log"; then
            baseline[$harness]=ok
        else
            baseline[$harness]=fail
            echo "harness fails (or runs no test) on the unmutated tree: $harness" >&2
            tail -n 30 "$scratch/.log" >&2
        fi
    fi
    restore
    start=$(date +%s)
    if ! python3 "$here/apply.py" "$m" "$scratch"; then
        verdict="NO-APPLY"
    elif [[ "${baseline[$harness]}" != ok ]]; then
        verdict="BASELINE"
    else
        run_harness "$@"
        case $? in
            0) verdict="MISSED" ;;
            2) verdict="NO-BUILD" ; tail -n 20 "$scratch/.log" >&2 ;;
            124) verdict="TIMEOUT" ;;
            *) verdict="caught" ;;
        esac
    fi
    secs=$(( $(date +%s) - start ))
    cp "$scratch/.log" "$logs/$name.log" 2>/dev/null
    [[ "$verdict" == caught ]] || status=1
    printf '%-48s %-58s %-8s %s\n' "$name" "$harness" "$verdict" "$secs"
done
restore
exit $status
