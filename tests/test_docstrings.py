"""The public API's docstrings say what the API reference (docs/reference/) shows a user.

The public names are those of the modules the reference documents (``PUBLIC_MODULES``): each
module's ``__all__`` (``objio`` also ``objio.open``), and of every class among them, the
public methods it defines itself (functions, classmethods, staticmethods whose name does not
start with ``_``; properties and dataclass fields excepted). Rules, each checked on the source:

1. **Docstring.** Every public function, class and method has one (``inspect.getdoc``: a
   method that overrides a documented method of a base class inherits its docstring).
2. **Raises.** A function or method whose own body (nested functions and classes excluded)
   has a ``raise SomeError...`` statement (a bare ``raise`` re-raises and is not counted) has
   a ``Raises:`` section in its docstring. The top-level functions of ``objio``
   (``objio.get`` ...) are checked against the ``objio.Client`` method they call.
3. **Units.** A function or method taking a parameter whose name says it is a size or a time
   (``SIZE_OR_TIME``: ``*size*``, ``*_bytes``, ``*_s``, ``*_ms``, ``*timeout*``,
   ``*memory*``, ``*threshold*``, ``offset``, ``length``) names a unit in its docstring
   (``UNIT``: bytes, seconds, milliseconds, ms, KiB, MiB, GiB; rows for a row count) — for a class, its
   constructor's parameters are checked against the class docstring.
4. **No inline Raises.** A docstring does not name its exceptions in running text: a line
   with the word ``Raises`` that is not a ``Raises:`` section heading (``Raises: ValueError
   (...)``, ``Raises ValueError when ...``, ``Raises (on start): ...``), outside a ``Raises:``
   section, breaks it (mkdocstrings renders only the section as the exceptions table); so does
   a ``Raises:`` heading right under a line of text (no blank line above it: griffe then reads
   it as text). Checked on the public names above and also on their classes' public
   properties. Lower-case prose ("a missing object raises FileNotFoundError on the first
   read") is allowed.
   ``INLINE_RAISES_EXEMPT`` lists names exempted (none).

The test lists every violation as ``module.name: rule`` and fails if there is any.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PUBLIC_MODULES = ("objio", "objio.io", "objio.torch", "objio.torch.dcp", "objio.model",
                  "objio.formats", "objio.server", "objio.azure_server", "objio.gcs_server")
SIZE_OR_TIME = re.compile(r"(size|_bytes$|_s$|_ms$|timeout|memory|threshold|^offset$|^length$)")
UNIT = re.compile(r"\b(bytes?|seconds?|milliseconds?|ms|KiB|MiB|GiB|rows)\b", re.IGNORECASE)
RAISES = re.compile(r"^\s*Raises:\s*$", re.MULTILINE)
INLINE_RAISES = re.compile(r"\bRaises\b")
# Names exempted from rule 4 (none: keep it that way).
INLINE_RAISES_EXEMPT: frozenset[str] = frozenset()


def _own_raises(fn: Callable[..., Any]) -> bool:
    """Whether ``fn``'s own body has a ``raise X`` (not a bare re-raise)."""
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return False
    tree = ast.parse(src)
    node = tree.body[0]

    def walk(n: ast.AST) -> Iterator[ast.AST]:
        for child in ast.iter_child_nodes(n):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            yield child
            yield from walk(child)

    return any(isinstance(n, ast.Raise) and n.exc is not None for n in walk(node))


def _params(fn: Callable[..., Any]) -> list[str]:
    try:
        return [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
    except (TypeError, ValueError):
        return []


def _check(where: str, fn: Callable[..., Any], doc: str | None, source_fn: Callable[..., Any],
           problems: list[str]) -> None:
    if not doc or not doc.strip():
        problems.append(f"{where}: no docstring")
        return
    if _own_raises(source_fn) and not RAISES.search(doc):
        problems.append(f"{where}: raises, but its docstring has no 'Raises:' section")
    sized = [p for p in _params(fn) if SIZE_OR_TIME.search(p)]
    if sized and not UNIT.search(doc):
        problems.append(f"{where}: takes {', '.join(sized)} but its docstring names no unit "
                        "(bytes, seconds, ms, KiB/MiB/GiB)")


def _methods(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    fields = getattr(cls, "__dataclass_fields__", {})
    for name, raw in vars(cls).items():
        if name.startswith("_") or name in fields:     # a dataclass field's default is no method
            continue
        fn = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if inspect.isfunction(fn) and fn.__module__.startswith("objio"):
            yield name, getattr(cls, name)


def public_names(modname: str) -> Iterator[tuple[str, Any]]:
    mod = importlib.import_module(modname)
    names = list(getattr(mod, "__all__", ()))
    if modname == "objio":
        names.append("open")
    for name in names:
        if name.startswith("_"):
            continue
        yield name, getattr(mod, name)


def docstring_problems(modname: str) -> list[str]:
    """Every rule broken by a public name of ``modname``, as ``module.name: rule``."""
    import objio

    problems: list[str] = []
    for name, obj in public_names(modname):
        where = f"{modname}.{name}"
        if inspect.isclass(obj):
            if not obj.__module__.startswith("objio"):
                continue          # a re-exported standard type (e.g. an alias of OSError)
            init = vars(obj).get("__init__")
            if init is not None and not getattr(init, "__qualname__", "").startswith(obj.__qualname__):
                init = None       # typing.Protocol's stand-in, not the class's own
            _check(where, init or obj, inspect.getdoc(obj), obj.__init__ if init else (lambda: None),
                   problems)
            for mname, meth in _methods(obj):
                _check(f"{where}.{mname}", meth, inspect.getdoc(meth), meth, problems)
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
            source = obj
            if modname == "objio" and name in objio.api.API_FUNCTIONS:
                source = getattr(objio.Client, name)   # the wrapper calls the Client method
            _check(where, obj, inspect.getdoc(obj), source, problems)
    return problems


def inline_raises(doc: str | None) -> list[str]:
    """The lines of ``doc`` that name exceptions inline: the word ``Raises`` outside a
    ``Raises:`` section, on a line that is not the section's heading, or a heading right under
    a line of text at its indentation or less (rule 4)."""
    found: list[str] = []
    section: int | None = None      # the indentation of the Raises: heading we are under
    previous = ""
    for line in inspect.cleandoc(doc or "").splitlines():
        indent = len(line) - len(line.lstrip())
        if section is not None and (not line.strip() or indent > section):
            previous = line
            continue
        section = None
        if RAISES.match(line):
            section = indent
            if previous.strip() and len(previous) - len(previous.lstrip()) <= indent:
                found.append(f"{previous.strip()} / Raises: (no blank line between)")
        elif INLINE_RAISES.search(line):
            found.append(line.strip())
        previous = line
    return found


def inline_raises_problems(modname: str) -> list[str]:
    """Every public name (and public property) of ``modname`` whose docstring breaks rule 4,
    as ``module.name: rule``, except :data:`INLINE_RAISES_EXEMPT`."""
    docs: list[tuple[str, str | None]] = []
    for name, obj in public_names(modname):
        where = f"{modname}.{name}"
        if inspect.isclass(obj):
            if not obj.__module__.startswith("objio"):
                continue
            docs.append((where, inspect.getdoc(obj)))
            docs += [(f"{where}.{m}", inspect.getdoc(meth)) for m, meth in _methods(obj)]
            docs += [(f"{where}.{p}", raw.__doc__) for p, raw in vars(obj).items()
                     if isinstance(raw, property) and not p.startswith("_")]
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
            docs.append((where, inspect.getdoc(obj)))
    return [f"{where}: names exceptions outside a rendered 'Raises:' section ({lines[0]!r}); "
            "write one after a blank line, one exception a line"
            for where, doc in docs
            if where not in INLINE_RAISES_EXEMPT and (lines := inline_raises(doc))]


@pytest.mark.parametrize("modname", PUBLIC_MODULES)
def test_public_docstrings_list_exceptions_in_a_raises_section(modname: str) -> None:
    problems = inline_raises_problems(modname)
    assert not problems, (f"{len(problems)} public docstring(s) of {modname} name exceptions "
                          "inline (rule 4 of tests/test_docstrings.py):\n" + "\n".join(problems))


def test_the_inline_raises_rule_catches_what_it_claims() -> None:
    sectioned = """Reads it.

    A missing object raises FileNotFoundError on the first read.

    Raises:
        ValueError: a bad URI. Raises nothing else here.
        FileNotFoundError: no such bucket.
    """
    assert inline_raises(sectioned) == []
    assert inline_raises("Reads it. Raises: ValueError (a bad URI).") == [
        "Reads it. Raises: ValueError (a bad URI)."]
    assert inline_raises("Reads it.\n\nRaises (on start): RuntimeError.") == [
        "Raises (on start): RuntimeError."]
    assert inline_raises("Waits. Raises\nRuntimeError when not running.") == ["Waits. Raises"]
    after = sectioned + "\nMore text. Raises TypeError for a bad type.\n"
    assert inline_raises(after) == ["More text. Raises TypeError for a bad type."]
    glued = "Reads it.\n\nReturns: the bytes.\nRaises:\n    ValueError: a bad URI.\n"
    assert inline_raises(glued) == ["Returns: the bytes. / Raises: (no blank line between)"]
    after_args = "Reads it.\n\nArgs:\n    uri: the object.\nRaises:\n    ValueError: a bad URI.\n"
    assert inline_raises(after_args) == []


@pytest.mark.parametrize("modname", PUBLIC_MODULES)
def test_public_docstrings_have_raises_and_units(modname: str) -> None:
    problems = docstring_problems(modname)
    assert not problems, (f"{len(problems)} public docstring(s) of {modname} break the rules of "
                          "tests/test_docstrings.py:\n" + "\n".join(problems))


def test_the_rules_catch_what_they_claim() -> None:
    def undocumented(size: int) -> None:
        pass

    def raises_silently(x: int) -> None:
        """Does x."""
        raise ValueError(x)

    def no_unit(timeout_s: float) -> None:
        """Waits."""

    def good(timeout_s: float) -> None:
        """Waits ``timeout_s`` seconds.

        Raises:
            TimeoutError: always.
        """
        raise TimeoutError

    def reraises() -> None:
        """Re-raises."""
        try:
            pass
        except OSError:
            raise

    found: list[str] = []
    for fn in (undocumented, raises_silently, no_unit, good, reraises):
        _check(fn.__name__, fn, inspect.getdoc(fn), fn, found)
    assert found == ["undocumented: no docstring",
                     "raises_silently: raises, but its docstring has no 'Raises:' section",
                     "no_unit: takes timeout_s but its docstring names no unit "
                     "(bytes, seconds, ms, KiB/MiB/GiB)"]
