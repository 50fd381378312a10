"""The report's figures: drawn once, kept as PNG at twice their display resolution.

Each figure is rendered at 192 dpi and shown at 96 CSS px per inch (its
``width`` attribute is half the PNG's pixel width), so text stays sharp on
high-density screens and in the Chromium-printed PDF. ``report.html``
embeds them as base64; ``report.md`` references the files under
``figures/``.
"""
from __future__ import annotations

import base64
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

    def add(self, name: str, title: str, fig: Any) -> dict[str, Any]:
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
        self.items.append(item)
        fig.clf()
        return item

    def draw(self, name: str, title: str, width: float, height: float,
             draw: Callable[[Any], Any]) -> dict[str, Any] | None:
        """Draw on a new ``width`` x ``height`` inch figure; None when there is nothing to draw (SpecError)."""
        from causal_hcc.report.figures import new_figure

        fig = new_figure(width, height)
        try:
            draw(fig)
        except SpecError:
            return None
        return self.add(name, title, fig)
