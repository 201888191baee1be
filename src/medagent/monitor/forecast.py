"""Short-horizon forecasts of a vital sign with an uncertainty band (statsmodels ETS), and the
threshold crossings they project."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from medagent.monitor.config import Threshold

_MIN_GRID = 24  # a horizon is cut into at most this many forecast steps


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    """One forecast step: time, point forecast and the prediction interval."""

    time: datetime
    mean: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """A forecast of one signal from its recent history."""

    signal: str
    fitted_at: datetime  # time of the last observation used
    step: timedelta
    level: float
    model: str
    points: tuple[ForecastPoint, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "signal": self.signal,
            "fitted_at": self.fitted_at.isoformat(),
            "step_minutes": self.step.total_seconds() / 60,
            "level": self.level,
            "model": self.model,
            "points": [
                {"time": p.time.isoformat(), "mean": p.mean, "lower": p.lower, "upper": p.upper}
                for p in self.points
            ],
        }


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold the forecast crosses, and when."""

    threshold: Threshold
    time: datetime
    value: float

    def describe(self, label: str, unit: str | None) -> str:
        """``Heart rate projected above 130 /min within 2 h (at 14:20, 134)``."""
        side = "above" if self.threshold.above is not None else "below"
        limit = self.threshold.above if self.threshold.above is not None else self.threshold.below
        hours = self.threshold.within.total_seconds() / 3600
        return (
            f"{label} projected {side} {limit:g}{' ' + unit if unit else ''} within {hours:g} h "
            f"({self.value:.0f} at {self.time:%H:%M})"
        )


def _grid(times: Sequence[datetime], values: Sequence[float], step: timedelta) -> list[float]:
    """Values on a regular grid of ``step`` (the last value in each bin, carried forward)."""
    start = times[0]
    n = int((times[-1] - start) / step) + 1
    grid: list[float | None] = [None] * n
    for t, v in zip(times, values, strict=True):
        grid[min(int((t - start) / step), n - 1)] = v
    out: list[float] = []
    last = values[0]
    for g in grid:
        last = g if g is not None else last
        out.append(last)
    return out


def forecast(
    signal: str,
    *,
    times: Sequence[datetime],
    values: Sequence[float],
    horizon: timedelta,
    level: float = 0.8,
    min_points: int = 8,
) -> Forecast | None:
    """Forecast the next ``horizon`` from a history (oldest first); None with too few points.

    The history is put on a regular grid (the median spacing, at least horizon/24), a damped
    additive-trend ETS model is fitted (simple exponential smoothing when the series is short or
    the trend model fails), and the prediction interval at ``level`` is the band.
    """
    if len(values) < min_points:
        return None
    import pandas as pd  # type: ignore[import-untyped]
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # type: ignore[import-untyped]

    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times) if b > a]
    if not gaps:
        return None
    step = max(timedelta(seconds=median(gaps)), horizon / _MIN_GRID)
    series = _grid(times, values, step)
    steps = max(1, math.ceil(horizon / step))
    y = pd.Series(series, dtype=float)
    alpha = 1 - level
    best: tuple[float, Any, str] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for trend, name in ((None, "ETS(A,N,N)"), ("add", "ETS(A,Ad,N)")):
            if trend and len(y) < 2 * min_points:
                continue
            try:
                fit = ETSModel(y, error="add", trend=trend, damped_trend=bool(trend)).fit(
                    disp=False, maxiter=100
                )
            except (ValueError, np_linalg_error()):
                continue
            if math.isfinite(fit.aic) and (best is None or fit.aic < best[0]):
                best = (fit.aic, fit, name)  # the lower AIC wins
        if best is None:
            return None
        _, fit, model_name = best
        frame = fit.get_prediction(start=len(y), end=len(y) + steps - 1).summary_frame(alpha=alpha)
    if frame[["mean", "pi_lower", "pi_upper"]].isna().to_numpy().any():
        frame = None
    if frame is None:
        return None
    last = times[-1]
    points = tuple(
        ForecastPoint(last + step * (i + 1), float(m), float(lo), float(hi))
        for i, (m, lo, hi) in enumerate(
            zip(frame["mean"], frame["pi_lower"], frame["pi_upper"], strict=True)
        )
    )
    return Forecast(signal, last, step, level, model_name, points)


def np_linalg_error() -> type[Exception]:
    """numpy's LinAlgError (raised by a degenerate fit)."""
    import numpy as np

    return np.linalg.LinAlgError


def crossing(fc: Forecast, threshold: Threshold) -> Crossing | None:
    """The first forecast point within the threshold's window beyond it (on the point forecast)."""
    limit = fc.fitted_at + threshold.within
    for p in fc.points:
        if p.time > limit:
            break
        if threshold.above is not None and p.mean > threshold.above:
            return Crossing(threshold, p.time, p.mean)
        if threshold.below is not None and p.mean < threshold.below:
            return Crossing(threshold, p.time, p.mean)
    return None
