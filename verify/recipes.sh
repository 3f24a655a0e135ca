#!/usr/bin/env bash
# Builds the loom and fuzz recipes of the guide (`shm_region::guide::verifying`,
# src/guide/verifying.md) as written, so that a user who copies them meets
# no error and no warning.
#
#   verify/recipes.sh
#
# src/guide/verifying.md marks each recipe's code block with an HTML comment
# `<!-- recipe: NAME ... -->` on the line before it. This script copies the
# blocks, unchanged, into two scratch projects under target/recipes/:
#
# - loom: a crate depending on this one (path), whose Cargo.toml gets the
#   `loom-toml` block and whose tests/your_loom_test.rs is the `loom-test`
#   block; `cargo test --release --test your_loom_test` runs with
#   RUSTFLAGS="--cfg loom -D warnings", LOOM_MAX_PREEMPTIONS=3, as the
#   guide says.
# - fuzz: a cargo-fuzz crate as `cargo fuzz init` makes it, with the
#   `fuzz-toml` block as its dependencies (the one substitution: the
#   `shm-region` version becomes a path to this checkout) and
#   fuzz_targets/my_parser.rs made of the `fuzz-target` block followed by
#   the items of the `fuzz-parser` block (its doctest-only `# ` lines and
#   `main` left out), checked with `cargo check` and `-D warnings
#   -A dead_code` (the parser block holds `parse_buggy`, the guide's
#   example of the bug, which the target does not call).
#
# Offline, with the versions of this repository's lock files.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/target/recipes"
mkdir -p "$out"
export CARGO_TERM_COLOR=never

# The file holding the recipes.
recipes="$repo/src/guide/verifying.md"

# block NAME: prints the code block after `<!-- recipe: NAME` in $recipes.
block() {
    python3 - "$recipes" "$1" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
name = sys.argv[2]
marks = [i for i, l in enumerate(lines)
         if l.startswith("<!-- recipe: ") and l[len("<!-- recipe: "):].split()[0] == name]
if len(marks) != 1:
    sys.exit(f"{sys.argv[1]}: {len(marks)} recipe blocks named {name}")
i = marks[0] + 1
if not lines[i].startswith("```"):
    sys.exit(f"{sys.argv[1]}: the recipe mark {name} is not followed by a code block")
end = lines.index("```", i + 1)
print("\n".join(lines[i + 1:end]))
PY
}

# The loom recipe.
loom="$out/loom"
rm -rf "$loom/tests" "$loom/src" "$loom/Cargo.toml"
mkdir -p "$loom/tests" "$loom/src"
{
    printf '[package]\nname = "recipe-loom"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
    printf '[dependencies]\nshm-region = { path = "%s" }\n\n' "$repo"
    printf '[workspace]\n\n'
    block loom-toml
} >"$loom/Cargo.toml"
printf '//! The crate whose protocol the guide'"'"'s loom recipe checks.\n' >"$loom/src/lib.rs"
block loom-test >"$loom/tests/your_loom_test.rs"
cp "$repo/Cargo.lock" "$loom/Cargo.lock"
printf '\n==> guide loom recipe: cargo test --release --test your_loom_test (--cfg loom -D warnings)\n'
(cd "$loom" && LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom -D warnings" \
    CARGO_TARGET_DIR="$out/target-loom" \
    cargo test --offline --release --test your_loom_test)

# The fuzz recipe.
fuzz="$out/fuzz"
rm -rf "$fuzz/fuzz_targets" "$fuzz/Cargo.toml"
mkdir -p "$fuzz/fuzz_targets"
deps="$(block fuzz-toml)"
pattern='^shm-region = \{ version = "[^"]*",'
if ! printf '%s\n' "$deps" | grep -Eq "$pattern"; then
    echo "$recipes: the fuzz-toml recipe has no 'shm-region = { version = \"...\",' line" >&2
    exit 1
fi
{
    printf '[package]\nname = "recipe-fuzz"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
    printf '[package.metadata]\ncargo-fuzz = true\n\n'
    printf '%s\n' "$deps" | sed -E "s|$pattern|shm-region = { path = \"$repo\",|"
    printf '\n[workspace]\nmembers = ["."]\n\n'
    printf '[[bin]]\nname = "my_parser"\npath = "fuzz_targets/my_parser.rs"\ntest = false\ndoc = false\nbench = false\n'
} >"$fuzz/Cargo.toml"
{
    block fuzz-target
    printf '\n'
    # The parser's items: the block up to its hidden doctest `main`.
    block fuzz-parser | sed '/^# fn main/,$d'
} >"$fuzz/fuzz_targets/my_parser.rs"
cp "$repo/fuzz/Cargo.lock" "$fuzz/Cargo.lock"
printf '\n==> guide fuzz recipe: cargo check (-D warnings -A dead_code)\n'
(cd "$fuzz" && RUSTFLAGS="-D warnings -A dead_code" CARGO_TARGET_DIR="$out/target-fuzz" \
    cargo check --offline --bins)
printf '\n==> the guide'"'"'s recipes build as written\n'
