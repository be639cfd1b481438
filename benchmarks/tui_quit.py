"""Time from pressing q to the end of the ``visbpp-tui`` process, idle, in a real terminal (tmux).

usage: python benchmarks/tui_quit.py [--wait 12] [--repeats 3]   (needs tmux; a fresh VISBPP_HOME each time)
``--wait``: seconds between start and q (the table, statuses and the torch warm-up load meanwhile).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("--wait", type=float, default=12.0)
p.add_argument("--repeats", type=int, default=3)
a = p.parse_args()
if shutil.which("tmux") is None:
    sys.exit("tmux is needed to run the TUI in a terminal")
tui = str(Path(sys.executable).with_name("visbpp-tui"))
times = []
for i in range(a.repeats):
    home = tempfile.mkdtemp(prefix="visbpp-quit-")
    marker = Path(home) / "exited"
    name = f"visbpp-quit-{os.getpid()}-{i}"
    cmd = f"VISBPP_HOME={home} {tui}; date +%s.%N > {marker}"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", cmd], check=True)
    time.sleep(a.wait)
    t0 = time.time()
    subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=True)
    while not marker.exists() or not marker.read_text().strip():
        time.sleep(0.01)
    times.append(float(marker.read_text()) - t0)
    shutil.rmtree(home, ignore_errors=True)
print(json.dumps({"quit_s": times, "max_s": max(times), "wait_s": a.wait}))
