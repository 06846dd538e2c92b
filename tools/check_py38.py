#!/usr/bin/env python3
"""Import every module of the installed edgeapp package under the running python (meant for CPython 3.8).

Boards may only have Python 3.8, and paddlelite has no wheel for the host's 3.8
here, so modules that import paddlelite are skipped; the rest must
import cleanly. `edgeapp/__main__.py` is skipped too: importing it would start
the program (compileall still checks its syntax).

    python tools/check_py38.py [SRC]      (SRC defaults to the repo's src/, which `make check-py38`
                                          installs into .venv38 in editable mode)
"""

import importlib
import importlib.util
import re
import sys
import traceback
from pathlib import Path

DEFAULT_SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "edgeapp"
IMPORTS_LITE = re.compile(r"^\s*(from|import)\s+paddlelite\b", re.M)


def module_names(src, package):
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def main(argv):
    src = Path(argv[0]) if argv else DEFAULT_SRC
    if not (src / PACKAGE).is_dir():
        print(f"error: {src / PACKAGE} not found", file=sys.stderr)
        return 1
    installed = importlib.util.find_spec(PACKAGE)
    if installed is None or Path(installed.origin).resolve().parent != (src / PACKAGE).resolve():
        print(f"error: this python does not import {PACKAGE} from {src / PACKAGE}: "
              f"install it first (python -m pip install --no-deps -e .)", file=sys.stderr)
        return 1
    print(f"checking imports with Python {sys.version.split()[0]}")
    imported, skipped, failed = 0, 0, []
    for name, path in module_names(src, PACKAGE):
        if name.endswith("__main__") or IMPORTS_LITE.search(path.read_text(encoding="utf-8")):
            print(f"  skipped {name}")
            skipped += 1
            continue
        try:
            importlib.import_module(name)
            imported += 1
        except ModuleNotFoundError as e:
            if e.name == "paddlelite":
                # Imports paddlelite through another module of ours: skip it like them.
                print(f"  skipped {name}: imports paddlelite indirectly")
                skipped += 1
            else:
                failed.append((name, traceback.format_exc()))
        except Exception:
            failed.append((name, traceback.format_exc()))
    for name, tb in failed:
        print(f"FAILED to import {name}:\n{tb}", file=sys.stderr)
    print(f"{imported} imported, {skipped} skipped (paddlelite or __main__), {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
