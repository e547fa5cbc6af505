"""Every enrichment field on the model trained from the vendored data, and switching them off."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core import load_enricher
from core.enricher import EnrichOptions
from core.errors import ArtifactError
from core.schema import Ticket
from core.text import word_ngrams
from training.train import TrainingResult

TICKET = {
    "subject": "NameNode fails to start after upgrade to 3.3",
    "description": "After the rolling upgrade the NameNode exits with an NPE in FSImage loading.",
}


@pytest.fixture(scope="module")
def enriched(model_dir: Path) -> dict:  # type: ignore[type-arg]
    return load_enricher(model_dir).enrich(TICKET)["enrichment"]


def test_secondary_target_has_its_own_probabilities_and_band(enriched: dict) -> None:  # type: ignore[type-arg]
    resolution = enriched["categories"]["resolution"]
    assert resolution["label"] in resolution["probabilities"]
    assert {"Fixed", "Duplicate", "Other"} <= set(resolution["probabilities"])
    assert sum(resolution["probabilities"].values()) == pytest.approx(1.0)
    assert resolution["band"] in ("high", "medium", "low")


def test_resolution_time_is_a_median_inside_nested_intervals(enriched: dict) -> None:  # type: ignore[type-arg]
    t = enriched["resolution_time"]
    low90, low50, high50, high90 = (
        t["interval_90"][0],
        t["interval_50"][0],
        t["interval_50"][1],
        t["interval_90"][1],
    )
    assert 0 <= low90 <= low50 <= t["hours"] <= high50 <= high90


def test_explanation_names_terms_of_the_ticket_that_pushed_the_priority(enriched: dict) -> None:  # type: ignore[type-arg]
    terms = set(word_ngrams(TICKET["subject"] + "\n" + TICKET["description"]))
    explanation = enriched["explanation"]
    assert 0 < len(explanation) <= 5
    weights = [e["weight"] for e in explanation]
    assert all(w > 0 for w in weights) and weights == sorted(weights, reverse=True)
    assert all(e["term"] in terms for e in explanation)


def test_tags_are_a_handful_of_the_tickets_own_terms(enriched: dict) -> None:  # type: ignore[type-arg]
    terms = set(word_ngrams(TICKET["subject"] + "\n" + TICKET["description"]))
    assert 1 <= len(enriched["tags"]) <= 5
    assert all(tag in terms and not any(c.isdigit() for c in tag) for tag in enriched["tags"])
    assert "to" not in enriched["tags"] and "after upgrade" not in enriched["tags"]


def test_a_closed_ticket_finds_itself_first_and_is_a_possible_duplicate(
    trained: TrainingResult,
) -> None:
    enricher = load_enricher(trained.artifact_dir)
    example = next(e for e in trained.split.fit if len(e.doc["description"]) > 200)
    result = enricher.enrich(
        {"subject": example.doc["subject"], "description": example.doc["description"][:60000]}
    )["enrichment"]
    similar = result["similar"]
    assert 1 <= len(similar) <= 5
    assert similar[0]["id"] == example.source_id
    assert similar[0]["score"] >= enricher.metadata["metrics"]["duplicates"]["threshold"]
    assert [s["score"] for s in similar] == sorted((s["score"] for s in similar), reverse=True)
    assert {"id", "subject", "priority", "resolution", "created", "score"} <= set(similar[0])
    assert result["possible_duplicate"] is True


def test_served_similarities_match_trainings_index(trained: TrainingResult) -> None:
    enricher = load_enricher(trained.artifact_dir)
    docs = [e.doc for e in trained.split.test[:40]]
    expected = trained.model.index.scores(trained.model.text_block(docs))  # type: ignore[union-attr]
    for row, doc in enumerate(docs):
        ticket = Ticket.model_construct(
            subject=doc["subject"], description=doc["description"], custom_fields={}
        )
        similar = enricher.predict(ticket)["similar"]
        top = np.argsort(-expected[row], kind="stable")[: len(similar)]
        assert [s["score"] for s in similar] == pytest.approx(
            expected[row][top].round(4).tolist(), abs=1e-4
        )


def test_secondary_targets_and_resolution_time_agree_with_scikit_learn(
    trained: TrainingResult,
) -> None:
    enricher = load_enricher(trained.artifact_dir)
    docs = [e.doc for e in trained.split.test]
    proba = trained.model.predict_proba(docs, "resolution")
    labels = trained.model.classifiers["resolution"].labels
    hours = trained.model.resolution.predict_hours(trained.model.features.transform(docs))  # type: ignore[union-attr]
    worst_p = worst_h = 0.0
    for i, doc in enumerate(docs):
        ticket = Ticket.model_construct(
            subject=doc["subject"], description=doc["description"], custom_fields={}
        )
        got = enricher.predict(ticket)
        probs = got["categories"]["resolution"]["probabilities"]
        worst_p = max(worst_p, *(abs(probs[label] - proba[i, j]) for j, label in enumerate(labels)))
        worst_h = max(
            worst_h, abs(got["resolution_time"]["hours"] - round(float(hours["0.5"][i]), 2))
        )
    assert worst_p <= 1e-6
    assert worst_h <= 0.01


def test_switched_off_fields_are_absent(model_dir: Path) -> None:
    off = EnrichOptions(
        categories=False,
        resolution_time=False,
        similar=False,
        sentiment=False,
        language=False,
        tags=False,
        explanation=False,
        redact=False,
    )
    enrichment = load_enricher(model_dir, options=off).enrich(TICKET)["enrichment"]
    assert set(enrichment) == {"priority", "needs_review", "model", "enriched_at"}


def test_the_index_is_read_only_when_similar_tickets_are_on(
    model_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "artifact"
    shutil.copytree(model_dir, copy)
    (copy / "index.json").unlink()
    load_enricher(copy, options=EnrichOptions(similar=False))
    with pytest.raises(ArtifactError, match="index.json"):
        load_enricher(copy)


def test_a_truncated_postings_file_is_refused(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "artifact"
    shutil.copytree(model_dir, copy)
    postings = copy / "index.bin"
    postings.write_bytes(postings.read_bytes()[:-8])
    load_enricher(copy, options=EnrichOptions(similar=False))
    with pytest.raises(ArtifactError, match=r"index\.bin does not match its checksum"):
        load_enricher(copy)


def test_form_fields_are_redacted_like_the_text(small_model_dir: Path) -> None:
    enricher = load_enricher(small_model_dir)
    out = enricher.enrich(
        {
            "subject": "Refund please",
            "custom_fields": {
                "product": "hdfs",
                "iban": "DE89 3704 0044 0532 0130 00",
                "callback": "call me at +44 20 7946 0958",
                "seats": 3,
            },
        }
    )
    fields = out["ticket"]["custom_fields"]
    assert "3704" not in fields["iban"] and "7946" not in fields["callback"]
    assert fields["product"] == "hdfs" and fields["seats"] == 3
    where = {r["field"] for r in out["enrichment"]["redactions"]}
    assert {"custom_fields.iban", "custom_fields.callback"} <= where


def test_no_tag_or_explanation_term_repeats_a_redacted_value(model_dir: Path) -> None:
    enricher = load_enricher(model_dir)
    ticket = {
        "subject": "Cluster crash after upgrade",
        "description": "Write to datanode.balancer@example.org or call 020 7946 0958; the "
        "NameNode crashes with OutOfMemoryError after the upgrade.",
    }
    redacted = enricher.enrich(ticket)["enrichment"]
    plain = load_enricher(model_dir, options=EnrichOptions(redact=False)).enrich(ticket)
    plain_terms = plain["enrichment"]["tags"] + [
        e["term"] for e in plain["enrichment"]["explanation"]
    ]
    terms = redacted["tags"] + [e["term"] for e in redacted["explanation"]]
    # The e-mail's words are terms the model knows: without redaction they are shown.
    assert "datanode" in plain_terms
    assert not any(word in term for term in terms for word in ("datanode", "balancer", "7946"))
    assert redacted["priority"] == plain["enrichment"]["priority"]
    # Terms that hold no redacted word stay.
    assert "namenode" in redacted["tags"]
