"""Check the import structure of the ``visbpp`` package: import-linter's contracts (pyproject.toml)
and no import cycle inside ``visbpp.core``.

The package is assembled by setuptools ``package-dir`` from top-level folders (``core/`` ->
``visbpp.core``...), which import-linter cannot follow: it reads packages from one folder
tree. This script links the mapped folders into a temporary ``visbpp/`` tree, runs
``lint-imports`` with that tree first on the path, then builds the import graph of that tree with
grimp (import-linter's graph library; every import statement counts, also one inside a function,
except ``if TYPE_CHECKING:`` ones) and lists each cycle among the modules of ``visbpp.core``
(import-linter has no contract for that). Exit status: 0 when both pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parents[1]
ACYCLIC = "visbpp.core"   # no module of this package imports itself through others


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph`` (module -> modules it imports): each strongly connected
    component of more than one module, or a module importing itself; sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]   # iterative Tarjan: no recursion limit
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in graph.get(v, ()):
                    cycles.append(sorted(comp))
    return sorted(cycles)


def core_cycles(tree: str) -> list[list[str]]:
    """The import cycles inside :data:`ACYCLIC` of the ``visbpp`` package found in folder ``tree``."""
    import grimp

    sys.path.insert(0, tree)
    try:
        graph = grimp.build_graph("visbpp", exclude_type_checking_imports=True, cache_dir=None)
    finally:
        sys.path.remove(tree)
    inside = [m for m in graph.modules if m == ACYCLIC or m.startswith(ACYCLIC + ".")]
    return find_cycles({m: {n for n in graph.find_modules_directly_imported_by(m) if n in inside} for m in inside})


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
        status = subprocess.run([exe, str(ROOT / "pyproject.toml")], cwd=ROOT, env=env).returncode
        cycles = core_cycles(tmp)
    for c in cycles:
        print(f"import cycle inside {ACYCLIC}: {' <-> '.join(c)}")
    print(f"{ACYCLIC} import cycles: {len(cycles)}")
    return status or (1 if cycles else 0)


if __name__ == "__main__":
    sys.exit(main())
