"""Plot geometry for the report: axes that map data to SVG pixels, and marks carrying hover text.

A `Plot` is plain data (numbers and strings); the template draws it, so jinja's autoescaping covers
every label. Marks with `tip` show it on hover (page script); marks with `trial` are highlighted
together across plots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PALETTE = ["#3465a4", "#cc0000", "#4e9a06", "#f57900", "#75507b", "#c4a000", "#06989a", "#8f5902"]


@dataclass
class Plot:
    """One SVG figure: axes, ticks, marks (`circle`, `path`, `rect`) and a legend."""

    title: str
    x_label: str
    y_label: str
    width: int = 470
    height: int = 330
    left: int = 58
    right: int = 14
    top: int = 40
    bottom: int = 46
    marks: list[dict] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    caption: str = ""
    plot_id: str = ""
    rotate_x: bool = False  # slanted x tick labels (long bin names)

    def legend_items(self) -> list[tuple[float, str, str]]:
        """Legend entries laid out in one row under the title: (x, colour, label)."""
        out, x = [], float(self.left)
        for color, label in self.legend:
            out.append((x, color, label))
            x += 22 + 5.6 * len(label)
        return out

    @property
    def x0(self):
        return self.left

    @property
    def x1(self):
        return self.width - self.right

    @property
    def y0(self):
        return self.height - self.bottom

    @property
    def y1(self):
        return self.top


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        exp = math.floor(math.log10(abs(v)))
        mant = v / 10**exp
        return f"{mant:g}e{exp}" if abs(mant - 1) > 1e-9 else f"1e{exp}"
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"


class Axes:
    """Maps data coordinates (optionally log10) to the pixels of `plot`."""

    def __init__(self, plot: Plot, x_range, y_range, *, log_x=False, log_y=False, pad=0.04, integer_y=False):
        """`integer_y`: ticks only at whole numbers (counts)."""
        self.plot, self.log_x, self.log_y = plot, log_x, log_y
        self.xr = self._range(x_range, log_x, pad)
        self.yr = self._range(y_range, log_y, pad)
        plot.x_ticks = [(self.px(v), _fmt_tick(v)) for v in self._ticks(self.xr, log_x)]
        plot.y_ticks = [(self.py(v), _fmt_tick(v)) for v in self._ticks(self.yr, log_y, integer_y)]

    @staticmethod
    def _range(r, log, pad):
        lo, hi = (float(v) for v in r)
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo, hi = 0.0, 1.0
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        span = hi - lo
        return lo - pad * span, hi + pad * span

    @staticmethod
    def _ticks(r, log, integer=False):
        lo, hi = r
        if log:
            ks = range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1)
            ticks = [10.0**k for k in ks]
            if len(ticks) < 3:  # two decades or less: 1-2-5 steps, else 2 significant digits
                ticks = [
                    m * 10.0**k
                    for k in range(math.floor(lo) - 1, math.ceil(hi) + 1)
                    for m in (1, 2, 5)
                    if lo - 1e-9 <= math.log10(m * 10.0**k) <= hi + 1e-9
                ]
            if len(ticks) < 2:
                ticks = [float(f"{t:.2g}") for t in np.geomspace(10**lo, 10**hi, 5)[1:-1]]
            return ticks
        step = 10 ** math.floor(math.log10((hi - lo) / 4))
        for mult in (1, 2, 2.5, 5, 10):
            if integer and not float(step * mult).is_integer():
                continue
            if (hi - lo) / (step * mult) <= 6:
                step *= mult
                break
        step = max(step, 1) if integer else step
        start = math.ceil(lo / step) * step
        return [round(v, 10) for v in np.arange(start, hi + 1e-12, step)]

    def _t(self, v, log):
        return math.log10(v) if log else v

    def px(self, v) -> float:
        p = self.plot
        lo, hi = self.xr
        return round(p.x0 + (self._t(v, self.log_x) - lo) / (hi - lo) * (p.x1 - p.x0), 1)

    def py(self, v) -> float:
        p = self.plot
        lo, hi = self.yr
        return round(p.y0 - (self._t(v, self.log_y) - lo) / (hi - lo) * (p.y0 - p.y1), 1)

    def ok(self, x, y) -> bool:
        return all(
            v is not None and math.isfinite(v) and (not log or v > 0) for v, log in ((x, self.log_x), (y, self.log_y))
        )

    # -- marks -------------------------------------------------------------------------------------
    def point(self, x, y, tip: str, *, trial=None, cls: str = "", r: float = 4.5, color: str | None = None):
        if self.ok(x, y):
            self.plot.marks.append(
                {
                    "kind": "circle",
                    "cx": self.px(x),
                    "cy": self.py(y),
                    "r": r,
                    "tip": tip,
                    "trial": trial,
                    "cls": cls,
                    "color": color,
                }
            )

    def line(
        self,
        xs,
        ys,
        tip: str = "",
        *,
        trial=None,
        cls: str = "",
        color: str | None = None,
        width: float = 1.5,
        dash: str = "",
    ):
        pts = [(self.px(x), self.py(y)) for x, y in zip(xs, ys) if self.ok(x, y)]
        if len(pts) >= 2:
            d = "M" + " L".join(f"{a},{b}" for a, b in pts)
            self.plot.marks.append(
                {
                    "kind": "path",
                    "d": d,
                    "tip": tip,
                    "trial": trial,
                    "cls": cls,
                    "color": color,
                    "stroke_width": width,
                    "dash": dash,
                }
            )

    def area(self, xs_a, ys_a, xs_b, ys_b, tip: str, *, color: str, opacity: float = 0.3):
        """The filled region between two polylines (a quantile band): along `a`, back along `b`."""
        a = [(self.px(x), self.py(y)) for x, y in zip(xs_a, ys_a) if self.ok(x, y)]
        b = [(self.px(x), self.py(y)) for x, y in zip(xs_b, ys_b) if self.ok(x, y)]
        if len(a) >= 2 and len(b) >= 2:
            d = "M" + " L".join(f"{x},{y}" for x, y in a + b[::-1]) + " Z"
            self.plot.marks.append(
                {"kind": "area", "d": d, "tip": tip, "trial": None, "color": color, "opacity": opacity}
            )

    def rect(self, x0, x1, y0, y1, tip: str, *, color: str, label: str = "", cls: str = ""):
        """A rectangle between data coordinates (used in pixel space by heatmaps via `pixel_rect`)."""
        ax, bx = sorted((self.px(x0), self.px(x1)))
        ay, by = sorted((self.py(y0), self.py(y1)))
        self.pixel_rect(ax, ay, bx - ax, by - ay, tip, color=color, label=label, cls=cls)

    def scaled_rect(self, tx0, tx1, ty0, ty1, tip: str, *, color: str, cls: str = ""):
        """A rectangle between axis coordinates (log10 of the value on a log axis): density bins."""
        p, (xl, xh), (yl, yh) = self.plot, self.xr, self.yr
        ax, bx = (p.x0 + (t - xl) / (xh - xl) * (p.x1 - p.x0) for t in (tx0, tx1))
        ay, by = (p.y0 - (t - yl) / (yh - yl) * (p.y0 - p.y1) for t in (ty1, ty0))
        self.pixel_rect(ax, ay, bx - ax, by - ay, tip, color=color, cls=cls)

    def pixel_rect(self, x, y, w, h, tip: str, *, color: str, label: str = "", cls: str = ""):
        self.plot.marks.append(
            {
                "kind": "rect",
                "x": round(x, 1),
                "y": round(y, 1),
                "w": round(w, 1),
                "h": round(h, 1),
                "tip": tip,
                "color": color,
                "label": label,
                "cls": cls,
                "trial": None,
            }
        )


def sequential_color(v: float) -> str:
    """Light yellow (0) → dark blue (1): a colour-blind-safe ramp for values in [0, 1]."""
    v = 0.0 if not math.isfinite(v) else min(1.0, max(0.0, v))
    stops = [(255, 255, 204), (161, 218, 180), (65, 182, 196), (44, 127, 184), (37, 52, 148)]
    pos = v * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    f = pos - i
    r, g, b = (round(a + (c - a) * f) for a, c in zip(stops[i], stops[i + 1]))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    title: str,
    x_label: str,
    y_label: str,
    x_bins: list[str],
    y_bins: list[str],
    cells: list[dict],
    *,
    caption: str = "",
) -> Plot:
    """Categorical heatmap: `cells` have `x`, `y` (bin labels), `value` in [0, 1] and `tip`."""
    # slanted x labels only where they are long (bin ranges); short ones (depths) stay upright
    rotate = max((len(b) for b in x_bins), default=0) > 5
    plot = Plot(title, x_label, y_label, caption=caption, left=110, bottom=90 if rotate else 46, rotate_x=rotate)
    nx, ny = max(1, len(x_bins)), max(1, len(y_bins))
    cw, ch = (plot.x1 - plot.x0) / nx, (plot.y0 - plot.y1) / ny
    ax = Axes(plot, (0, 1), (0, 1))
    plot.x_ticks = [(round(plot.x0 + (i + 0.5) * cw, 1), b) for i, b in enumerate(x_bins)]
    plot.y_ticks = [(round(plot.y0 - (j + 0.5) * ch, 1), b) for j, b in enumerate(y_bins)]
    for c in cells:
        i, j = x_bins.index(c["x"]), y_bins.index(c["y"])
        ax.pixel_rect(
            plot.x0 + i * cw + 1,
            plot.y0 - (j + 1) * ch + 1,
            cw - 2,
            ch - 2,
            c["tip"],
            color=sequential_color(c["value"]),
            label=f"{c['value']:.2f}",
            cls="dark" if c["value"] > 0.6 else "",
        )
    return plot
