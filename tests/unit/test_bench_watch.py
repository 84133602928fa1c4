"""The soak's memory criterion: growth read from the trend of the samples, not two of them."""

from __future__ import annotations

import random

from bench._watch import series_summary
from bench.soak import rss_trend_growth_pct


def samples(values: list[float]) -> list[dict[str, float]]:
    return [{"t_s": float(t), "rss_kb": v} for t, v in enumerate(values)]


def test_a_swinging_series_without_a_trend_has_no_growth() -> None:
    # Readings swing ±8% around 128 MB; the last sits 12% above the first.
    rng = random.Random(1)
    swings = [128_000 * (1 + rng.uniform(-0.08, 0.08)) for _ in range(34)]
    values = [120_000.0, *swings, 134_400.0]
    assert 100 * (values[-1] - values[0]) / values[0] > 10  # two readings would fail it
    assert abs(rss_trend_growth_pct(series_summary(samples(values), "rss_kb"))) < 5


def test_a_leak_shows_in_the_trend() -> None:
    # 15% growth over the window, under the same swings.
    rng = random.Random(2)
    values = [100_000 * (1 + 0.15 * t / 35) * (1 + rng.uniform(-0.08, 0.08)) for t in range(36)]
    summary = series_summary(samples(values), "rss_kb")
    assert 10 < rss_trend_growth_pct(summary) < 20
    assert summary["slope_per_min"] > 0


def test_a_flat_series() -> None:
    summary = series_summary(samples([50_000.0] * 5), "rss_kb")
    assert summary["fit_first"] == summary["fit_last"] == 50_000.0
    assert rss_trend_growth_pct(summary) == 0.0
