"""Run import-linter (contracts in pyproject.toml) on the ``visbpp`` package.

The package is assembled by setuptools ``package-dir`` from top-level folders (``core/`` ->
``visbpp.core``...), which import-linter cannot follow: it reads packages from one folder
tree. This script links the mapped folders into a temporary ``visbpp/`` tree and runs
``lint-imports`` with that tree first on the path. Exit status = lint-imports' status.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    with tempfile.TemporaryDirectory(prefix="visbpp-lint-") as tmp:
        pkg = Path(tmp) / "visbpp"
        pkg.mkdir()
        for name in os.listdir(ROOT / mapping["visbpp"]):  # the root package's own files
            if name.endswith(".py"):
                os.symlink(ROOT / mapping["visbpp"] / name, pkg / name)
        for dotted, folder in mapping.items():
            if dotted != "visbpp":
                os.symlink(ROOT / folder, pkg / dotted.split(".", 1)[1], target_is_directory=True)
        if not (pkg / "__init__.py").exists():
            (pkg / "__init__.py").touch()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([tmp, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
        if exe is None:
            sys.stderr.write("lint-imports not found: install the dev extra (pip install -e '.[dev]')\n")
            return 2
        return subprocess.run([exe, str(ROOT / "pyproject.toml")], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
