"""Translations written as `gateway translate -o DIRECTORY` writes them, then imported."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any


@contextmanager
def imported_translation(
    translations: Iterable[Any], directory: Path, module: str
) -> Iterator[ModuleType]:
    """Write each result at its package path under `directory` and import `module` from
    there; sys.path and the package's modules are put back afterwards."""
    for result in translations:
        target = directory / result.relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result.code)
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(module)
    finally:
        sys.path.remove(str(directory))
        top = module.split(".")[0]
        for name in [n for n in sys.modules if n.split(".")[0] == top]:
            del sys.modules[name]


def load_code(code: str, directory: Path, name: str) -> ModuleType:
    """Write `code` to `directory/name.py` and import it as module `name` (kept in
    sys.modules, as a translated module's own imports need)."""
    path = directory / f"{name}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
