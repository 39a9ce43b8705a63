"""Small helpers for printing figures side by side."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def describe_ms(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):7.1f} ms  mean {statistics.fmean(ms):7.1f} ms  "
        f"p99 {percentile(ms, 99):7.1f} ms  (n={len(ms)})"
    )


def row(label: str, text: str) -> None:
    print(f"  {label:<44} {text}", flush=True)
