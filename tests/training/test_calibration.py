"""Calibration maps fitted on margins and applied with the artifact's apply_calibration."""

from __future__ import annotations

import numpy as np
import pytest

from models.artifact import apply_calibration
from training.calibration import choose_calibration, fit_calibration


def _data(n: int = 4000, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    margin = rng.normal(size=n) * 2
    y = (rng.random(n) < 1 / (1 + np.exp(-margin / scale))).astype(int)  # over-confident
    return margin, y


def test_sigmoid_recovers_platt_scale() -> None:
    margin, y = _data()
    cal = fit_calibration(margin, y, "sigmoid")
    assert cal["method"] == "sigmoid"
    assert cal["a"] == pytest.approx(0.5, abs=0.08)
    assert cal["b"] == pytest.approx(0.0, abs=0.1)


def test_isotonic_is_monotone_and_in_range() -> None:
    margin, y = _data()
    cal = fit_calibration(margin, y, "isotonic")
    p = apply_calibration(cal, np.sort(margin))
    assert np.all(np.diff(p) >= 0) and p.min() >= 0 and p.max() <= 1
    assert cal["x"] == sorted(cal["x"])


def test_choose_beats_raw_margin() -> None:
    margin, y = _data()
    cal, brier = choose_calibration(margin, y, groups=np.arange(len(y)))
    assert cal["method"] in ("isotonic", "sigmoid")
    assert min(brier["isotonic"], brier["sigmoid"]) < brier["none"]


def test_single_class_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        fit_calibration(np.array([0.1, 0.2]), np.array([1, 1]), "sigmoid")
    with pytest.raises(ValueError, match="unknown"):
        fit_calibration(np.array([0.1, 0.2]), np.array([0, 1]), "beta")
