"""The docs site's structure: every page is reachable, every guide is linked from the README.

``make docs`` (mkdocs build --strict) checks the links and anchors inside the site and the
API references; these tests check what the build does not: that a page cannot be left out of
the navigation, that the README (the front door) links into every guide, that the landing
page links to every guide and concept page (a new user finds any feature in two clicks), and
that each public module has its reference page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from test_docstrings import PUBLIC_MODULES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")


def _nav_pages(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_pages(item)]
    if isinstance(node, dict):
        return [p for v in node.values() for p in _nav_pages(v)]
    return []


def _nav() -> dict[str, list[str]]:
    """Top-level nav title -> the pages under it."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for entry in config["nav"]:
        (title, node), = entry.items()
        out[title] = _nav_pages(node)
    return out


def _pages() -> set[str]:
    return {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}


def _links(path: Path) -> set[str]:
    """The relative links of a markdown file, resolved against the docs folder."""
    out = set()
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        resolved = (path.parent / target).resolve()
        try:
            out.add(resolved.relative_to(DOCS).as_posix())
        except ValueError:
            continue
    return out


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    nav = _nav()
    assert list(nav) == ["Home", "Guides", "Concepts", "Reference", "Contributing"]
    listed = [p for pages in nav.values() for p in pages]
    assert sorted(set(listed)) == sorted(listed), "a page is listed twice in mkdocs.yml's nav"
    assert not set(listed) - _pages(), f"nav entries without a page: {set(listed) - _pages()}"
    assert not _pages() - set(listed), (
        f"pages missing from mkdocs.yml's nav (unreachable from the site's navigation): "
        f"{sorted(_pages() - set(listed))}")


def test_the_readme_links_to_every_guide() -> None:
    guides = {p for p in _pages() if p.startswith("guides/")}
    assert len(guides) >= 6
    linked = _links(ROOT / "README.md")
    assert not guides - linked, f"guides the README does not link to: {sorted(guides - linked)}"
    assert "index.md" in linked


def test_the_landing_page_links_to_every_guide_concept_and_reference_page() -> None:
    nav = _nav()
    wanted = set(nav["Guides"]) | set(nav["Concepts"]) | set(nav["Reference"]) | {"contributing.md"}
    linked = _links(DOCS / "index.md")
    assert not wanted - linked, f"pages the landing page does not link to: {sorted(wanted - linked)}"


def test_each_public_module_has_its_reference_page() -> None:
    nav = _nav()
    documented = {}
    for page in nav["Reference"]:
        for m in re.finditer(r"^::: ([\w.]+)", (DOCS / page).read_text(encoding="utf-8"), re.M):
            documented[m.group(1)] = page
    assert set(PUBLIC_MODULES) <= set(documented), (
        f"public modules without a reference page: {sorted(set(PUBLIC_MODULES) - set(documented))}")


def test_the_names_objio_torch_loads_on_first_use_have_reference_entries() -> None:
    """``objio.torch`` provides its torch-importing classes through a module ``__getattr__``,
    which the static API reference cannot see: each must be rendered explicitly (a
    ``::: objio.torch.<submodule>.<Name>`` entry) or by its submodule's own reference page."""
    import importlib

    import objio.torch

    nav = _nav()
    text = "\n".join((DOCS / page).read_text(encoding="utf-8") for page in nav["Reference"])
    directives = set(re.findall(r"^::: ([\w.]+)", text, re.M))
    missing = []
    for name, sub in objio.torch._NEED_TORCH.items():
        module = f"objio.torch.{sub}"
        if f"{module}.{name}" in directives:
            continue
        if module in directives and name in getattr(importlib.import_module(module), "__all__", ()):
            continue
        missing.append(f"{module}.{name}")
    assert not missing, f"objio.torch names without a reference entry: {missing}"


def test_sphinx_roles_in_docstrings_become_cross_references() -> None:
    """The reference renders ``:meth:`get``` as a link to objio.Client.get (mkdocs hook
    docs_hooks/sphinx_roles.py), not as the literal text ":meth:"."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sphinx_roles",
                                                  ROOT / "docs_hooks" / "sphinx_roles.py")
    assert spec and spec.loader
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    html = ('<h2 id="objio" class="doc doc-heading">objio</h2>'
            '<h3 id="objio.Client.get_range" class="doc doc-heading">get_range</h3>'
            '<p>Raises: as :meth:<code>get</code>; see :class:<code>ObjectInfo</code>, '
            ':func:<code>~objio.model.load_safetensors</code>, :mod:<code>objio.io</code>.</p>')
    out = hook.on_page_content(html)
    assert ":meth:" not in out and ":class:" not in out and ":func:" not in out
    assert '<autoref identifier="objio.Client.get" slug="objio.get" optional><code>get</code>' in out
    assert 'identifier="objio.Client.ObjectInfo" slug="objio.ObjectInfo"' in out
    assert ('<autoref identifier="objio.model.load_safetensors" slug="objio.model.load_safetensors"'
            ' optional><code>load_safetensors</code></autoref>') in out
    assert 'identifier="objio.io"' in out
