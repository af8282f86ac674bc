"""Small trend lines drawn on the server as SVG, so tiles show a trend without JavaScript.

`frontend/src/lib/sparkline.js` draws the same line in the browser (map popups, live tiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WIDTH = 120
HEIGHT = 32
PAD = 2


def _numbers(values: Sequence[Any]) -> list[float | None]:
    return [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
            for v in values]


def sparkline_points(values: Sequence[Any], width: int = WIDTH, height: int = HEIGHT) -> str:
    """The `points` of an SVG polyline through the values; gaps (None) are skipped over."""
    numbers = _numbers(values)
    present = [v for v in numbers if v is not None]
    if len(present) < 2:
        return ""
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    step = (width - 2 * PAD) / (len(numbers) - 1)
    points = []
    for i, v in enumerate(numbers):
        if v is None:
            continue
        x = PAD + i * step
        # A flat series sits in the middle rather than on the floor.
        y = height / 2 if high == low else height - PAD - (v - low) / span * (height - 2 * PAD)
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


def trend_direction(values: Sequence[Any]) -> str:
    """"rising", "falling" or "steady": last value against the first, 5 % of the range apart."""
    present = [v for v in _numbers(values) if v is not None]
    if len(present) < 2:
        return "none"
    low, high = min(present), max(present)
    delta = present[-1] - present[0]
    if high == low or abs(delta) < 0.05 * (high - low):
        return "steady"
    return "rising" if delta > 0 else "falling"
