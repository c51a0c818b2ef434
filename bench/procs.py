"""Child processes for the benchmark: each in its own process group, all killed on exit.

Also what ``/proc`` says about them: CPU time (utime + stime of a process and of its
children, waited-for and still running) and resident memory (VmRSS sampled every 100 ms,
VmHWM at the end).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_LIVE: list[Child] = []


@dataclass
class Child:
    """A started process (leader of its own process group) and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path | None

    @property
    def pid(self) -> int:
        """The process id (also its process group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of its output, for error messages."""
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the whole group, SIGKILL it after ``grace_s``."""
        if self in _LIVE:
            _LIVE.remove(self)
        _signal_group(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace_s)
        _signal_group(self.pid, signal.SIGKILL)  # also whatever it left behind in its group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    stdout_pipe: bool = False,
) -> Child:
    """Start ``argv`` as the leader of a new process group, output to ``log`` (or a pipe)."""
    out = subprocess.PIPE if stdout_pipe else (log.open("wb") if log else subprocess.DEVNULL)
    popen = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT if log and not stdout_pipe else None,
        start_new_session=True,
    )
    child = Child(name, popen, log)
    _LIVE.append(child)
    return child


def stop_all() -> None:
    """Stop every child still running, newest first."""
    for child in reversed(list(_LIVE)):
        child.stop(grace_s=3.0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group, if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def install_cleanup(max_total_s: float) -> None:
    """Kill all children at exit, on SIGTERM / SIGHUP / SIGINT, and after ``max_total_s``."""
    atexit.register(stop_all)

    def _raise(signum: int, _frame: object) -> None:
        """Turn SIGTERM / SIGHUP into SystemExit, so that cleanup runs."""
        raise SystemExit(f"stopped by signal {signal.Signals(signum).name}")

    def _alarm(_signum: int, _frame: object) -> None:
        # SystemExit, not TimeoutError: a scenario's `except Exception` must not swallow it.
        """Stop the run when it exceeds its total budget."""
        raise SystemExit(f"the whole run exceeded {max_total_s:.0f} s (--max-total)")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, int(max_total_s)))


# --- /proc ---------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 is index 0)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process on the machine."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pids: Sequence[int]) -> list[int]:
    """These processes and every live process below them."""
    tree = _children_map()
    found: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo.extend(tree.get(pid, []))
    return found


def process_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime (stat fields 14-17) of one process, in seconds."""
    fields = _stat_fields(pid)
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS if fields else 0.0


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU seconds of these processes and their live descendants, children included."""
    return sum(process_cpu(pid) for pid in descendants(pids))


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/<pid>/status (VmRSS, VmHWM); 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class RssSampler:
    """Samples the summed VmRSS of some processes every ``interval_s`` in a thread."""

    pids: list[int]
    interval_s: float = 0.1
    peak_kib: int = 0
    hwm_kib: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        """Start sampling."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop sampling and read each process's VmHWM."""
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        self.hwm_kib = {pid: status_kib(pid, "VmHWM") for pid in self.pids}

    def _run(self) -> None:
        """Sample until stopped."""
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        """Take one sample now."""
        self.peak_kib = max(self.peak_kib, sum(status_kib(p, "VmRSS") for p in self.pids))

    @property
    def peak_mb(self) -> float:
        """Peak summed RSS, or the largest VmHWM if that is higher (one process), in MB."""
        return max(self.peak_kib, *self.hwm_kib.values(), 0) / 1024


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it returns true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False
