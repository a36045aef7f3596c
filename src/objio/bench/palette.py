"""The one palette of every benchmark plot: a colour means one thing in every panel of every
figure (issue 18 D1).

Each tool (objio and each peer library) has its own fixed colour; the cases that are not a
tool of their own (the list benchmark's ``sequential``, ``keys`` and ``fastlist``; a latency's
``first byte``) have fixed colours of their own, none of them a tool's, so no colour stands for
two things within one figure. :func:`color_of` maps any plot label to its colour; the plots of
:mod:`objio.bench.report` colour bars, dots and lines only through it.

Colours are matplotlib's "tab10"/"tab20" hex values (colour-blind friendly first choices for
the tools that appear together most: objio, s3torchconnector, boto3, obstore)."""

from __future__ import annotations

TOOLS: dict[str, str] = {
    "objio": "#1f77b4",  # blue
    "s3torchconnector": "#ff7f0e",  # orange
    "boto3": "#2ca02c",  # green
    "obstore": "#d62728",  # red
    "s3dlio": "#9467bd",  # purple
    "runai-model-streamer": "#8c564b",  # brown
    "disk": "#7f7f7f",  # grey: the local-disk baseline (torch.save to a file)
    "torch.save": "#7f7f7f",
}
"""Tool (library, or baseline) -> colour, the same in every plot."""

ROLES: dict[str, str] = {
    "sequential": "#17becf",  # cyan: objio's sequential listing (ObjectInfo)
    "keys": "#e377c2",  # pink: objio's sequential listing, keys only
    "fastlist": "#bcbd22",  # olive: FastList
    "first byte": "#222222",  # near-black: time to first byte (plum read as s3dlio's purple)
}
"""Cases that are not a tool of their own -> colour; none of them is a tool's colour."""

OTHER = "#393b79"
"""A label that names no known tool or role (a new peer before it is added here)."""


def color_of(label: str) -> str:
    """The colour of a plot label: a role's when the label is one (``"fastlist"``, a label
    containing ``"first byte"``), else the tool's whose name the label starts with
    (``"objio-dcp save"`` -> objio's, ``"obstore-get read"`` -> obstore's), else :data:`OTHER`."""
    low = label.lower()
    if "first byte" in low:
        return ROLES["first byte"]
    head = low.split()[0] if low.split() else low
    if head in ROLES:
        return ROLES[head]
    for tool in sorted(TOOLS, key=len, reverse=True):  # longest first: s3dlio before s3...
        if head == tool or head.startswith((tool + "-", tool + "_")):
            return TOOLS[tool]
    return OTHER
