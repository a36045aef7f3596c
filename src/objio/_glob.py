"""The one wildcard matcher of objio: s5cmd's wildcards in URIs, aws-cli's ``--exclude`` /
``--include`` filters.

Two dialects, one translator:

* **URI wildcards** (s5cmd; ``ls``, ``cp``, ``mv``, ``rm``, ``du``, datasets, manifests):
  ``*`` matches any run of characters within one ``/``-separated segment, ``**`` any run
  across ``/`` (``s3://b/data/**.npz``: every ``.npz`` at any depth under ``data/``), ``?`` one
  character other than ``/``, ``[abc]`` / ``[a-z]`` / ``[!abc]`` one character of (not of) a
  set. A ``[`` without a closing ``]`` is a plain character.
* **Filters** (aws-cli's ``--exclude`` / ``--include``): the same syntax, but ``*`` and ``?``
  match ``/`` too (aws-cli matches filters with :mod:`fnmatch`, in which ``*`` matches
  anything), so ``--exclude '*.tmp'`` leaves out ``.tmp`` files at every depth.

Patterns are matched against the whole key relative to a prefix (the listing prefix of a URI
wildcard, the source prefix of a filter), case-sensitively (S3 keys are).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

__all__ = ["has_wildcard", "split_wildcard", "one_level", "match", "filter_match",
           "included", "apply_filters", "check_filters", "Filters"]

Filters = Sequence[tuple[str, str]]
"""aws-cli filters in the order given: ``[("exclude" | "include", pattern), ...]``."""


def _set_end(pattern: str, i: int) -> int:
    """The index of the ``]`` closing the set that opens at ``pattern[i] == "["``, or -1."""
    j = i + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":  # "[]...]": a literal ] first in the set
        j += 1
    k = pattern.find("]", j)
    return k


def has_wildcard(text: str) -> bool:
    """Whether ``text`` holds a wildcard: ``*``, ``?`` or a ``[...]`` set (closed)."""
    if "*" in text or "?" in text:
        return True
    i = text.find("[")
    while i >= 0:
        if _set_end(text, i) > 0:
            return True
        i = text.find("[", i + 1)
    return False


def _first_wildcard(text: str) -> int:
    """Index of the first wildcard character of ``text`` (len(text) when none)."""
    for i, c in enumerate(text):
        if c in "*?" or (c == "[" and _set_end(text, i) > 0):
            return i
    return len(text)


def split_wildcard(key: str, sep: str = "/") -> tuple[str, str | None]:
    """(literal prefix to list, pattern) of a key with wildcards: the prefix is the key up
    to the last ``sep`` before the first wildcard (so relative paths start at a directory),
    the pattern the rest; ``(key, None)`` without a wildcard.

    ``data/*/f1.bin`` -> (``data/``, ``*/f1.bin``); ``data/**.npz`` -> (``data/``,
    ``**.npz``); ``*.bin`` -> (``""``, ``*.bin``)."""
    i = _first_wildcard(key)
    if i == len(key):
        return key, None
    cut = key.rfind(sep, 0, i) + 1
    return key[:cut], key[cut:]


def one_level(pattern: str) -> bool:
    """Whether every key ``pattern`` matches lies one level under its prefix (no ``/`` and
    no ``**`` in it): then a delimited listing (one "directory") is enough."""
    return "/" not in pattern and "**" not in pattern


@functools.lru_cache(maxsize=256)
def _compile(pattern: str, cross: bool) -> re.Pattern[str]:
    out: list[str] = []
    any_run, one = (".*", ".") if cross else ("[^/]*", "[^/]")
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append(any_run)
        elif c == "?":
            out.append(one)
        elif c == "[" and (end := _set_end(pattern, i)) > 0:
            body = pattern[i + 1:end]
            neg = body[:1] in ("!", "^")
            if neg:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            if body.startswith("^"):
                body = "\\" + body
            out.append(f"[{'^' if neg else ''}{body}]" if cross or not neg
                       else f"[^/{body}]")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def match(pattern: str, text: str) -> bool:
    """Whether ``text`` (a key relative to the pattern's prefix) matches the URI wildcard
    ``pattern`` as a whole (``*`` within a segment, ``**`` across ``/``)."""
    return _compile(pattern, False).fullmatch(text) is not None


def filter_match(pattern: str, text: str) -> bool:
    """Whether ``text`` (a key relative to the source prefix) matches the aws-cli filter
    ``pattern`` as a whole (``*`` and ``?`` match ``/`` too)."""
    return _compile(pattern, True).fullmatch(text) is not None


def included(filters: Filters, rel: str) -> bool:
    """Whether a key (relative to the source prefix) passes aws-cli filters: everything is
    included, then each filter in the order given that matches sets included (``include``)
    or excluded (``exclude``): the last match wins."""
    keep = True
    for kind, pattern in filters:
        if filter_match(pattern, rel):
            keep = kind == "include"
    return keep


def apply_filters(filters: Filters, rels: Iterable[str]) -> list[str]:
    """The relative keys of ``rels`` that pass ``filters`` (see :func:`included`)."""
    return [r for r in rels if included(filters, r)]


def check_filters(filters: Filters) -> list[tuple[str, str]]:
    """``filters`` as a list, each kind ``exclude`` or ``include`` and each pattern a
    non-empty string. Raises: ValueError naming the bad filter and the allowed kinds."""
    out: list[tuple[str, str]] = []
    for f in filters:
        if not (isinstance(f, tuple) and len(f) == 2 and f[0] in ("exclude", "include")
                and isinstance(f[1], str) and f[1]):
            raise ValueError(f"filters must be ('exclude' | 'include', pattern) pairs with a "
                             f"non-empty pattern, got {f!r}")
        out.append(f)
    return out
