"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import SMALL_CONFIG, SMALL_SPEC, write_tickets
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


@pytest.fixture(scope="session")
def small_trained(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    """A two-label model with a form-field block, trained in about a second."""
    root = tmp_path_factory.mktemp("small")
    dataset = load_dataset(write_tickets(root / "tickets.jsonl"), SMALL_SPEC)
    return train_model(dataset, models_dir=root / "models", config=SMALL_CONFIG)


@pytest.fixture(scope="session")
def small_model_dir(small_trained: TrainingResult) -> Path:
    return small_trained.artifact_dir
