"""Rolling-origin backtest of the vital-sign forecast: error and interval coverage."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from medagent.monitor.forecast import forecast


@dataclass(slots=True)
class _Tally:
    n: int = 0
    abs_error: float = 0.0
    naive_abs_error: float = 0.0
    covered: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "forecasts": self.n,
            "mae": self.abs_error / self.n if self.n else None,
            "naive_mae": self.naive_abs_error / self.n if self.n else None,
            "coverage": self.covered / self.n if self.n else None,
        }


@dataclass(slots=True)
class Backtest:
    """Errors of one-step-ahead forecasts, per signal and overall."""

    level: float
    per_signal: dict[str, _Tally] = field(default_factory=dict)

    def add(self, signal: str, *, actual: float, mean: float, lower: float, upper: float,
            naive: float) -> None:  # fmt: skip
        """Count one forecast against what was then observed."""
        tally = self.per_signal.setdefault(signal, _Tally())
        tally.n += 1
        tally.abs_error += abs(actual - mean)
        tally.naive_abs_error += abs(actual - naive)
        tally.covered += lower <= actual <= upper

    def to_dict(self) -> dict[str, Any]:
        """MAE, the last-value baseline's MAE and interval coverage, per signal and overall."""
        total = _Tally()
        for t in self.per_signal.values():
            total.n += t.n
            total.abs_error += t.abs_error
            total.naive_abs_error += t.naive_abs_error
            total.covered += t.covered
        return {
            "level": self.level,
            "overall": total.to_dict(),
            "signals": {k: v.to_dict() for k, v in sorted(self.per_signal.items())},
        }


def backtest(
    all_series: Iterable[dict[str, tuple[Sequence[datetime], Sequence[float]]]],
    *,
    signals: Iterable[str],
    horizon: timedelta,
    level: float = 0.8,
    min_points: int = 8,
    origins: int = 5,
) -> Backtest:
    """For each series, forecast the next value from each of the last ``origins`` prefixes and
    compare with the value observed (the forecast step nearest the actual time is used)."""
    wanted = set(signals)
    out = Backtest(level)
    for per_patient in all_series:
        for sid, (times, values) in per_patient.items():
            if sid not in wanted or len(values) < min_points + 1:
                continue
            for i in range(max(min_points, len(values) - origins), len(values)):
                fc = forecast(sid, times=times[:i], values=values[:i], horizon=horizon, level=level,
                              min_points=min_points)  # fmt: skip
                if fc is None:
                    continue
                target = times[i]
                point = min(fc.points, key=lambda p: abs((p.time - target).total_seconds()))
                out.add(sid, actual=values[i], mean=point.mean, lower=point.lower,
                        upper=point.upper, naive=values[i - 1])  # fmt: skip
    return out
