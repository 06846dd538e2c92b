"""The house rules of src/edgeapp, read from the source: no import cycle between our modules, no
function too long to read at once, and no private name of another module or of a third-party
package (cheroot, bottle, ...) outside the one adapter module that is marked as such."""
import ast
from pathlib import Path

import edgeapp

PACKAGE_DIR = Path(edgeapp.__file__).resolve().parent
MAX_FUNCTION_LINES = 80
# The one module allowed to lean on a library's private names: it says so in its docstring, and
# its own test checks those names on the installed version.
ADAPTER_MARK = "ADAPTER MODULE"


def modules():
    """{dotted name: (path, parsed tree)} of every module of the package."""
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = ["edgeapp"] + list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return out


def imported_modules(name, tree, known):
    """Our modules that `name` imports, anywhere in it (a lazy import inside a function counts)."""
    package = name if name in known and known[name][0].name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for a in node.names:
                sub = base + "." + a.name
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_no_import_cycle_between_our_modules():
    known = modules()
    graph = {name: imported_modules(name, tree, known) for name, (_, tree) in known.items()}
    # A package's __init__ importing its own modules is how packages work, not a cycle.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_sees_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_function_over_80_lines():
    long = []
    for name, (path, tree) in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append("%s:%d %s (%d lines)" % (path.name, node.lineno, node.name, lines))
    assert not long, "functions over %d lines: %s" % (MAX_FUNCTION_LINES, "; ".join(long))


def own_private_names(tree):
    """The _names a module defines itself: its functions, classes, globals, attributes it assigns."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
    return {n for n in names if n.startswith("_")}


# Underscored names that are documented public API of the standard library.
STDLIB_PUBLIC = {"_exit", "_asdict", "_replace", "_fields", "_make"}


def is_private(name):
    return (name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
            and name not in STDLIB_PUBLIC)


def foreign_private_uses(tree):
    """Private names this module takes from elsewhere: imported (`import _pyio`, `from x import _y`)
    or read as attributes it never defines itself (`conn._selector`)."""
    own = own_private_names(tree)
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            uses += ["import " + a.name for a in node.names if any(is_private(p) for p in a.name.split("."))]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            mod = node.module or ""
            uses += ["from %s import %s" % (mod, a.name) for a in node.names
                     if is_private(a.name) or any(is_private(p) for p in mod.split("."))]
        elif isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own:
            uses.append("line %d: .%s" % (node.lineno, node.attr))
    return uses


def test_no_private_names_of_other_modules_or_libraries():
    found, adapters = [], []
    for name, (path, tree) in modules().items():
        if ADAPTER_MARK in (ast.get_docstring(tree) or ""):
            adapters.append(name)
            continue
        found += ["%s: %s" % (name, use) for use in foreign_private_uses(tree)]
    assert len(adapters) <= 1, "more than one adapter module: %s" % adapters
    assert not found, "private names used outside the adapter module:\n" + "\n".join(found)


def test_the_private_name_check_sees_one():
    tree = ast.parse("import _pyio\nfrom cheroot.server import _x\nself._mine = 1\nuse(self._mine, c._selector)\n")
    assert foreign_private_uses(tree) == ["import _pyio", "from cheroot.server import _x", "line 4: ._selector"]
