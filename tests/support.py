"""Generated closed tickets for tests that need a real model trained in a second."""

from __future__ import annotations

import json
import random
from pathlib import Path

from training.data import DataSpec
from training.model import ModelConfig

_WORDS = {
    "urgent": ["outage", "down", "data loss", "crash", "cannot start", "production"],
    "normal": ["slow", "error message", "configuration", "upgrade", "question"],
}


def write_tickets(path: Path, rows: int = 120, seed: int = 7) -> Path:
    """A JSONL export of generated closed tickets with two labels and one form field."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for i in range(rows):
            label = "urgent" if rng.random() < 0.4 else "normal"
            words = rng.sample(_WORDS[label], 2) + rng.sample(_WORDS["normal"], 1)
            record = {
                "subject": f"{words[0]} in cluster {i % 7}",
                "description": " ".join(words) + " please help",
                "priority": label,
                "product": rng.choice(["hdfs", "yarn"]) if label == "normal" else "hdfs",
                "team": rng.choice(["storage", "compute"]),
                "created_at": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            }
            handle.write(json.dumps(record) + "\n")
    return path


SMALL_SPEC = DataSpec(field_columns=("product",))
SMALL_CONFIG = ModelConfig(c_grid=(1.0, 10.0), min_band_support=5, min_df=1)
