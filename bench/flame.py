"""``--profile``: a py-spy flame graph (SVG) of one process while a scenario runs.

py-spy records from just before wrk starts until the scenario's work is done; it is
stopped with SIGINT (py-spy then writes the SVG), ``--duration`` being the cap. Needs
ptrace on the target (root in this container is enough).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import procs


def py_spy_binary() -> str:
    """py-spy of this environment (the dev extras), or SystemExit saying how to get it."""
    local = Path(sys.executable).with_name("py-spy")
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: `make venv` (dev extras) or pip install py-spy")
    return found


@dataclass
class FlameGraph:
    """A running ``py-spy record`` and the SVG it will write."""

    child: procs.Child
    out: Path

    @classmethod
    def start(cls, pid: int, out: Path, cap_s: float, subprocesses: bool = False) -> FlameGraph:
        """Attach to ``pid`` at 100 samples a second."""
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = [py_spy_binary(), "record", "-o", str(out), "--pid", str(pid)]
        # BENCH_FLAME_FORMAT=raw writes collapsed stacks instead (for bench/flame_top.py).
        fmt = os.environ.get("BENCH_FLAME_FORMAT", "flamegraph")
        argv += ["--duration", str(int(cap_s)), "--rate", "100", "--format", fmt]
        if subprocesses:
            argv.append("--subprocesses")
        # BENCH_FLAME_GIL=1: sample only the thread holding the GIL (where CPU goes).
        if os.environ.get("BENCH_FLAME_GIL"):
            argv.append("--gil")
        # BENCH_FLAME_NATIVE=1: C frames too (SQLite, the JSON encoder, the kernel calls).
        if os.environ.get("BENCH_FLAME_NATIVE"):
            argv.append("--native")
        log = out.with_suffix(".log")
        return cls(procs.spawn("py-spy", argv, log=log), out)

    def stop(self) -> str:
        """SIGINT py-spy, wait for the SVG; a problem to report, or ""."""
        if self.child.alive():
            self.child.popen.send_signal(signal.SIGINT)
        try:
            self.child.popen.wait(120)
        except subprocess.TimeoutExpired:
            self.child.stop()
            return "py-spy did not finish writing within 120 s"
        log = self.out.with_suffix(".log")
        if not self.out.exists():
            return f"py-spy wrote no SVG: {self.child.log_tail(5)}"
        log.unlink(missing_ok=True)
        return ""
