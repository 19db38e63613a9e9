#!/usr/bin/env python3
"""Rooted shares of the stacks in a profile, for the stacks section of scripts/bench.sh.

    stacks_share.py folded FILE [--named REGEX] [--via A B] [--why OUT]
    stacks_share.py perf FILE [--named REGEX] [--via A B] [--why OUT]

folded: `rprof-bpf report --format folded` output, one stack per line, root first, frames
separated by ";", the weight after the last space; kernel frames end in "_[k]", inlined ones in
"_[i]"; a frame starting with "[truncated:" stands for a stack the unwinder gave up on.

perf: `perf script` output, one block per sample separated by blank lines: a header line, then one
line per frame, leaf first (`ADDR SYMBOL+OFFSET (DSO)`). Each sample weighs 1.

A stack is rooted when its outermost user frame is a program's or a thread's entry (ROOTS) and no
frame is a "[truncated: ...]" one. A thread's entry (clone, clone3) must have called something: a
stack whose only user frame is clone3 is a creation (or a sample) inside clone3 that was not
unwound any further, not a thread's root. A stack with no user frame is not rooted.

It prints one line: TOTAL ROOTED NAMED VIA_A VIA_B, the weights of all stacks, of the rooted
ones, of those with a frame matching REGEX (--named), and of those with frame A and with frame B
(--via); "-" for what was not asked. With --why, OUT gets the weight of the stacks that are not
rooted by their outermost user frame, heaviest first.
"""

import argparse
import re
import sys
from collections import Counter

# The outermost frames of complete stacks: a program's entry (_start), the child side of glibc's
# clone3 and clone (threads), and for Go, whose code neither, goroutines' runtime.goexit and the
# runtime's own threads' runtime.mstart (".abi0": the names of those assembly functions in the
# ELF symbol table, which perf shows).
ROOTS = {
    "_start",
    "clone3",
    "__clone3",
    "clone",
    "__clone",
    "runtime.goexit",
    "runtime.goexit.abi0",
    "runtime.mstart",
    "runtime.mstart.abi0",
}
THREAD_ENTRIES = {"clone3", "__clone3", "clone", "__clone"}


def folded_stacks(path):
    """(frames root first, user frames only, whether truncated, weight) per line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, weight = line.rpartition(" ")
            try:
                w = float(weight)
            except ValueError:
                continue
            frames = stack.split(";")
            truncated = any(fr.startswith("[truncated:") for fr in frames)
            user = []
            for fr in frames:
                if fr.endswith("_[k]"):
                    continue
                if fr.endswith("_[i]"):
                    fr = fr[: -len("_[i]")]
                user.append(fr)
            yield user, truncated, w


PERF_FRAME = re.compile(r"^\s*[0-9a-fA-F]+\s+(.*?)\s+\((.*)\)\s*$")


def perf_stacks(path):
    """The same for perf script output: user frames root first (perf prints them leaf first)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        block = []
        for line in f:
            line = line.rstrip("\n")
            if line.strip():
                block.append(line)
                continue
            if block:
                yield perf_block(block)
                block = []
        if block:
            yield perf_block(block)


def perf_block(block):
    user = []
    for line in block[1:]:
        m = PERF_FRAME.match(line)
        if not m:
            continue
        symbol, dso = m.group(1), m.group(2)
        if dso == "[kernel.kallsyms]":
            continue
        # SYMBOL+0xOFFSET; perf map names may hold spaces, so only the last "+0x..." goes.
        symbol = re.sub(r"\+0x[0-9a-fA-F]+$", "", symbol)
        user.append(symbol)
    user.reverse()
    return user, False, 1.0


def is_rooted(user, truncated):
    if truncated or not user:
        return False
    root = user[0]
    if root not in ROOTS:
        return False
    # A thread's entry calls the thread's function: alone, it is a stack cut short at clone3.
    return not (root in THREAD_ENTRIES and len(user) == 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("format", choices=["folded", "perf"])
    ap.add_argument("file")
    ap.add_argument("--named", help="regular expression a frame's name must match (re.search)")
    ap.add_argument("--via", nargs=2, metavar=("A", "B"), help="frames to count the stacks of")
    ap.add_argument("--why", help="file for the weights of the stacks not rooted, by outermost frame")
    args = ap.parse_args()

    named_re = re.compile(args.named) if args.named else None
    total = rooted = named = via_a = via_b = 0.0
    not_rooted = Counter()
    stacks = folded_stacks(args.file) if args.format == "folded" else perf_stacks(args.file)
    for user, truncated, w in stacks:
        total += w
        if is_rooted(user, truncated):
            rooted += w
        else:
            outer = "[truncated]" if truncated else (user[0] if user else "(no user frame)")
            not_rooted[outer] += w
        if named_re and any(named_re.search(fr) for fr in user):
            named += w
        if args.via:
            if args.via[0] in user:
                via_a += w
            if args.via[1] in user:
                via_b += w

    def num(v):
        return "%.0f" % v

    print(
        num(total),
        num(rooted),
        num(named) if named_re else "-",
        num(via_a) if args.via else "-",
        num(via_b) if args.via else "-",
    )
    if args.why:
        with open(args.why, "w", encoding="utf-8") as out:
            for frame, w in not_rooted.most_common():
                out.write("%s %s\n" % (num(w), frame))
    return 0


if __name__ == "__main__":
    sys.exit(main())
