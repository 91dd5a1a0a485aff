"""Bar charts as inline SVG, drawn on the server: no script, no external file, nothing
a Content-Security-Policy of ``default-src 'self'`` refuses (shapes and text carry
presentation attributes and classes, no ``style``), and they print.

    bar_chart(values, labels, title="调用次数")   # one bar per day

Each bar is a ``<rect class="daybar">`` with ``data-label`` and ``data-value`` and a
``<title>`` (the browser shows it on hover; a screen reader reads the chart's
``aria-label``, and the page states the totals beside it). A zero draws no bar; the
y axis starts at zero and its top is the largest value. Every text is escaped
(``Markup.format``).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

WIDTH = 260
HEIGHT = 120
LEFT = 28  # room for the y-axis figures
BOTTOM = 16  # room for the first and last labels
TOP = 6

_OPEN = Markup('<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" '
               'viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
               'aria-label="{title}"><title>{title}</title>')
_AXIS = Markup('<line class="axis" x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="#9aa5b1" '
               'stroke-width="1"/>')
_TICK = Markup('<text class="tick" x="{x}" y="{y}" text-anchor="{anchor}" font-size="9" '
               'fill="#616e7c">{text}</text>')
_BAR = Markup('<rect class="daybar" x="{x}" y="{y}" width="{w}" height="{h}" fill="#b3261e" '
              'data-label="{label}" data-value="{value}"><title>{label}: {value}</title></rect>')
_CLOSE = Markup("</svg>")


def bar_chart(values: Sequence[int], labels: Sequence[str], *, title: str,
              width: int = WIDTH, height: int = HEIGHT, css_class: str = "") -> Markup:
    """An SVG bar chart of ``values`` (one per label, same order)."""
    if len(values) != len(labels):
        raise ValueError("one label per value")
    top = max(values, default=0)
    plot_w = width - LEFT - 2
    plot_h = height - TOP - BOTTOM
    base = TOP + plot_h
    step = plot_w / max(len(values), 1)
    bar_w = max(step * 0.8, 1.0)
    parts = [
        _OPEN.format(css=css_class, w=width, h=height, title=title),
        _AXIS.format(x1=LEFT, x2=width - 2, y=base),
        _TICK.format(x=LEFT - 3, y=TOP + 8, anchor="end", text=top),
        _TICK.format(x=LEFT - 3, y=base, anchor="end", text=0),
    ]
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = 0.0 if top == 0 else max(plot_h * value / top, 1.0 if value > 0 else 0.0)
        parts.append(_BAR.format(x=f"{LEFT + i * step + (step - bar_w) / 2:.1f}",
                                 y=f"{base - h:.1f}", w=f"{bar_w:.1f}", h=f"{h:.1f}",
                                 label=label, value=int(value)))
    if labels:
        parts.append(_TICK.format(x=LEFT, y=height - 3, anchor="start", text=labels[0]))
        if len(labels) > 1:
            parts.append(_TICK.format(x=width - 2, y=height - 3, anchor="end",
                                      text=labels[-1]))
    parts.append(_CLOSE)
    return Markup("").join(parts)
