"""Which hwbench source files a module depends on: its import closure inside hwbench.

Rules list these files as code inputs, so an edit reruns exactly the jobs whose
code changed (Snakemake compares small inputs by checksum). The closure is read
from the source with :mod:`ast`, nothing is imported: a dry run stays torch-free.
Imports inside functions count too (they run when the job runs).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "hwbench"


def _module_file(root: Path, module: str) -> Path | None:
    """``root/hwbench/x/y.py`` or ``root/hwbench/x/y/__init__.py`` for ``hwbench.x.y``."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_inits(root: Path, module: str) -> list[str]:
    """The parent packages of ``module``: importing it runs their ``__init__``."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imported_names(path: Path, module: str) -> set[str]:
    """Modules that ``path`` (the source of ``module``) imports, absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            # `from hwbench.x import y` may import the submodule hwbench.x.y
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


@functools.cache
def import_closure(root: str, module: str) -> tuple[str, ...]:
    """Files (relative to ``root``, sorted) of ``module`` and every hwbench module it
    imports, directly or not. ``root`` is the checkout holding ``hwbench/``."""
    base = Path(root)
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(base, name)
        if path is None:
            if name == module:
                raise ValueError(f"no module {module} under {root}")
            continue  # an attribute imported with `from pkg import name`, not a module
        seen[name] = path
        todo.extend(_package_inits(base, name))
        todo.extend(_imported_names(path, name))
    return tuple(sorted(str(p.relative_to(base)) for p in seen.values()))
