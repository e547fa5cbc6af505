"""Training on exports whose windows are uneven: a rare class absent from validation, no
creation times at all."""

from __future__ import annotations

import csv
import random
import warnings
from pathlib import Path

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from tests.support import SMALL_CONFIG
from training.data import DataSpec, load_dataset
from training.model import fit_temperature
from training.train import train_model

_WORDS = {
    "urgent": ["outage", "down", "crash", "production", "data", "loss"],
    "normal": ["question", "configuration", "upgrade", "slow", "error"],
    "low": ["typo", "cosmetic", "documentation", "spelling", "wording"],
    "legal": ["licence", "compliance", "contract", "audit", "notice"],
}


def _export(path: Path, *, rare_first: int, times: bool, rows: int = 240) -> Path:
    """Generated closed tickets; the first ``rare_first`` rows are the rare class "legal"."""
    rng = random.Random(3)
    columns = ["subject", "description", "priority"] + (["created_at"] if times else [])
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for i in range(rows):
            label = "legal" if i < rare_first else rng.choice(["urgent", "normal", "low", "normal"])
            words = _WORDS[label]
            row = {
                "subject": " ".join(rng.sample(words, 3)),
                "description": " ".join(rng.choices(words, k=8)),
                "priority": label,
            }
            if times:
                row["created_at"] = f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00Z"
            writer.writerow(row)
    return path


def test_a_class_with_no_validation_rows_trains_and_is_reported(tmp_path: Path) -> None:
    data = load_dataset(_export(tmp_path / "t.csv", rare_first=11, times=True), DataSpec())
    said: list[str] = []
    result = train_model(
        data, models_dir=tmp_path / "models", config=SMALL_CONFIG, progress=said.append
    )
    assert "legal" in result.model.labels
    split = result.metadata["training_data"]["split"]
    assert split["classes_without_validation"] == {"priority": ["legal"]}
    assert "no validation rows for legal" in result.report["context"]["split"]
    assert any("no validation rows for 'legal'" in line for line in said)
    assert result.model.temperature > 0


def test_an_export_without_times_is_split_by_row_order_and_says_so(tmp_path: Path) -> None:
    data = load_dataset(_export(tmp_path / "t.csv", rare_first=0, times=False), DataSpec())
    said: list[str] = []
    result = train_model(
        data, models_dir=tmp_path / "models", config=SMALL_CONFIG, progress=said.append
    )
    facts = result.metadata["training_data"]
    assert facts["split"]["method"] == "row order"
    assert facts["first_created"] is None and facts["last_created"] is None
    assert result.split.test[-1].row == 240
    assert "row order" in result.report["context"]["split"]
    assert any("no time column" in line for line in said)
    report = (result.artifact_dir / "report" / "report.md").read_text()
    assert "the export has no time column" in report


def test_the_temperature_is_the_one_scikit_learn_fits() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    y = np.array(["a", "b", "c"])[
        (x[:, 0] + 0.8 * rng.normal(size=300) > 0).astype(int) + (x[:, 1] > 1)
    ]
    lr = LogisticRegression(C=10.0).fit(x[:200], y[:200])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        calibrated = CalibratedClassifierCV(FrozenEstimator(lr), method="temperature")
        calibrated.fit(x[200:], y[200:])
    expected = 1.0 / float(calibrated.calibrated_classifiers_[0].calibrators[0].beta_)
    found = fit_temperature(lr.decision_function(x[200:]), np.searchsorted(lr.classes_, y[200:]))
    assert abs(found - expected) < 1e-6 * expected
    assert abs(found - 1.0) > 0.01  # an over-confident model is actually cooled


def test_the_temperature_accepts_a_window_missing_a_class() -> None:
    logits = np.array([[3.0, 0.0, -1.0], [0.0, 2.5, -1.0], [2.0, 1.0, 0.0], [0.5, 3.0, 0.0]])
    found = fit_temperature(logits, np.array([0, 1, 1, 1]))
    assert np.isfinite(found) and found > 0


def test_an_empty_window_leaves_the_scale_alone() -> None:
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)) == 1.0
