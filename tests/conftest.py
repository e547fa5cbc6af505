"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data import PRESETS, load_dataset, vendored_data_path
from training.train import TrainingResult, train_model


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    """A real model trained once per test session on the vendored closed tickets."""
    models = tmp_path_factory.mktemp("models")
    dataset = load_dataset(vendored_data_path(), PRESETS["hadoop"])
    return train_model(dataset, models_dir=models)


@pytest.fixture(scope="session")
def model_dir(trained: TrainingResult) -> Path:
    """The artifact directory of the session's trained model (treat it as read-only)."""
    return trained.artifact_dir
