"""The standard-library inference must give what the scikit-learn model gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core import load_enricher
from core.schema import Ticket
from training.train import TrainingResult


def _served(model_dir: Path, docs: list[dict]) -> list[dict[str, float]]:  # type: ignore[type-arg]
    enricher = load_enricher(model_dir)
    out = []
    for doc in docs:
        ticket = Ticket.model_construct(
            subject=doc["subject"],
            description=doc["description"],
            custom_fields={k: v for k, v in doc["custom_fields"].items() if v is not None},
        )
        out.append(enricher.predict(ticket)["priority"]["probabilities"])
    return out


@pytest.mark.parametrize("fixture", ["trained", "small_trained"])
def test_probabilities_agree_on_the_whole_test_window(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    trained: TrainingResult = request.getfixturevalue(fixture)
    docs = [e.doc for e in trained.split.test]
    expected = trained.model.predict_proba(docs)
    served = _served(trained.artifact_dir, docs)
    labels = trained.model.labels
    worst = max(
        abs(row[label] - float(expected[i, j]))
        for i, row in enumerate(served)
        for j, label in enumerate(labels)
    )
    assert len(served) == len(trained.split.test) > 0
    assert worst <= 1e-6, worst


def test_labels_and_bands_follow_the_probabilities(trained: TrainingResult) -> None:
    """The label is the largest probability times its decision weight and the band is the
    label's own, as training chose them; a ticket a rule raised shows the model's answer
    beside the rule's."""
    enricher = load_enricher(trained.artifact_dir)
    target = enricher.artifact.model["targets"]["priority"]
    weights = target["decision"]["weights"]
    class_bands = target["class_bands"]
    docs = [e.doc for e in trained.split.test[:100]]
    sklearn_labels = list(trained.model.pipeline.predict(docs))
    for doc, sklearn_label in zip(docs, sklearn_labels, strict=True):
        result = enricher.enrich(
            {"subject": doc["subject"] or "-", "description": doc["description"][:60000]}
        )["enrichment"]["priority"]
        own = result.get("model_prediction", result)
        probabilities = result["probabilities"]
        top = max(probabilities, key=lambda label: probabilities[label] * weights[label])
        assert own["label"] == top == sklearn_label
        assert own["confidence"] == pytest.approx(probabilities[top])
        assert sum(probabilities.values()) == pytest.approx(1.0)
        bands = class_bands[result["label"]]
        expected_band = (
            "high"
            if result["confidence"] >= bands["high"]
            else "medium"
            if result["confidence"] >= bands["medium"]
            else "low"
        )
        assert result["band"] == expected_band
        assert result["needs_review"] is (expected_band != "high")
        if "rules" in result:
            assert result["confidence"] == pytest.approx(probabilities[result["label"]])


def test_serving_imports_no_scikit_learn_scipy_numpy_or_pandas(model_dir: Path) -> None:
    code = (
        "import json, sys, core\n"
        f"e = core.load_enricher({str(model_dir)!r})\n"
        "r = e.enrich({'subject': 'NameNode down after upgrade', 'description': 'cluster is down'})\n"
        "heavy = sorted(m for m in ('sklearn', 'scipy', 'numpy', 'pandas', 'joblib') if m in sys.modules)\n"
        "print(json.dumps({'heavy': heavy, 'label': r['enrichment']['priority']['label']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["heavy"] == []
    assert result["label"] in ("low", "normal", "urgent")
