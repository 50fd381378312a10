"""The report's figures: drawn once, kept as PNG at twice their display resolution.

Each figure is rendered at 192 dpi and shown at 96 CSS px per inch (its
``width`` attribute is half the PNG's pixel width), so text stays sharp on
high-density screens and in the Chromium-printed PDF. ``report.html``
embeds them as base64; ``report.md`` references the files under
``figures/``.
"""
from __future__ import annotations

import base64
import re
import struct
from typing import Any, Callable

from causal_hcc.errors import SpecError

#: PNG resolution: 2x the 96 px/inch CSS reference
DPI = 192


class FigureSet:
    """Rendered figures, in the order they were drawn."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._names: set[str] = set()

    def add(self, name: str, title: str, fig: Any, *, svg: bool = False) -> dict[str, Any]:
        from causal_hcc.report.figures import figure_png

        if name in self._names:  # unique ids/files even if two sections pick the same name
            k = 2
            while f"{name}_{k}" in self._names:
                k += 1
            name = f"{name}_{k}"
        self._names.add(name)
        png = figure_png(fig, dpi=DPI)
        width = struct.unpack(">I", png[16:20])[0] // 2  # IHDR width, shown at half
        item = {"name": name, "title": title, "png": png, "file": f"figures/{name}.png", "width": width,
                "b64": base64.b64encode(png).decode("ascii")}
        if svg:
            item["svg"] = figure_svg(fig, name, width)
        self.items.append(item)
        fig.clf()
        return item

    def draw(self, name: str, title: str, width: float, height: float,
             draw: Callable[[Any], Any], *, svg: bool = False) -> dict[str, Any] | None:
        """Draw on a new ``width`` x ``height`` inch figure; None when there is nothing to draw (SpecError).

        ``svg``: the HTML shows the figure as inline SVG (vector, in print too; its labelled parts, such as
        the risk table's ``risk-label-*`` and ``risk-count-*``, can be located in the page), the Markdown as
        the PNG.
        """
        from causal_hcc.report.figures import new_figure

        fig = new_figure(width, height)
        try:
            draw(fig)
        except SpecError:
            return None
        return self.add(name, title, fig, svg=svg)


_SVG_ID = re.compile(r'\bid="([^"]+)"')


def figure_svg(fig: Any, name: str, width_px: int) -> str:
    """The figure as an inline ``<svg>`` element: text drawn as paths (exactly as in the PNG, whatever fonts the
    browser has), ids prefixed with the figure's name (unique in the page), shown ``width_px`` CSS pixels wide."""
    import io

    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # inline in HTML5 the namespaces are implied (xlink:href included) and the RDF metadata says nothing: the page
    # keeps no URL of any kind
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    text = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", text)
    ids = set(_SVG_ID.findall(text))
    text = _SVG_ID.sub(lambda m: f'id="{name}-{m.group(1)}"', text)
    text = re.sub(r'(href="#|url\(#)([^")]+)', lambda m: m.group(1) + (f"{name}-{m.group(2)}" if m.group(2) in ids
                                                                         else m.group(2)), text)
    w = re.search(r'<svg[^>]*\swidth="([0-9.]+)pt"', text)
    h = re.search(r'<svg[^>]*\sheight="([0-9.]+)pt"', text)
    if w and h:
        px_w = float(w.group(1)) * 96 / 72
        px_h = float(h.group(1)) * 96 / 72
        text = text.replace(f'width="{w.group(1)}pt"', f'width="{px_w:.0f}"', 1)
        text = text.replace(f'height="{h.group(1)}pt"', f'height="{px_h:.0f}"', 1)
    return text.replace("<svg ", f'<svg class="fig" role="img" aria-label="{name}" ', 1)
