"""tegrastats as a live power source: ``tegrastats --interval N`` in a child process, parsed line by line.

Where the INA3221 sysfs files are not readable (some L4T releases make them root-only) the rails are still
in tegrastats' output. A reader thread parses every line (:mod:`hwnas.profilers.parsers.tegrastats`) and
keeps the latest; :meth:`read_rails_mw` returns it. The update period the energy meter polls is then
tegrastats' interval, so windows follow from it as for any sensor. ``command`` is the argv to run (tests
pass a script that replays a recording).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Sequence

from hwnas.profilers.parsers.jetson_rails import total_input_mw
from hwnas.profilers.parsers.tegrastats import TegrastatsParseError, parse_line
from hwnas.profilers.power.sampling import PowerSource


class TegrastatsSource(PowerSource):
    name = "tegrastats"

    def __init__(self, command: Sequence[str] | None = None, interval_ms: int = 50,
                 first_line_timeout_s: float = 5.0) -> None:  # fmt: skip
        self.command = list(command) if command else ["tegrastats", "--interval", str(int(interval_ms))]
        self.first_line_timeout_s = first_line_timeout_s
        self.total_rule = "unknown until tegrastats prints a line"
        self._proc: subprocess.Popen | None = None
        self._latest: dict[str, float] | None = None
        self._error: str | None = None
        self._lines = 0
        self._cv = threading.Condition()

    def available(self) -> tuple[bool, str]:
        exe = self.command[0]
        if shutil.which(exe) is None:
            return False, f"{exe} is not on PATH (not a Jetson, or L4T's tegrastats is not installed)"
        return True, f"{' '.join(self.command)}"

    def _start(self) -> None:
        import atexit

        self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True, bufsize=1)  # fmt: skip
        atexit.register(self.close)  # never leave tegrastats running after hwnas exits
        threading.Thread(target=self._reader, name="hwnas-tegrastats", daemon=True).start()

    def _reader(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for n, line in enumerate(self._proc.stdout, 1):
            if not line.strip():
                continue
            try:
                r = parse_line(line, n, "tegrastats")
            except TegrastatsParseError as exc:
                with self._cv:
                    self._error = exc.message
                    self._cv.notify_all()
                continue
            with self._cv:
                self._latest, self._lines = dict(r.rails_mw), self._lines + 1
                self.total_rule = r.total_rule
                self._cv.notify_all()
        with self._cv:
            self._error = self._error or f"tegrastats exited (code {self._proc.wait()})"
            self._cv.notify_all()

    def read_rails_mw(self) -> dict[str, float]:
        if self._proc is None:
            self._start()
        deadline = time.monotonic() + self.first_line_timeout_s
        with self._cv:
            while self._latest is None:
                left = deadline - time.monotonic()
                if self._error is not None or left <= 0:
                    raise OSError(self._error or
                                  f"tegrastats printed nothing in {self.first_line_timeout_s} s")  # fmt: skip
                self._cv.wait(left)
            return dict(self._latest)

    def total_mw(self, rails_mw: dict[str, float]) -> float:
        total, rule = total_input_mw(rails_mw)
        if total is None:
            raise OSError(f"tegrastats: {rule}")
        return total

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
