"""The shape of the package: modules speak through public names only,
and import the package's own modules, never names its __init__ gathers.

(Which layer may import which is checked by ``lint-imports``, with the
contracts in pyproject.toml.)
"""
import ast
from pathlib import Path

import pytest

import pynn

PACKAGE = Path(pynn.__file__).resolve().parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
# scikit-learn's own private method, called only on versions of it that
# lack the public validate_data
FOREIGN_PRIVATE = {"_validate_data"}


def is_private(name):
    return name.startswith("_") and not name.startswith("__")


def module_names(directory):
    """Modules and packages importable from ``directory`` (.py, compiled, folders)."""
    names = {p.name.split(".")[0] for p in directory.iterdir()
             if p.suffix in (".py", ".so", ".pyd")}
    return names | {p.name for p in directory.iterdir() if (p / "__init__.py").is_file()}


def parsed(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def own_names(tree):
    """The names a module defines: its functions, classes, methods and
    properties, its globals, and the attributes its classes set on
    themselves (``self._x = ...``); not what it writes into other objects."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                        and target.value.id in ("self", "cls"):
                    names.add(target.attr)
                elif isinstance(target, ast.Name):
                    names.add(target.id)
    return names


def private_reads(tree, modules=frozenset()):
    """``x._name`` where x is not self or cls and ``_name`` is not one the
    module defines itself, and ``from m import _name`` (but for
    ``modules``, the package's own modules, private ones included)."""
    own = own_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr) \
                and node.attr not in FOREIGN_PRIVATE and node.attr not in own \
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            yield node.lineno, ast.unparse(node)
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if is_private(alias.name) and alias.name not in modules:
                    yield node.lineno, f"from {node.module} import {alias.name}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_reads_another_modules_private_names(path):
    modules = module_names(PACKAGE) | module_names(PACKAGE / "training")
    found = [f"{path.name}:{line}: {text}"
             for line, text in private_reads(parsed(path), modules)]
    assert not found, "private names of other objects or modules:\n" + "\n".join(found)


def test_the_scan_finds_a_private_read():
    tree = ast.parse("import m\nclass A:\n    def g(self, other):\n        self._mine = 1\n"
                     "        return other._mine\n"
                     "def f(model):\n    model._trained = True\n    return model._net, m._x\n"
                     "from .io import _read\n")
    assert {text for _, text in private_reads(tree)} == {
        "model._trained", "model._net", "m._x", "from io import _read"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_relative_imports_name_modules_not_the_packages_names(path):
    """``from . import x`` must name a module: a name that pynn/__init__
    gathers would make a module import every layer above it."""
    bad = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.ImportFrom) and node.level and node.module is None:
            directory = path.parent
            for _ in range(node.level - 1):
                directory = directory.parent
            known = module_names(directory)
            bad += [f"{path.name}:{node.lineno}: from {'.' * node.level} import {a.name}"
                    for a in node.names if a.name not in known]
    assert not bad, "\n".join(bad)


def attributes_set(function):
    return {target.attr for node in ast.walk(function)
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
            and target.value.id == "self"}


@pytest.mark.parametrize("path", [PACKAGE / "core.py", PACKAGE / "callbacks.py",
                                  PACKAGE / "data.py"] + sorted((PACKAGE / "training").glob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_attributes_are_first_set_in_init(path):
    late = []
    classes = {n.name: n for n in ast.walk(parsed(path)) if isinstance(n, ast.ClassDef)}

    def declared(cls):
        # set in its __init__, as class-level defaults, or so by a base
        # class of the same module
        names = {t.id for n in cls.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                 for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                 if isinstance(t, ast.Name)}
        for n in cls.body:
            if isinstance(n, ast.FunctionDef) and n.name == "__init__":
                names |= attributes_set(n)
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in classes:
                names |= declared(classes[base.id])
        return names

    for cls in classes.values():
        methods = [n for n in cls.body if isinstance(n, ast.FunctionDef)]
        known = declared(cls)
        for method in methods:
            if method.name != "__init__":
                late += [f"{path.name}: {cls.name}.{method.name} sets self.{name}"
                         for name in sorted(attributes_set(method) - known)]
    assert not late, "\n".join(late)
