"""MkDocs hook: the docstrings' Sphinx roles (``:class:`X```, ``:meth:`~a.b.c```) as links.

objio's docstrings name other objects the Sphinx way (``:meth:`get```), which reads well in
``help()`` and IDEs. mkdocstrings renders Google-style docstrings as Markdown, so a role came
out as the literal text ``:meth:`` before the name. This hook (``hooks:`` in mkdocs.yml) turns
each ``:role:<code>name</code>`` of a page into a cross-reference that mkdocs-autorefs resolves
after every page is rendered: a dotted name as written (``~`` shows only its last part), a
short one first as a member of the object whose docstring holds it (its class for a method),
then of the page's module. A name the site does not document (torch's, the standard
library's) stays plain code, without the role.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

ROLE = re.compile(r":(?:class|meth|func|data|attr|mod|exc|obj|const):<code>(~?)([\w.]+)(\(\))?</code>")
HEADING = re.compile(r'<h[1-6] id="((?:objio)(?:\.\w+)*)" class="doc doc-heading"')


def _candidates(name: str, current: str, module: str) -> tuple[str, str]:
    """The two identifiers autorefs tries for ``name`` seen in the docstring of ``current``
    (a class, or a function, method or attribute) on the page of ``module``."""
    if "." in name:
        return name, name
    last = current.rsplit(".", 1)[-1]
    is_class = last[:1].isupper() and not last.isupper()
    owner = current if is_class else current.rsplit(".", 1)[0]
    return f"{owner}.{name}", f"{module}.{name}"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Replace every role of ``html`` by an optional autorefs cross-reference."""
    out: list[str] = []
    pos = 0
    current = module = ""
    events = sorted([(m.start(), "h", m) for m in HEADING.finditer(html)]
                    + [(m.start(), "r", m) for m in ROLE.finditer(html)], key=lambda e: e[0])
    for _, kind, m in events:
        if kind == "h":
            current = m.group(1)
            module = module or current
            continue
        tilde, name, call = m.group(1), m.group(2), m.group(3) or ""
        shown = name.rsplit(".", 1)[-1] if tilde else name
        first, second = _candidates(name, current, module) if current else (name, name)
        out.append(html[pos:m.start()])
        out.append(f'<autoref identifier="{escape(first)}" slug="{escape(second)}" optional>'
                   f"<code>{escape(shown)}{call}</code></autoref>")
        pos = m.end()
    out.append(html[pos:])
    return "".join(out)
