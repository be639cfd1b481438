"""`q` right after start quits at once: the real ``visbpp-tui`` in a pseudo-terminal, 80x24, a fresh
home (so the bundled data is being written and torch, pandas and statsmodels are being imported by
the start-up workers when q arrives). Nothing read-only is waited for on the way out."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time
from pathlib import Path

TUI = Path(sys.executable).parent / "visbpp-tui"   # the console script of this environment
QUIT_WITHIN_S = 1.0


def _read(fd: int, timeout: float) -> bytes:
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:   # the child closed the terminal
        return b""


def test_q_in_the_first_second_quits_within_a_second(tmp_path):
    env = {**os.environ, "VISBPP_HOME": str(tmp_path / "home"), "TERM": "xterm-256color"}
    pid, fd = pty.fork()
    if pid == 0:   # the child: the TUI on the pseudo-terminal
        os.execve(str(TUI), [str(TUI)], env)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        start, seen = time.monotonic(), b""
        while len(seen) < 2000 and time.monotonic() - start < 60:   # the first screen is drawn
            seen += _read(fd, 0.02)
        assert len(seen) >= 2000, "the TUI drew no screen"
        first_screen = time.monotonic()
        os.write(fd, b"q")   # within the first second of the app being on screen
        asked = time.monotonic()
        assert asked - first_screen < 1.0
        status = None
        while time.monotonic() - asked < 30:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            _read(fd, 0.02)
        took = time.monotonic() - asked
        assert status is not None and done, "the TUI did not quit"
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert took <= QUIT_WITHIN_S, f"q took {took:.2f} s to quit"
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
