"""SVG charts as strings: line, grouped bar and horizontal bar. Pure, no dependencies.

Every chart is a `viewBox`-based `<svg>` that scales to its container. Text is
escaped here, colours are checked (anything that is not `#rrggbb` falls back
to grey), and styling uses presentation attributes only (`fill=`, `stroke=`,
`font-size=`): the pages' Content-Security-Policy forbids inline `style`.
The caller may insert the result into HTML as-is.
"""

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
FALLBACK = "#8a93a6"
FONT = "Noto Sans CJK SC, Noto Sans SC, PingFang SC, Microsoft YaHei, sans-serif"
INK, MUTED, GRID, AXIS = "#1c2233", "#6b7388", "#e6e9f0", "#c4cad6"


@dataclass(frozen=True)
class Series:
    """One line (or one bar per group): a name, a colour and its values."""

    name: str
    color: str
    points: Sequence[tuple[float, float | None]] = ()  # line charts: (x, y); y None breaks the line
    values: Sequence[float] = ()  # bar charts: one per group


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart."""

    label: str
    value: float
    color: str


@dataclass
class Frame:
    """The plot area inside the viewBox."""

    width: int
    height: int
    left: int = 56
    right: int = 20
    top: int = 40
    bottom: int = 40
    parts: list[str] = field(default_factory=list)

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top


def color(value: str) -> str:
    return value if isinstance(value, str) and COLOR.match(value) else FALLBACK


def text(s: object) -> str:
    return escape(str(s), quote=True)


def num(v: float) -> str:
    """A compact coordinate: at most one decimal."""
    r = round(v, 1)
    return str(int(r)) if r == int(r) else str(r)


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 .. a round number >= top, in `count`-ish round steps (1, 2, 2.5, 5 x 10^n)."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if step < 1 and top >= 1:
        step = 1
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 6) for i in range(n + 1)]


def short(v: float) -> str:
    """Axis label for a count: 1200 -> 1.2k, 35000 -> 35k."""
    if abs(v) >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if abs(v) >= 10_000:
        return f"{v / 1000:g}k"
    return f"{v:g}" if v != int(v) else str(int(v))


def label(v: float) -> str:
    """A value written on a bar: the whole number with thousands separators."""
    return f"{int(v):,}" if v == int(v) and abs(v) < 10_000_000 else short(v)


def _open(width: int, height: int, title: str, desc: str, css: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{text(css)}" viewBox="0 0 {width} {height}" '
        f'role="img" preserveAspectRatio="xMidYMid meet" font-family="{text(FONT)}" '
        f'font-size="13" fill="{INK}">',
        f"<title>{text(title)}</title>",
        f"<desc>{text(desc)}</desc>" if desc else "",
    ]


def _legend(frame: Frame, series: Sequence[Series]) -> str:
    """Swatches and names, right-aligned above the plot."""
    out, x = [], frame.x1
    for s in reversed(series):
        w = 22 + _text_width(s.name, 13)
        x -= w
        out.append(
            f'<g class="legend-item"><rect x="{num(x)}" y="12" width="12" height="12" rx="3" '
            f'fill="{color(s.color)}"/><text x="{num(x + 17)}" y="22.5" fill="{INK}">{text(s.name)}</text></g>'
        )
        x -= 14
    return "".join(out)


def _text_width(s: str, size: float) -> float:
    """Rough width of a label: CJK characters are square, Latin about half."""
    return sum(size if ord(c) > 0x2E80 else size * 0.58 for c in str(s))


def _empty(frame: Frame, message: str) -> str:
    cx, cy = (frame.x0 + frame.x1) / 2, (frame.y0 + frame.y1) / 2
    return (
        f'<rect x="{num(frame.x0)}" y="{num(frame.y1)}" width="{num(frame.x1 - frame.x0)}" '
        f'height="{num(frame.y0 - frame.y1)}" rx="6" fill="#f6f7fa"/>'
        f'<text class="empty" x="{num(cx)}" y="{num(cy + 5)}" text-anchor="middle" fill="{MUTED}" '
        f'font-size="15">{text(message)}</text>'
    )


def _y_axis(frame: Frame, ticks: list[float], caption: str) -> list[str]:
    top = ticks[-1] or 1
    kilo = top >= 10_000  # one unit for the whole axis: 0, 2k, 4k … rather than 8000, 10k
    out = []
    for t in ticks:
        y = frame.y0 - (frame.y0 - frame.y1) * t / top
        out.append(
            f'<line x1="{num(frame.x0)}" x2="{num(frame.x1)}" y1="{num(y)}" y2="{num(y)}" '
            f'stroke="{GRID if t else AXIS}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{num(frame.x0 - 8)}" y="{num(y + 4)}" text-anchor="end" fill="{MUTED}" '
            f'font-size="12">{text(f"{t / 1000:g}k" if kilo and t and top < 10_000_000 else short(t))}</text>'
        )
    if caption:
        out.append(f'<text x="{num(frame.x0)}" y="22.5" fill="{MUTED}" font-size="12">{text(caption)}</text>')
    return out


def _x_axis(
    frame: "Frame",
    lo: float,
    hi: float,
    px: Callable[[float], float],
    x_format: Callable[[float], str],
    x_ticks: Callable[[float, float], Sequence[float]] | None,
) -> list[str]:
    n = 6 if frame.x1 - frame.x0 > 400 else 3
    tick_xs = list(x_ticks(lo, hi)) if x_ticks else []
    if not tick_xs:
        tick_xs = [lo + (hi - lo) * i / n for i in range(n + 1)]
    parts = []
    for x in tick_xs:
        at = px(x)
        anchor = "start" if at - frame.x0 < 24 else "end" if frame.x1 - at < 24 else "middle"
        parts.append(
            f'<line x1="{num(at)}" x2="{num(at)}" y1="{num(frame.y0)}" y2="{num(frame.y0 + 4)}" '
            f'stroke="{AXIS}"/><text x="{num(at)}" y="{num(frame.y0 + 20)}" text-anchor="{anchor}" '
            f'fill="{MUTED}" font-size="12">{text(x_format(x))}</text>'
        )
    return parts


def _line(
    frame: "Frame", s: "Series", px: Callable[[float], float], py: Callable[[float], float], area: bool
) -> list[str]:
    """One series: its runs of points (a None y breaks the line), filled below with `area`."""
    c = color(s.color)
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in s.points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((px(x), py(y)))
    parts = []
    for run in runs:
        if not run:
            continue
        path = " ".join(f"{num(x)},{num(y)}" for x, y in run)
        if area and len(run) > 1:
            parts.append(
                f'<polygon points="{num(run[0][0])},{num(frame.y0)} {path} '
                f'{num(run[-1][0])},{num(frame.y0)}" fill="{c}" fill-opacity="0.12"/>'
            )
        if len(run) > 1:
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2.5" '
                f'stroke-linejoin="round" stroke-linecap="round"/>'
            )
        if len(run) <= 40:
            parts += [f'<circle cx="{num(x)}" cy="{num(y)}" r="3" fill="{c}"/>' for x, y in run]
    return parts


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str = "",
    empty: str = "—",
    x_format: Callable[[float], str] = lambda x: str(x),
    width: int = 720,
    height: int = 300,
    area: bool = False,
    x_ticks: Callable[[float, float], Sequence[float]] | None = None,
    pad: float = 1,
    css: str = "chart line-chart",
) -> str:
    """Lines over a numeric x axis (e.g. ms timestamps) with a 0-based y axis.

    A `None` y breaks the line. `x_ticks(lo, hi)` picks the labelled x values
    (default: evenly spaced); a single x is widened by `pad` either side. With
    `area`, the first series is filled below.
    """
    frame = Frame(width, height)
    parts = _open(width, height, title, y_label, css)
    xs = [x for s in series for x, y in s.points if y is not None]
    ys = [y for s in series for x, y in s.points if y is not None]
    if not xs:
        parts.append(_empty(frame, empty))
        parts.append("</svg>")
        return "".join(parts)
    lo, hi = min(xs), max(xs)
    if hi == lo:  # one point: give it some room
        lo, hi = lo - pad, hi + pad
    ticks = nice_ticks(max(ys))
    top = ticks[-1] or 1

    def px(x: float) -> float:
        return frame.x0 + (frame.x1 - frame.x0) * (x - lo) / (hi - lo)

    def py(y: float) -> float:
        return frame.y0 - (frame.y0 - frame.y1) * y / top

    parts += _y_axis(frame, ticks, y_label)
    parts += _x_axis(frame, lo, hi, px, x_format, x_ticks)
    for i, s in enumerate(series):
        parts += _line(frame, s, px, py, area=area and i == 0)
    parts.append(_legend(frame, series) if len(series) > 1 else "")
    parts.append("</svg>")
    return "".join(parts)


TIME_STEPS_S = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def time_ticks(offset_ms: int = 0, most: int = 7, min_step_ms: int = 0) -> Callable[[float, float], list[float]]:
    """Tick picker for ms-timestamp axes: round seconds, minutes, hours or days in local
    time (`offset_ms` is the time zone's offset from UTC), at most `most` of them."""

    def pick(lo: float, hi: float) -> list[float]:
        steps = [s * 1000 for s in TIME_STEPS_S if s * 1000 >= min_step_ms]
        step = next((m for m in steps if (hi - lo) / m <= most - 1), steps[-1])
        first = math.ceil((lo + offset_ms) / step) * step - offset_ms
        out: list[float] = []
        x = float(first)
        while x <= hi and len(out) <= most:
            out.append(x)
            x += step
        return out

    return pick


def _bar(
    group: str, s: "Series", v: float, x: float, y: float, bw: float, h: float, won: bool, badge_text: str
) -> list[str]:
    """One bar with its value above it, outlined and badged if its series won the group."""
    outline = f' stroke="{INK}" stroke-width="2"' if won else ""
    parts = [
        f'<rect class="bar" x="{num(x + 2)}" y="{num(y)}" width="{num(bw - 4)}" '
        f'height="{num(max(h, 0))}" rx="3" fill="{color(s.color)}"{outline}>'
        f"<title>{text(group)} · {text(s.name)}: {text(label(v))}</title></rect>",
        f'<text x="{num(x + bw / 2)}" y="{num(y - 6)}" text-anchor="middle" '
        f'font-size="12" fill="{INK}">{text(label(v))}</text>',
    ]
    if won and badge_text:
        parts.append(
            f'<g class="badge"><rect x="{num(x + bw / 2 - 16)}" y="{num(y - 38)}" width="32" '
            f'height="18" rx="9" fill="#f5b400"/><text x="{num(x + bw / 2)}" y="{num(y - 25)}" '
            f'text-anchor="middle" font-size="11" font-weight="700" fill="#5a1500">'
            f"{text(badge_text)}</text></g>"
        )
    return parts


def bar_chart(
    groups: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str = "",
    empty: str = "—",
    badges: Sequence[str | None] = (),
    badge_text: str = "",
    width: int = 720,
    height: int = 300,
    css: str = "chart bar-chart",
) -> str:
    """Grouped vertical bars: one group per label, one bar per series in its colour.

    `badges[i]` names the series (by index as a string, e.g. "0") that won group i;
    its bar gets `badge_text` above it and an outline.
    """
    frame = Frame(width, height, top=56, bottom=48)
    parts = _open(width, height, title, y_label, css)
    values = [v for s in series for v in s.values]
    if not groups or not values:
        parts.append(_empty(frame, empty))
        parts.append("</svg>")
        return "".join(parts)
    ticks = nice_ticks(max(values) * 1.12 if max(values) > 0 else 1)
    top = ticks[-1] or 1
    parts += _y_axis(frame, ticks, y_label)
    span = (frame.x1 - frame.x0) / len(groups)
    inner = span * 0.72
    bw = min(56.0, inner / max(1, len(series)))
    max_chars = max(4, int(span / 13))
    for g, name in enumerate(groups):
        gx = frame.x0 + span * g + (span - bw * len(series)) / 2
        for i, s in enumerate(series):
            v = s.values[g] if g < len(s.values) else 0
            h = (frame.y0 - frame.y1) * v / top
            x, y = gx + bw * i, frame.y0 - h
            won = g < len(badges) and badges[g] == str(i)
            parts += _bar(name, s, v, x, y, bw, h, won, badge_text)
        shown = name if len(name) <= max_chars else name[: max_chars - 1] + "…"
        parts.append(
            f'<text x="{num(frame.x0 + span * g + span / 2)}" y="{num(frame.y0 + 20)}" '
            f'text-anchor="middle" font-size="12" fill="{INK}">{text(shown)}</text>'
        )
    parts.append(_legend(frame, series) if len(series) > 1 else "")
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(
    bars: Sequence[Bar], *, title: str, empty: str = "—", width: int = 720, css: str = "chart hbar-chart"
) -> str:
    """Horizontal bars with their label on the left and the value at the end."""
    row = 34
    label_w = max([_text_width(b.label, 13) for b in bars] + [40]) + 20
    height = 24 + row * max(1, len(bars)) + 12
    frame = Frame(width, height, left=int(label_w), right=60, top=20, bottom=12)
    parts = _open(width, height, title, "", css)
    if not bars or not any(b.value for b in bars):
        parts.append(_empty(frame, empty))
        parts.append("</svg>")
        return "".join(parts)
    top = max(b.value for b in bars) or 1
    for i, b in enumerate(bars):
        y = frame.y1 + row * i
        w = (frame.x1 - frame.x0) * b.value / top
        parts.append(
            f'<text x="{num(frame.x0 - 12)}" y="{num(y + 18)}" text-anchor="end" fill="{INK}">{text(b.label)}</text>'
        )
        parts.append(
            f'<rect x="{num(frame.x0)}" y="{num(y + 4)}" width="{num(frame.x1 - frame.x0)}" '
            f'height="20" rx="4" fill="#f1f3f7"/>'
        )
        if b.value:
            parts.append(
                f'<rect class="bar" x="{num(frame.x0)}" y="{num(y + 4)}" width="{num(max(w, 3))}" '
                f'height="20" rx="4" fill="{color(b.color)}"/>'
            )
        parts.append(
            f'<text x="{num(frame.x0 + max(w, 3) + 8)}" y="{num(y + 18)}" fill="{INK}" '
            f'font-weight="700">{text(label(b.value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
