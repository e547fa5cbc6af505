"""The retrain job's state machine, the runner's one-at-a-time rule, the hot swap of the served
model, the corrections a retrain takes, and the reading of an uploaded export."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from adapters.local.pages import NotAllowed
from adapters.local.retrain_admin import (
    JobStateError,
    PromotionFollower,
    RetrainJob,
    RetrainRunner,
    _with_known_labels,
    corrections_since,
    swap_served_model,
)
from core import load_enricher
from core.errors import TicketEnrichError, TrainingDataError
from core.ports import Correction, StoredTicket
from core.registry import label_change
from tests.support import SMALL_CONFIG, SMALL_SPEC, wait_until, write_tickets
from tests.unit.fakes import FakeTicketStore
from tests.unit.test_outcomes import FakeFeedbackStore
from training.data import load_dataset, recognise_export
from training.retrain import own_test_figures, read_upload
from training.train import train_model

EXPORTS = Path(__file__).parents[2] / "corpus" / "exports"


def _job() -> RetrainJob:
    return RetrainJob("j1", {"kind": "upload", "name": "x.csv"})


def test_a_job_moves_forward_through_its_stages_and_ends_ready() -> None:
    job = _job()
    assert (job.status, job.stage) == ("running", "queued")
    for stage in ("reading", "training", "judging"):
        job.enter(stage)
        assert job.stage == stage
    job.read(42)
    job.note("judging on the newest 10 tickets")
    job.finish({"challenger": "v2"}, corrections=3)
    state = job.as_dict()
    assert (state["status"], state["stage"]) == ("ready", "done")
    assert state["tickets_read"] == 42 and state["corrections"] == 3
    assert state["progress"] == "judging on the newest 10 tickets"
    assert state["challenge"] == {"challenger": "v2"} and state["finished_at"] is not None


def test_a_stage_cannot_be_entered_again_or_skipped_back() -> None:
    job = _job()
    job.enter("training")
    with pytest.raises(JobStateError, match="past 'reading'"):
        job.enter("reading")
    with pytest.raises(JobStateError):
        job.enter("training")


def test_a_failed_job_keeps_its_message_and_can_do_nothing_more() -> None:
    job = _job()
    job.enter("reading")
    job.fail("zendesk: HTTP 401: check TICKET_ENRICH_HELPDESK_TOKEN")
    assert job.as_dict()["status"] == "failed"
    assert job.error == "zendesk: HTTP 401: check TICKET_ENRICH_HELPDESK_TOKEN"
    for step in (
        lambda: job.enter("training"),
        lambda: job.fail("again"),
        lambda: job.finish({}, 0),
        lambda: job.decide("promoted", "ann"),
    ):
        with pytest.raises(JobStateError, match="is failed"):
            step()


def test_only_a_ready_job_is_decided_and_only_once() -> None:
    job = _job()
    with pytest.raises(JobStateError, match="is running, not ready"):
        job.decide("promoted", "ann")
    job.finish({"challenger": "v2"}, 0)
    job.decide("discarded", "ann")
    assert job.status == "discarded" and job.decision is not None
    assert job.decision["by"] == "ann"
    with pytest.raises(JobStateError, match="is discarded"):
        job.decide("promoted", "bob")


def test_progress_keeps_the_newest_messages_only() -> None:
    job = _job()
    for n in range(250):
        job.note(f"step {n}")
    messages = job.as_dict()["messages"]
    assert len(messages) == 200 and messages[0] == "step 50" and messages[-1] == "step 249"


def test_the_runner_refuses_a_second_job_while_one_runs() -> None:
    runner = RetrainRunner()
    release = threading.Event()

    def slow(job: RetrainJob) -> tuple[dict[str, Any], int]:
        release.wait(10)
        return {"challenger": "v2"}, 0

    first = runner.claim({"kind": "shipped"})
    thread = runner.run(first, slow)
    with pytest.raises(NotAllowed) as refused:
        runner.claim({"kind": "shipped"})
    assert refused.value.status == 409
    release.set()
    thread.join(10)
    assert first.status == "ready"
    second = runner.claim({"kind": "shipped"})
    assert runner.latest is second and runner.get(second.id) is second
    with pytest.raises(NotAllowed) as gone:
        runner.get(first.id)
    assert gone.value.status == 404


def test_the_runner_fails_the_job_with_the_products_message_or_a_generic_one() -> None:
    runner = RetrainRunner()

    def refused(job: RetrainJob) -> tuple[dict[str, Any], int]:
        raise TicketEnrichError("rt: 12 closed tickets with a priority pulled")

    def broken(job: RetrainJob) -> tuple[dict[str, Any], int]:
        raise KeyError("boom")

    job = runner.claim({})
    runner.run(job, refused).join(10)
    assert job.status == "failed" and job.error == "rt: 12 closed tickets with a priority pulled"
    job = runner.claim({})
    runner.run(job, broken).join(10)
    assert job.status == "failed" and "KeyError" in str(job.error) and "boom" not in str(job.error)


def _ticket(ticket_id: str) -> StoredTicket:
    return StoredTicket(
        id=ticket_id,
        external_id=None,
        received_at="2026-12-01T10:00:00+00:00",
        ticket={"subject": f"Disk full {ticket_id}", "description": "x"},
        enrichment={},
    )


def _correction(ticket_id: str, at: str, target: str = "priority") -> Correction:
    return Correction(ticket_id, target, "urgent", "normal", "ann", "v1", at)


def test_corrections_since_the_last_training_are_taken_with_their_tickets() -> None:
    store = FakeTicketStore()
    for ticket_id in ("old", "new", "category"):
        store.add(_ticket(ticket_id))
    feedback = FakeFeedbackStore()
    feedback.add_correction(_correction("old", "2026-12-01T09:00:00.000+00:00"))
    feedback.add_correction(_correction("new", "2026-12-02T09:00:00.000+00:00"))
    feedback.add_correction(_correction("gone", "2026-12-02T09:00:00.000+00:00"))
    feedback.add_correction(_correction("category", "2026-12-02T09:00:00+00:00", "component"))
    taken = corrections_since(store, feedback, "2026-12-01T12:00:00+00:00")
    assert [(t.id, c.ticket_id) for t, c in taken] == [("new", "new")]
    everything = corrections_since(store, feedback, None)
    assert sorted(t.id for t, _ in everything) == ["new", "old"]


def test_corrections_with_a_label_the_new_data_lacks_are_left_out() -> None:
    kept, gone = _ticket("kept"), _ticket("gone")
    high = Correction("gone", "priority", "high", "normal", "ann", "v1", "2026-12-02T09:00:00")
    pairs = [(kept, _correction("kept", "2026-12-02T09:00:00")), (gone, high)]
    taken, left_out = _with_known_labels(pairs, ["low", "normal", "urgent"])
    assert [t.id for t, _ in taken] == ["kept"]
    assert [c.label for _, c in left_out] == ["high"]
    assert _with_known_labels(pairs, ["high", "urgent"]) == (pairs, [])


@pytest.mark.parametrize(
    ("champion", "challenger", "added", "removed"),
    [
        (["low", "normal", "urgent"], ["high", "low", "normal", "urgent"], ["high"], []),
        (["high", "low", "normal", "urgent"], ["low", "normal", "urgent"], [], ["high"]),
        (["normal", "urgent"], ["critical", "normal"], ["critical"], ["urgent"]),
        (["normal", "urgent"], ["normal", "urgent"], [], []),
    ],
)
def test_the_label_change_lists_what_a_challenger_adds_and_removes(
    champion: list[str], challenger: list[str], added: list[str], removed: list[str]
) -> None:
    change = label_change(champion, challenger)
    assert change == {
        "champion": champion,
        "challenger": challenger,
        "added": added,
        "removed": removed,
    }


def test_a_models_own_test_figures_are_its_reports(small_model_dir: Path) -> None:
    enricher = load_enricher(small_model_dir)
    figures = own_test_figures(small_model_dir, enricher.metadata)
    report = json.loads((small_model_dir / "report" / "metrics.json").read_text())["model"]
    assert figures["rows"] == report["rows"] > 0
    assert figures["macro_f1"] == report["macro_f1"]
    assert figures["per_class"] == report["per_class"]
    assert set(figures["per_class"]) == set(enricher.metadata["labels"])
    assert figures["auto_apply"] == {
        "share": report["auto_apply"]["share"],
        "precision": report["auto_apply"]["precision"],
    }
    assert figures["trained_until"] == enricher.metadata["training_data"]["last_created"]


def test_a_swapped_enricher_serves_the_new_model_and_keeps_its_listeners(
    small_model_dir: Path, tmp_path: Path
) -> None:
    served = load_enricher(small_model_dir)
    seen: list[str] = []
    served.add_listener(lambda enrichment, _s: seen.append(enrichment["model"]["version"]))
    dataset = load_dataset(write_tickets(tmp_path / "t.jsonl", rows=140, seed=3), SMALL_SPEC)
    other = train_model(dataset, out_dir=tmp_path / "other", config=SMALL_CONFIG)
    new = load_enricher(other.artifact_dir)
    old_version = served.model_version
    assert new.model_version != old_version
    served.enrich({"subject": "Cluster down", "description": "outage"})

    class Rules:
        """The rules an admin edits while serving: asked once per ticket."""

        asked = 0

        def current(self) -> None:
            self.asked += 1

    edited = Rules()
    served.rules_source = edited  # type: ignore[assignment]
    swap_served_model(served, new)
    answer = served.enrich({"subject": "Cluster down", "description": "outage"})
    assert answer["enrichment"]["model"]["version"] == new.model_version
    assert served.model_version == new.model_version
    assert served.metadata["version"] == new.model_version
    assert served.artifact.path == other.artifact_dir
    assert seen == [old_version, new.model_version]
    assert edited.asked == 1  # the edited rules stay in force for the new model


def test_an_upload_is_written_with_only_the_columns_read_and_its_text_redacted(
    tmp_path: Path,
) -> None:
    raw = (EXPORTS / "zendesk.csv").read_text()
    header, first, *rest = raw.splitlines()
    columns = header.split(",")
    values = first.split(",")
    values[columns.index("Subject")] = "Call +44 20 7946 0958 or mail bo@example.org"
    edited = "\n".join([header, ",".join(values), *rest]) + "\n"
    name, dataset = read_upload(edited.encode(), "tickets.csv", tmp_path)
    assert name == "zendesk-csv"
    assert [p.name for p in tmp_path.iterdir()] == ["export.jsonl"]
    rows = [json.loads(line) for line in (tmp_path / "export.jsonl").read_text().splitlines()]
    assert set(rows[0]) <= {"Id", "Subject", "Priority", "Status", "Created at", "Solved at"}
    assert rows[0]["Subject"] == "Call [PHONE] or mail [EMAIL]"
    assert any(e.doc["subject"] == "Call [PHONE] or mail [EMAIL]" for e in dataset.examples)
    direct = load_dataset(EXPORTS / "zendesk.csv", recognise_export(EXPORTS / "zendesk.csv")[1])
    assert len(dataset.examples) == len(direct.examples)
    assert [e.label for e in dataset.examples] == [e.label for e in direct.examples]


@pytest.mark.parametrize("sample", ["zendesk.json", "freshdesk.csv", "jira.csv", "rt.tsv"])
def test_every_sample_export_reads_as_its_preset_after_redaction(
    sample: str, tmp_path: Path
) -> None:
    name, dataset = read_upload((EXPORTS / sample).read_bytes(), sample, tmp_path)
    expected, spec = recognise_export(EXPORTS / sample)
    assert name == expected is not None
    direct = load_dataset(EXPORTS / sample, spec)
    assert [e.label for e in dataset.examples] == [e.label for e in direct.examples]
    assert dataset.unlabelled == direct.unlabelled


def test_an_unknown_export_names_its_columns(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="'Name', 'Colour'"):
        read_upload(b"Name,Colour\nann,red\n", "people.csv", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_runners_sharing_a_state_folder_run_one_job_and_read_the_same_one(
    tmp_path: Path,
) -> None:
    # Two runners on one folder: two worker processes of one service.
    first, second = RetrainRunner(tmp_path), RetrainRunner(tmp_path)
    release = threading.Event()

    def slow(job: RetrainJob) -> tuple[dict[str, Any], int]:
        job.enter("reading")
        job.read(7)
        release.wait(10)
        return {"challenger": "v2"}, 1

    job = first.claim({"kind": "shipped"})
    thread = first.run(job, slow)
    wait_until(lambda: job.tickets_read == 7, "the job to read")
    with pytest.raises(NotAllowed) as refused:
        second.claim({"kind": "shipped"})
    assert refused.value.status == 409
    seen = second.get(job.id)
    assert (seen.status, seen.stage, seen.tickets_read) == ("running", "reading", 7)
    release.set()
    thread.join(10)
    latest = second.latest
    assert latest is not None and latest.id == job.id and latest.status == "ready"
    latest.decide("promoted", "ann")
    assert first.get(job.id).status == "promoted"  # decided on the other, read from the folder
    assert second.claim({"kind": "shipped"}).id != job.id  # the run lock was released
    for bad in ("../latest", "nope"):
        with pytest.raises(NotAllowed):
            second.get(bad)


def test_a_job_left_running_by_a_stopped_process_reads_as_failed(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    stale = RetrainJob("0123456789ab", {"kind": "shipped"}).as_dict()
    (jobs / "0123456789ab.json").write_text(json.dumps(stale))
    job = RetrainRunner(tmp_path).get("0123456789ab")
    assert job.status == "failed" and "stopped" in str(job.error)


def test_a_promotion_taken_by_another_worker_is_followed_and_an_older_one_is_not(
    small_model_dir: Path, tmp_path: Path
) -> None:
    dataset = load_dataset(write_tickets(tmp_path / "t.jsonl", rows=140, seed=5), SMALL_SPEC)
    other = train_model(dataset, out_dir=tmp_path / "other", config=SMALL_CONFIG)
    marker = tmp_path / "serving.json"
    before = PromotionFollower(load_enricher(small_model_dir), marker)
    PromotionFollower(load_enricher(small_model_dir), marker).promoted("old", tmp_path / "none")
    late = PromotionFollower(load_enricher(small_model_dir), marker)
    late.poll()  # the promotion came before this worker started: nothing to follow
    assert late.enricher.model_version != "old" and not late._loading
    promoting = PromotionFollower(load_enricher(small_model_dir), marker)
    promoting.promoted(other.metadata["version"], other.artifact_dir)
    for follower in (before, late):
        follower.poll()
        wait_until(
            lambda f=follower: f.enricher.model_version == other.metadata["version"],
            "the promoted model to be swapped in",
        )
        answer = follower.enricher.enrich({"subject": "Cluster down", "description": "outage"})
        assert answer["enrichment"]["model"]["version"] == other.metadata["version"]


def test_training_in_its_own_process_reports_progress_and_its_failure(
    small_model_dir: Path, tmp_path: Path
) -> None:
    from adapters.local.registry import DirectoryModelRegistry
    from training.retrain import ChallengeFailed, challenge_in_subprocess

    dataset = load_dataset(write_tickets(tmp_path / "t.jsonl", rows=40, seed=4), SMALL_SPEC)
    registry = DirectoryModelRegistry(tmp_path / "registry")
    # A product error keeps its message.
    with pytest.raises(ChallengeFailed, match="no-such-artifact"):
        challenge_in_subprocess(
            dataset, registry, tmp_path / "no-such-artifact", work_dir=tmp_path / "w1"
        )
    # Anything else is named by its class, after the progress made until then.
    said: list[str] = []
    with pytest.raises(ChallengeFailed, match="training failed unexpectedly: AttributeError"):
        challenge_in_subprocess(
            dataset,
            registry,
            small_model_dir,
            work_dir=tmp_path / "w2",
            config=cast(Any, "not a model configuration"),
            progress=said.append,
        )
    assert said[0] == "0 corrections added to 40 closed tickets"
