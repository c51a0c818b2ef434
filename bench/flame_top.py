"""Where a py-spy profile spends its time: the top functions by own and total samples.

    BENCH_FLAME_FORMAT=raw .venv/bin/python -m bench.run --only c --profile --no-write
    .venv/bin/python -m bench.flame_top bench/flame/<file> [--top 40] [--thread MainThread]

Reads py-spy's raw (collapsed) output: one line per stack, frames separated by ``;``,
then the sample count.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    """Print the top frames of a collapsed-stack profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--grep", default="", help="only stacks containing this text")
    parser.add_argument(
        "--by", choices=("frame", "package"), default="frame", help="group own time by"
    )
    args = parser.parse_args()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in args.path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or (args.grep and args.grep not in stack):
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[_package(frames[-1]) if args.by == "package" else frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    print(f"{samples} samples")
    print("-- own --")
    for frame, n in own.most_common(args.top):
        print(f"{n / samples:6.1%}  {frame}")
    print("-- total --")
    for frame, n in total.most_common(args.top):
        print(f"{n / samples:6.1%}  {frame}")


def _package(frame: str) -> str:
    """``litestar/routes/http.py:81`` → ``litestar``; ``hub/store/sqlite.py`` → ``hub.store``."""
    path = frame.rpartition("(")[2].split(":")[0]
    parts = path.split("/")
    if parts[0] in ("hub", "flows", "connectors", "ui") and len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0].removesuffix(".py") or frame


if __name__ == "__main__":
    main()
