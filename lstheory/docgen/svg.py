"""Deterministic SVG figures with matplotlib, without touching its global state.

The same library versions always write the same bytes: text is kept as text
(``svg.fonttype = "none"``), element ids come from a fixed ``svg.hashsalt``,
and no date or creator metadata is written.  Figures are built on a
pyplot-free :class:`matplotlib.figure.Figure` inside an ``rc_context``, so a
caller's matplotlib settings are neither used nor changed.
"""

from __future__ import annotations

import contextlib
import io
from typing import Iterator

SVG_STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "lstheory",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@contextlib.contextmanager
def svg_figure(figsize: tuple[float, float] = (6.4, 4.0), **figure_options) -> Iterator:
    """A fresh ``Figure`` under :data:`SVG_STYLE`; call :func:`to_svg` inside the ``with`` block."""
    import matplotlib
    from cycler import cycler
    from matplotlib.figure import Figure

    with matplotlib.rc_context({**SVG_STYLE, "axes.prop_cycle": cycler(color=list(COLOURS))}):
        yield Figure(figsize=figsize, **figure_options)


def to_svg(figure) -> bytes:
    """The figure as SVG bytes, without date or creator metadata."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    return buffer.getvalue()
