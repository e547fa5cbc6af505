"""Retraining from the agent UI: the model card of the served model, a retrain job in the
background (from the helpdesk the service pushes to, an uploaded export or the shipped one, with
the agents' corrections since the last training), the challenger beside the champion on the same
test window, and promotion through the model registry with a hot swap of the served model.

The endpoints translate; the training, judging and reading of exports are in
`training.retrain`, imported when a job runs (so the service starts without scikit-learn), and
the challenger trains in a process of its own. Job state and promotions are shared through
files beside the jobs, so every worker process of the service sees the same ones.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime.

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.local.auth import Principal
from adapters.local.body import read_body
from adapters.local.pages import NotAllowed
from core.enricher import Enricher, load_enricher
from core.errors import TicketEnrichError, TicketNotFound, TicketTooLarge
from core.ports import Correction, FeedbackStore, StoredTicket, TicketStore
from core.registry import ModelRegistry, label_change
from core.settings import Settings

_log = logging.getLogger(__name__)

# The upload reads its own body within this limit; every other body stays within the form limit.
UPLOAD_PATH = "/admin/retrain/upload"
UPLOAD_BYTES_MAX = 32 * 1024 * 1024
UPLOAD_TYPES = (".csv", ".tsv", ".json", ".jsonl")
PULLABLE = ("zendesk", "freshdesk", "jira", "rt")
_MESSAGES_KEPT = 200
_CORRECTIONS_MAX = 1_000_000

# A job moves forward through its stages while running, then ends failed or ready; a ready job's
# challenger is promoted or discarded by an admin.
STAGES = ("queued", "reading", "training", "judging", "done")
STATUSES = ("running", "failed", "ready", "promoted", "discarded")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class JobStateError(TicketEnrichError):
    """A retrain job was asked for a step its state does not allow."""


class RetrainJob:
    """One retrain: its stage, what it read, its progress messages, and its end (an error, or a
    challenger judged against the champion and then promoted or discarded). Thread-safe; with
    ``save``, every change is handed to it (the runner writes it where every worker reads it)."""

    def __init__(
        self,
        job_id: str,
        source: dict[str, Any],
        save: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.id = job_id
        self.source = source
        self.status = "running"
        self.stage = "queued"
        self.started_at = _now()
        self.finished_at: str | None = None
        self.tickets_read = 0
        self.corrections = 0
        self.messages: list[str] = []
        self.error: str | None = None
        self.challenge: dict[str, Any] | None = None
        self.decision: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._save = save

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], save: Callable[[dict[str, Any]], None] | None = None
    ) -> "RetrainJob":
        """A job as `as_dict` wrote it."""
        job = cls(str(data["id"]), dict(data.get("source") or {}), save)
        job.status, job.stage = str(data["status"]), str(data["stage"])
        job.started_at, job.finished_at = str(data["started_at"]), data.get("finished_at")
        job.tickets_read, job.corrections = int(data["tickets_read"]), int(data["corrections"])
        job.messages = [str(m) for m in data.get("messages") or []]
        job.error, job.challenge, job.decision = (
            data.get("error"),
            data.get("challenge"),
            data.get("decision"),
        )
        return job

    def enter(self, stage: str) -> None:
        """Move forward to ``stage`` (never back) while running."""
        with self._lock:
            self._require("running", f"enter stage {stage!r}")
            if STAGES.index(stage) <= STAGES.index(self.stage):
                raise JobStateError(f"job {self.id} is at {self.stage!r}, past {stage!r}")
            self.stage = stage
            self._changed()

    def read(self, tickets: int) -> None:
        """Record how many tickets the job has read so far."""
        with self._lock:
            self.tickets_read = tickets
            self._changed()

    def note(self, message: str) -> None:
        """Keep a progress message (the newest `_MESSAGES_KEPT`)."""
        with self._lock:
            self.messages = [*self.messages[-(_MESSAGES_KEPT - 1) :], message]
            self._changed()

    def fail(self, message: str) -> None:
        """End a running job with an error."""
        with self._lock:
            self._require("running", "fail")
            self.status, self.error, self.finished_at = "failed", message, _now()
            self._changed()

    def finish(self, challenge: dict[str, Any], corrections: int) -> None:
        """End a running job with its judged challenger, which now awaits an admin."""
        with self._lock:
            self._require("running", "finish")
            self.status, self.stage, self.finished_at = "ready", "done", _now()
            self.challenge, self.corrections = challenge, corrections
            self._changed()

    def decide(
        self,
        outcome: Literal["promoted", "discarded"],
        who: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record the admin's decision on a ready job's challenger (with ``details``, such as
        the label change an admin accepted)."""
        with self._lock:
            self._require("ready", f"be {outcome}")
            self.status = outcome
            self.decision = {"outcome": outcome, "by": who, "at": _now(), **(details or {})}
            self._changed()

    def _require(self, status: str, doing: str) -> None:
        if self.status != status:
            raise JobStateError(f"job {self.id} is {self.status}, not {status}: cannot {doing}")

    def _changed(self) -> None:
        if self._save is not None:
            self._save(self._state())

    def as_dict(self) -> dict[str, Any]:
        """The job as the page polls it."""
        with self._lock:
            return self._state()

    def _state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "status": self.status,
            "stage": self.stage,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "tickets_read": self.tickets_read,
            "corrections": self.corrections,
            "progress": self.messages[-1] if self.messages else None,
            "messages": list(self.messages),
            "error": self.error,
            "challenge": self.challenge,
            "decision": self.decision,
        }


_JOB_ID = re.compile(r"[0-9a-f]{12}")


def _write_json(path: Path, data: Any) -> None:
    """Replace a JSON file atomically: a reader sees the old or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(scratch, path)


class RetrainRunner:
    """Runs one retrain job at a time in a background thread and remembers the latest job.

    With a ``state_dir`` (the service's), one at a time holds across worker processes (a job
    holds an exclusive lock on a file there while it runs) and every change of a job is written
    there, so whichever worker a poll or a decision reaches reads the same job; without one, the
    runner keeps its jobs in memory (one process)."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._latest: RetrainJob | None = None
        self._live: dict[str, RetrainJob] = {}  # jobs running in this process
        self._held: dict[str, int] = {}  # their lock files' descriptors
        self.state_dir = state_dir

    def _job_path(self, job_id: str) -> Path:
        assert self.state_dir is not None
        return self.state_dir / "jobs" / f"{job_id}.json"

    def _saver(self, job_id: str) -> Callable[[dict[str, Any]], None] | None:
        if self.state_dir is None:
            return None
        path = self._job_path(job_id)
        return lambda state: _write_json(path, state)

    def _try_lock(self) -> int | None:
        """The descriptor of the run lock, held; None when another job holds it."""
        assert self.state_dir is not None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / ".running.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _running_elsewhere(self) -> bool:
        if self.state_dir is None:
            return False
        fd = self._try_lock()
        if fd is None:
            return True
        os.close(fd)  # closing releases it
        return False

    @property
    def latest(self) -> RetrainJob | None:
        """The job started last, running or not."""
        if self.state_dir is None:
            return self._latest
        try:
            latest_id = str(json.loads((self.state_dir / "latest.json").read_text())["id"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        try:
            return self.get(latest_id)
        except NotAllowed:
            return None

    def get(self, job_id: str) -> RetrainJob:
        """A job by its id: the latest one, or with a ``state_dir`` any that was written."""
        live = self._live.get(job_id) or (
            self._latest if self._latest is not None and self._latest.id == job_id else None
        )
        if live is not None and (self.state_dir is None or live.status == "running"):
            return live
        if self.state_dir is None or not _JOB_ID.fullmatch(job_id):
            raise NotAllowed(404, "job_not_found", f"no retrain job {job_id!r}")
        try:
            data = json.loads(self._job_path(job_id).read_text())
        except (FileNotFoundError, ValueError):
            raise NotAllowed(404, "job_not_found", f"no retrain job {job_id!r}") from None
        job = RetrainJob.from_dict(data, self._saver(job_id))
        if job.status == "running" and not self._running_elsewhere():
            # Nobody holds the run lock: the process that ran it stopped before it ended.
            job.fail("the service stopped while this retrain ran; start it again")
        return job

    def check_idle(self) -> None:
        """Refuse (409) while a job runs, in this process or another of the service."""
        latest = self._latest
        if latest is not None and latest.status == "running":
            raise NotAllowed(
                409, "retrain_running", f"retrain job {latest.id} is still running; wait for it"
            )
        if self._running_elsewhere():
            raise NotAllowed(
                409, "retrain_running", "a retrain is still running in the service; wait for it"
            )

    def claim(self, source: dict[str, Any]) -> RetrainJob:
        """A new job, unless one is running (409)."""
        with self._lock:
            self.check_idle()
            job_id = uuid.uuid4().hex[:12]
            if self.state_dir is not None:
                fd = self._try_lock()
                if fd is None:
                    raise NotAllowed(
                        409, "retrain_running", "a retrain is still running in the service"
                    )
                self._held[job_id] = fd
            job = RetrainJob(job_id, source, self._saver(job_id))
            job.note("queued")
            if self.state_dir is not None:
                _write_json(self.state_dir / "latest.json", {"id": job_id})
            self._latest = job
            self._live[job_id] = job
            return job

    def run(
        self, job: RetrainJob, work: Callable[[RetrainJob], tuple[dict[str, Any], int]]
    ) -> threading.Thread:
        """Run ``work`` for a claimed job in a daemon thread; its errors fail the job."""

        def target() -> None:
            try:
                challenge, corrections = work(job)
            except TicketEnrichError as exc:
                _log.info("retrain failed", extra={"job": job.id, "error": str(exc)})
                job.fail(str(exc))
            except Exception as exc:
                _log.exception("retrain failed unexpectedly", extra={"job": job.id})
                job.fail(f"the retrain failed unexpectedly ({type(exc).__name__}); see the log")
            else:
                job.finish(challenge, corrections)
                _log.info("retrain ready", extra={"job": job.id})
            finally:
                self._live.pop(job.id, None)
                fd = self._held.pop(job.id, None)
                if fd is not None:
                    os.close(fd)

        thread = threading.Thread(target=target, name=f"retrain-{job.id}", daemon=True)
        thread.start()
        return thread


# What the served enricher's callers reach: its methods, and the facts about its artifact.
_SWAPPED_METHODS = ("parse", "predict", "enrich", "self_check", "add_listener")
_SWAPPED_FACTS = ("artifact", "metadata", "model_name", "model_version", "rules", "limits")


def swap_served_model(served: Enricher, new: Enricher) -> None:
    """Make the enricher every route holds serve ``new``'s model from now on, without a restart.

    The routes keep the `Enricher` they were built with, so it is changed in place: its methods
    become ``new``'s (a ticket is predicted wholly by one model: an enrichment under way keeps the
    model it began with), its facts ``new``'s, in one dictionary update; listeners (metrics) carry
    over. The routes read everything that depends on the model (the labels feedback accepts, the
    dashboard's priority order and filters, `/healthz`'s model, the report and the model card)
    from the served enricher per request, so a model with other priority labels can be swapped
    in too."""
    new._listeners = served._listeners  # the metrics observe whichever model serves
    # Rules an admin edits while serving (core/rules_source.py) stay in force; the source reads
    # the served artifact, which the update below changes, and so follows the promotion.
    new.rules_source = served.rules_source
    update: dict[str, Any] = {name: getattr(new, name) for name in _SWAPPED_METHODS}
    update.update({name: getattr(new, name) for name in _SWAPPED_FACTS})
    update["_custom_field_names"] = new.custom_fields
    vars(served).update(update)


class PromotionFollower:
    """Keeps this process's served model on the one an admin promoted, whichever worker process
    of the service took the promotion: the promoting worker writes ``serving.json`` beside the
    jobs, and every worker, before each request, looks at its time (one stat) and loads and
    swaps in a newer promotion in the background (its requests keep the current model until
    then). Promotions from before this process started are not followed: a restarted service
    serves what its settings name (``models_dir/latest``, which a promotion moves)."""

    def __init__(self, enricher: Enricher, path: Path) -> None:
        self.enricher = enricher
        self.path = path
        self._seen = time.time_ns()
        self._lock = threading.Lock()
        self._loading = False

    def promoted(self, version: str, artifact_dir: Path) -> None:
        """Tell the other workers: ``version`` (at ``artifact_dir``) serves now."""
        _write_json(self.path, {"version": version, "path": str(artifact_dir)})
        with self._lock:
            self._seen = max(self._seen, self.path.stat().st_mtime_ns)

    def poll(self) -> None:
        """Start swapping in a promotion newer than the last one seen, if there is one."""
        try:
            changed = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if changed <= self._seen:
            return
        with self._lock:
            if self._loading or changed <= self._seen:
                return
            self._loading, self._seen = True, changed
        threading.Thread(target=self._load, name="follow-promotion", daemon=True).start()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            if data["version"] != self.enricher.model_version:
                served = self.enricher
                new = load_enricher(data["path"], limits=served.limits, options=served.options)
                swap_served_model(served, new)
                _log.info("serving a promoted model", extra={"version": new.model_version})
        except Exception:
            # The next promotion is followed again; until then this worker keeps its model.
            _log.exception("cannot follow a promotion", extra={"path": str(self.path)})
        finally:
            with self._lock:
                self._loading = False


class _FollowPromotions:
    """ASGI middleware: `PromotionFollower.poll` before each HTTP request."""

    def __init__(self, app: ASGIApp, follower: PromotionFollower) -> None:
        self.app = app
        self.follower = follower

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.follower.poll()
        await self.app(scope, receive, send)


class PromoteBody(BaseModel):
    """An admin's promotion; a challenger with other priority labels needs their consent."""

    model_config = {"extra": "forbid"}

    accept_new_labels: bool = False


class StartBody(BaseModel):
    """Where a retrain reads its closed tickets (an upload has its own endpoint)."""

    model_config = {"extra": "forbid"}

    source: Literal["helpdesk", "shipped"]


def _bad_export(message: str) -> NotAllowed:
    return NotAllowed(422, "invalid_export", message)


def _multipart_file(body: bytes, content_type: str) -> tuple[str, bytes]:
    """The file part (``file``) of a multipart/form-data body: its name and bytes."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise _bad_export("send the export as multipart/form-data, in a part named file")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise _bad_export("the multipart body cannot be read")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") != "file":
            continue
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        if not filename or not isinstance(payload, bytes):
            raise _bad_export("the part named file has no file name")
        return Path(filename).name, payload
    raise _bad_export("the file is missing: no part named file")


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def corrections_since(
    store: TicketStore, feedback: FeedbackStore, since: str | None
) -> list[tuple[StoredTicket, Correction]]:
    """The agents' latest priority corrections made after ``since`` (the champion's training
    time), each with its stored ticket (already redacted at intake)."""
    after = _since(since)
    pairs = []
    for correction in feedback.corrections(limit=_CORRECTIONS_MAX):
        if correction.target != "priority":
            continue
        made = _since(correction.corrected_at)
        if after is not None and made is not None and made <= after:
            continue
        try:
            pairs.append((store.get(correction.ticket_id), correction))
        except TicketNotFound:
            continue
    return pairs


def _with_known_labels(
    pairs: list[tuple[StoredTicket, Correction]], labels: list[str]
) -> tuple[list[tuple[StoredTicket, Correction]], list[tuple[StoredTicket, Correction]]]:
    """The corrections whose label the new data has, and the others.

    The new data says which priority labels the team uses now: a correction with another one
    (made while a model with other labels served, e.g. one a promotion has since removed) would
    bring a class into the challenger from a handful of tickets. It stays in the feedback
    history, but is left out of training."""
    known = set(labels)
    kept = [(ticket, c) for ticket, c in pairs if c.label in known]
    return kept, [(ticket, c) for ticket, c in pairs if c.label not in known]


def _listed(labels: list[str]) -> str:
    return ", ".join(labels) or "none"


def _test_figures(report: dict[str, Any] | None, metadata: dict[str, Any]) -> dict[str, Any]:
    """The served model's figures on its test window: the report's when there is one."""
    test = dict((report or {}).get("model") or metadata.get("metrics", {}).get("test") or {})
    auto = test.get("auto_apply") or {}
    return {
        "rows": test.get("rows"),
        "macro_f1": test.get("macro_f1"),
        "accuracy": test.get("accuracy"),
        "urgent_recall": test.get("urgent_recall"),
        "auto_apply": {"share": auto.get("share"), "precision": auto.get("precision")},
        "per_class": test.get("per_class"),
        "confusion_matrix": test.get("confusion_matrix"),
    }


def build_retrain_admin(
    enricher: Enricher,
    store: TicketStore,
    settings: Settings,
    *,
    reader: Any,
    registry: ModelRegistry | None = None,
    runner: RetrainRunner | None = None,
    follower: PromotionFollower | None = None,
    config: Any = None,
) -> APIRouter:
    """The model card, retrain, job and promotion endpoints: reading them for every agent and
    the API key; starting a retrain, uploading and deciding for admins (`Settings.admins`) and
    the API key.

    ``reader`` is the app's dependency naming the agent or machine client of a request;
    ``registry`` defaults to the settings' local registry; ``config`` (a
    `training.model.ModelConfig`) to the product's training settings.
    """
    from adapters.local.registry import DirectoryModelRegistry

    models = (
        registry if registry is not None else DirectoryModelRegistry(settings.model_registry_dir)
    )
    jobs_dir = settings.models_dir / "retrain"
    jobs = runner if runner is not None else RetrainRunner(jobs_dir)
    follow = (
        follower if follower is not None else PromotionFollower(enricher, jobs_dir / "serving.json")
    )
    feedback = store if isinstance(store, FeedbackStore) else None
    router = APIRouter(prefix="/admin", tags=["retrain"])
    Reader = Annotated[Principal, Depends(reader)]
    allowed = frozenset(settings.admins)

    def may_retrain(who: Principal) -> bool:
        return who.kind == "api" or who.name in allowed

    async def admin(who: Reader) -> Principal:
        if may_retrain(who):
            return who
        raise NotAllowed(403, "not_admin", f"{who.name} is not an admin; an admin retrains")

    Admin = Annotated[Principal, Depends(admin)]
    # Decisions happen one at a time, in this process and across the service's workers.
    promoting = threading.Lock()

    @contextmanager
    def deciding(job_id: str) -> Iterator[RetrainJob]:
        """The job, read afresh under the decision lock (another worker may have decided)."""
        jobs_dir.mkdir(parents=True, exist_ok=True)
        with promoting, open(jobs_dir / ".decide.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            job = jobs.get(job_id)
            if job.status != "ready" or job.challenge is None:
                raise NotAllowed(409, "not_ready", f"job {job.id} is {job.status}, not ready")
            yield job

    def helpdesk_name() -> str | None:
        return settings.helpdesk if settings.helpdesk in PULLABLE else None

    def card() -> dict[str, Any]:
        metadata = enricher.metadata
        path = enricher.artifact.path / "report" / "metrics.json"
        report = json.loads(path.read_text()) if path.is_file() else None
        try:
            entry = models.get(enricher.model_version).as_dict()
        except TicketEnrichError:
            entry = None
        data = metadata.get("training_data") or {}
        return {
            "model": {
                "name": enricher.model_name,
                "version": enricher.model_version,
                "created_at": metadata.get("created_at"),
                "labels": list(metadata.get("labels", [])),
            },
            "data": {
                "file": data.get("file"),
                "source": ((entry or {}).get("decision") or {}).get("source"),
                "rows": data.get("rows"),
                "first_created": data.get("first_created"),
                "last_created": data.get("last_created"),
                "rows_by_label": data.get("rows_by_label"),
                "split": data.get("split"),
            },
            "test": _test_figures(report, metadata),
            "registry": entry,
        }

    def last_read(version: str) -> str | None:
        """When the serving model's data last took the corrections: when its retrain read them
        (a correction made while it trained is taken next time), else when it was trained."""
        try:
            decision = models.get(version).decision or {}
        except TicketEnrichError:
            decision = {}
        read_at = (decision.get("data") or {}).get("corrections_read_at")
        return str(read_at) if read_at else enricher.metadata.get("created_at")

    def work_for(
        load: Callable[[RetrainJob], Any],
    ) -> Callable[[RetrainJob], tuple[dict[str, Any], int]]:
        """A job's work: read the tickets with ``load``, add the corrections, train and judge."""

        def work(job: RetrainJob) -> tuple[dict[str, Any], int]:
            from training.retrain import challenge_in_subprocess, corrections_as_examples

            job.enter("reading")
            dataset = load(job)
            # A pull counted every ticket it read, those left out for want of a priority too.
            job.read(max(job.tickets_read, len(dataset.examples) + dataset.unlabelled))
            serving = enricher.artifact.path
            read_at = datetime.now(UTC).isoformat(timespec="milliseconds")
            pairs = (
                corrections_since(store, feedback, last_read(enricher.model_version))
                if feedback is not None
                else []
            )
            known = sorted({example.label for example in dataset.examples})
            pairs, left_out = _with_known_labels(pairs, known)
            job.note(f"{len(pairs)} agents' corrections since the serving model was trained")
            if left_out:
                job.note(
                    f"{len(left_out)} corrections left out: their labels "
                    f"({', '.join(sorted({c.label for _t, c in left_out}))}) are not among the "
                    f"new data's ({', '.join(known)})"
                )
            job.enter("training")

            def say(message: str) -> None:
                if message.startswith("judging"):
                    job.enter("judging")
                job.note(message)

            work_dir = jobs_dir / job.id / "challenger"
            # In a process of its own: training would otherwise take the interpreter lock from
            # the requests this process serves meanwhile.
            challenge = challenge_in_subprocess(
                dataset,
                models,
                serving,
                work_dir=work_dir,
                corrections=corrections_as_examples(pairs),
                tolerance=settings.promotion_tolerance,
                config=config,
                progress=say,
            )
            # The registry keeps its own copy; the job's is scratch.
            shutil.rmtree(work_dir, ignore_errors=True)
            result = challenge.as_dict()
            result["data"] = {
                "rows": len(dataset.examples),
                "unlabelled": dataset.unlabelled,
                "corrections": len(pairs),
                "corrections_read_at": read_at,
                "first_created": _iso(dataset.examples[0].created),
                "last_created": _iso(dataset.examples[-1].created),
            }
            models.set_stage(
                challenge.challenger.version, "candidate", {**result, "source": job.source}
            )
            return result, len(pairs)

        return work

    def pulled(job: RetrainJob) -> Any:
        from adapters.helpdesk.closed import closed_reader
        from adapters.helpdesk.factory import helpdesk_from_settings
        from adapters.helpdesk.pull import pull_closed_tickets
        from training.data import MIN_ROWS, PRESETS, load_dataset

        name = str(job.source["helpdesk"])
        client = helpdesk_from_settings(settings)
        seen = 0

        class Counting:
            """The connector's reader, counting the tickets of every page for the job."""

            def __init__(self, inner: Any) -> None:
                self.inner = inner
                self.system = inner.system
                self.mapping = inner.mapping

            def page(self, cursor: str | None) -> Any:
                nonlocal seen
                found = self.inner.page(cursor)
                seen += len(found.tickets)
                job.read(seen)
                return found

            def label(self, priority: Any) -> str | None:
                found: str | None = self.inner.label(priority)
                return found

        try:
            result = pull_closed_tickets(
                Counting(closed_reader(client)),
                settings.database.parent / "pull" / f"{name}.jsonl",
                source=f"{name} {settings.helpdesk_url}",
                progress=job.note,
                resume_hint="start a retrain from the helpdesk again to resume from there",
            )
        finally:
            client.close()
        if result.pulled < MIN_ROWS:
            raise TicketEnrichError(
                f"{name}: {result.pulled} closed tickets with a priority pulled "
                f"({result.without_priority} without one and {result.unmapped} with one no "
                f"label maps to skipped); training needs at least {MIN_ROWS}"
            )
        job.note(f"{name}: {result.pulled} closed tickets pulled")
        return load_dataset(result.export, PRESETS["helpdesk-pull"])

    def shipped(job: RetrainJob) -> Any:
        from training.data import PRESETS, load_dataset, vendored_data_path

        return load_dataset(vendored_data_path(), PRESETS["hadoop"])

    def job_answer(job: RetrainJob, status: int = 200) -> JSONResponse:
        return JSONResponse(
            job.as_dict(), status_code=status, headers={"Location": f"/admin/retrain/jobs/{job.id}"}
        )

    @router.get("/model", summary="The model card of the served model")
    def model_card(who: Reader) -> dict[str, Any]:
        """Its data (source, rows, date range), its figures on its test window (per class,
        auto-apply share and precision, confusion matrix) and its registry entry."""
        return card()

    @router.get("/model/report", summary="The served model's evaluation report (metrics.json)")
    def served_report(who: Reader) -> Response:
        """The report training wrote beside the artifact being served now (after a promotion,
        the promoted one's)."""
        path = enricher.artifact.path / "report" / "metrics.json"
        if not path.is_file():
            raise NotAllowed(404, "report_not_found", "this artifact has no evaluation report")
        return FileResponse(path, media_type="application/json")

    @router.get("/model/report.md", summary="The served model's evaluation report as Markdown")
    def served_report_md(who: Reader) -> Response:
        """The Markdown report of the artifact being served now."""
        path = enricher.artifact.path / "report" / "report.md"
        if not path.is_file():
            raise NotAllowed(404, "report_not_found", "this artifact has no report.md")
        return FileResponse(path, media_type="text/markdown; charset=utf-8")

    @router.get("/retrain", summary="The latest retrain job and where a retrain can read from")
    def retrain_state(who: Reader) -> dict[str, Any]:
        """The latest job (running or ended, null if none) and the sources a retrain can use."""
        latest = jobs.latest
        return {
            "may_retrain": may_retrain(who),
            "job": latest.as_dict() if latest is not None else None,
            "sources": {
                "helpdesk": helpdesk_name(),
                "upload": {
                    "max_bytes": UPLOAD_BYTES_MAX,
                    "types": [".csv", ".tsv", ".json", ".jsonl"],
                },
                "shipped": True,
            },
        }

    @router.post(
        "/retrain",
        status_code=202,
        summary="Start a retrain from the helpdesk or the shipped export",
        responses={409: {"description": "A retrain is running."}},
    )
    def start_retrain(who: Admin, body: StartBody) -> JSONResponse:
        """Pull the closed tickets of the helpdesk the service delivers to (or read the export
        shipped with the product), add the agents' corrections, train a challenger and judge it;
        poll the job it answers with."""
        if body.source == "helpdesk":
            name = helpdesk_name()
            if name is None:
                raise NotAllowed(
                    409,
                    "no_helpdesk_to_pull",
                    f"the service delivers to {settings.helpdesk!r}, which has no closed tickets "
                    f"to read; configure one of {', '.join(PULLABLE)} or upload an export",
                )
            job = jobs.claim({"kind": "helpdesk", "helpdesk": name})
            jobs.run(job, work_for(pulled))
        else:
            job = jobs.claim({"kind": "shipped", "name": "the shipped Hadoop export"})
            jobs.run(job, work_for(shipped))
        _log.info("retrain started", extra={"job": job.id, "source": body.source, "by": who.name})
        return job_answer(job, 202)

    @router.post(
        "/retrain/upload",
        status_code=202,
        summary="Start a retrain from an uploaded export (multipart/form-data, part `file`)",
        responses={
            409: {"description": "A retrain is running."},
            413: {"description": "The file is over the limit."},
            422: {"description": "The file cannot be trained on; the message says why."},
        },
    )
    async def upload_retrain(who: Admin, request: Request) -> JSONResponse:
        """A CSV, TSV, JSON or JSONL export in any recognised preset: checked at once (a bad file
        is a 4xx saying why), redacted before it is written, then retrained on like a pull."""
        from core.errors import TrainingDataError

        jobs.check_idle()  # before the upload is read
        try:
            body = await read_body(request, UPLOAD_BYTES_MAX)
        except TicketTooLarge:
            raise NotAllowed(
                413, "export_too_large", f"the file is over the {UPLOAD_BYTES_MAX}-byte limit"
            ) from None
        filename, raw = _multipart_file(body, request.headers.get("content-type", ""))
        job_id = uuid.uuid4().hex[:12]
        scratch = jobs_dir / f"upload-{job_id}"

        def read() -> tuple[str | None, Any]:
            from training.retrain import read_upload

            return read_upload(raw, filename, scratch)

        try:
            preset, dataset = await run_in_threadpool(read)
        except TrainingDataError as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise _bad_export(f"{filename}: {exc}") from None
        job = jobs.claim({"kind": "upload", "name": filename, "preset": preset})
        job.note(
            f"{filename}: {len(dataset.examples)} closed tickets read"
            + (f" with preset {preset!r}" if preset else " in the product's own columns")
        )
        jobs.run(job, work_for(lambda _job: dataset))
        _log.info("retrain started", extra={"job": job.id, "source": "upload", "by": who.name})
        return job_answer(job, 202)

    @router.get("/retrain/jobs/{job_id}", summary="A retrain job's progress and result")
    def job_state(who: Reader, job_id: str) -> dict[str, Any]:
        """Stage, tickets read, progress messages, the error of a failed job, the challenger
        beside the champion of a ready one."""
        return jobs.get(job_id).as_dict()

    @router.post(
        "/retrain/jobs/{job_id}/promote",
        summary="Put the job's challenger in production and serve it now",
        responses={409: {"description": "The job has no challenger awaiting a decision."}},
    )
    def promote(who: Admin, job_id: str, body: PromoteBody | None = None) -> JSONResponse:
        """Promote the challenger in the registry (the champion is archived, so a rollback
        brings it back) and serve it from this request on, in every worker. A challenger that
        predicts other priority labels than the served model is promoted only with
        ``{"accept_new_labels": true}`` (409 ``labels_differ`` otherwise)."""
        accept = body is not None and body.accept_new_labels
        with deciding(job_id) as job:
            assert job.challenge is not None
            version = str(job.challenge["challenger"])
            try:
                path = models.fetch(version)
                # Loaded and self-checked before anything changes: a bad artifact changes nothing.
                new = load_enricher(path, limits=enricher.limits, options=enricher.options)
            except TicketEnrichError as exc:
                raise NotAllowed(409, "challenger_unusable", str(exc)) from None
            # Against the model served now, not the one the job judged: another promotion may
            # have come between.
            change = label_change(enricher.metadata["labels"], new.metadata["labels"])
            differ = bool(
                change["added"] or change["removed"] or not job.challenge.get("comparable")
            )
            if differ and not accept:
                raise NotAllowed(
                    409,
                    "labels_differ",
                    f"the challenger predicts {_listed(change['challenger'])}, the serving model "
                    f"{_listed(change['champion'])} (added: {_listed(change['added'])}; removed: "
                    f"{_listed(change['removed'])}); corrections and the dashboard will use the "
                    "new labels. To promote it, send "
                    '{"accept_new_labels": true}',
                )
            reason = f"promoted by {who.name} from the agent UI"
            if differ:
                reason += (
                    f", accepting new priority labels (added: {_listed(change['added'])}; "
                    f"removed: {_listed(change['removed'])})"
                )
            models.set_stage(
                version,
                "production",
                {
                    **job.challenge,
                    "promoted": True,
                    "reason": f"{reason}; the judge: {job.challenge.get('reason')}",
                    "source": job.source,
                    "labels_accepted": change if differ else None,
                },
            )
            swap_served_model(enricher, new)
            follow.promoted(version, path)
            if settings.model_dir is None:
                from training.retrain import point_latest

                point_latest(settings.models_dir, path)
            job.decide("promoted", who.name, {"labels_accepted": change} if differ else None)
        _log.info("model promoted", extra={"job": job.id, "version": version, "by": who.name})
        return job_answer(job)

    @router.post(
        "/retrain/jobs/{job_id}/discard",
        summary="Discard the job's challenger",
        responses={409: {"description": "The job has no challenger awaiting a decision."}},
    )
    def discard(who: Admin, job_id: str) -> JSONResponse:
        """Archive the challenger in the registry; the champion keeps serving."""
        with deciding(job_id) as job:
            assert job.challenge is not None
            version = str(job.challenge["challenger"])
            models.set_stage(
                version,
                "archived",
                {**job.challenge, "reason": f"discarded by {who.name} from the agent UI"},
            )
            job.decide("discarded", who.name)
        return job_answer(job)

    return router


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def add_retrain_admin(
    app: FastAPI,
    enricher: Enricher,
    store: TicketStore,
    settings: Settings,
    *,
    reader: Any,
) -> None:
    """Add the retrain admin endpoints to the local service (see `build_retrain_admin`), and
    keep its served model on the promoted one in every worker process."""
    follower = PromotionFollower(enricher, settings.models_dir / "retrain" / "serving.json")
    app.add_middleware(_FollowPromotions, follower=follower)
    app.include_router(
        build_retrain_admin(enricher, store, settings, reader=reader, follower=follower)
    )
