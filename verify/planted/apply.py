#!/usr/bin/env python3
"""Applies one planted-bug mutation (a .mut file) to a source tree.

A .mut file holds `bug:`, `harness:` and `file:` lines, then one or more
blocks
    <<<<<<<
    exact text to replace (must occur exactly once in the file)
    =======
    replacement
    >>>>>>>
Usage: apply.py MUTATION ROOT   (exits 1 if a block does not match once)
       apply.py --field NAME MUTATION   (prints the bug/harness/file line)
"""
import sys


def parse(path):
    fields, blocks, cur, part = {}, [], None, None
    for line in open(path, encoding="utf-8").read().split("\n"):
        if cur is None and line.strip() != "<<<<<<<":
            if ":" in line and not line.startswith(" "):
                key, value = line.split(":", 1)
                fields[key.strip()] = value.strip()
            continue
        if line == "<<<<<<<":
            cur, part = {"old": [], "new": []}, "old"
        elif line == "=======":
            part = "new"
        elif line == ">>>>>>>":
            blocks.append(("\n".join(cur["old"]) + "\n", "\n".join(cur["new"]) + "\n"))
            cur = None
        else:
            cur[part].append(line)
    return fields, blocks


def main():
    if sys.argv[1] == "--field":
        print(parse(sys.argv[3])[0][sys.argv[2]])
        return 0
    fields, blocks = parse(sys.argv[1])
    target = f"{sys.argv[2]}/{fields['file']}"
    text = open(target, encoding="utf-8").read()
    for old, new in blocks:
        n = text.count(old)
        if n != 1:
            print(f"{sys.argv[1]}: text to replace occurs {n} times in {fields['file']}", file=sys.stderr)
            return 1
        text = text.replace(old, new)
    open(target, "w", encoding="utf-8").write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
