"""`ticket-enrich`: train, evaluate, enrich a batch, serve the local service, deliver, deploy."""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from core.enricher import load_enricher
from core.errors import FieldProblem, InvalidTicket, TicketEnrichError
from core.export import ExportColumns
from core.ports import DELIVERY_STATUSES
from core.schema import decode_json
from core.settings import Settings

if TYPE_CHECKING:
    from adapters.local.registry import DirectoryModelRegistry
    from adapters.local.sqlite_store import SQLiteTicketStore
    from core.ports import HelpdeskClient
    from training.data import DataSpec, Example


def _say(message: str) -> None:
    sys.stderr.write(f"[ticket-enrich] {message}\n")
    sys.stderr.flush()


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    result = {}
    for item in values:
        for part in item.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise TicketEnrichError(f"{option} expects NAME=VALUE, got {part!r}")
            result[key.strip()] = value.strip()
    return result


def _add_spec_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("columns of the export (override the preset)")
    g.add_argument(
        "--preset",
        help="column preset: hadoop (default for the vendored data), hadoop-5, jira, "
        "zendesk-csv, zendesk-json, freshdesk-csv, rt-tsv, helpdesk-pull; an export of one of "
        "these is recognised without it",
    )
    g.add_argument("--subject-column")
    g.add_argument("--description-column")
    g.add_argument(
        "--field-column",
        action="append",
        default=None,
        metavar="NAME",
        help="a form field to learn from (repeatable)",
    )
    g.add_argument("--label-column")
    g.add_argument(
        "--label-map",
        action="append",
        default=None,
        metavar="RAW=LABEL[,...]",
        help="map raw labels, e.g. Blocker=urgent,Major=normal (repeatable)",
    )
    g.add_argument(
        "--urgent-label",
        action="append",
        default=None,
        metavar="LABEL",
        help="a label that counts as urgent in reports (repeatable)",
    )
    g.add_argument("--time-column")
    g.add_argument("--time-format", help="strptime format; default ISO 8601")
    g.add_argument("--resolved-column")
    g.add_argument(
        "--where",
        action="append",
        default=None,
        metavar="COLUMN=VALUE",
        help="keep only rows where COLUMN equals VALUE (repeatable)",
    )
    g.add_argument("--id-column")
    g.add_argument(
        "--target",
        action="append",
        default=None,
        metavar="NAME=COLUMN",
        help="another label column to predict, e.g. category=Queue (repeatable)",
    )
    g.add_argument(
        "--duplicate-where",
        action="append",
        default=None,
        metavar="COLUMN=VALUE",
        help="what marks a ticket closed as a duplicate, e.g. Resolution=Duplicate",
    )


def _spec(args: argparse.Namespace, base: DataSpec) -> DataSpec:
    """The data spec: ``--preset`` if given, else ``base``, then the column options on top."""
    from training.data import PRESETS

    if args.preset is not None and args.preset not in PRESETS:
        raise TicketEnrichError(f"unknown preset {args.preset!r}; known: {', '.join(PRESETS)}")
    spec = PRESETS[args.preset] if args.preset else base
    overrides: dict[str, Any] = {}
    for name in (
        "subject_column",
        "description_column",
        "label_column",
        "time_column",
        "time_format",
        "resolved_column",
        "id_column",
    ):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.field_column is not None:
        overrides["field_columns"] = tuple(args.field_column)
    if args.label_map is not None:
        overrides["label_map"] = _pairs(args.label_map, "--label-map")
    if args.urgent_label is not None:
        overrides["urgent_labels"] = tuple(args.urgent_label)
    if args.where is not None:
        overrides["where"] = _pairs(args.where, "--where")
    if args.target is not None:
        overrides["target_columns"] = _pairs(args.target, "--target")
    if args.duplicate_where is not None:
        overrides["duplicate_where"] = _pairs(args.duplicate_where, "--duplicate-where")
    return replace(spec, **overrides)


_COLUMN_OPTIONS = (
    "subject_column",
    "description_column",
    "field_column",
    "label_column",
    "label_map",
    "time_column",
    "time_format",
    "resolved_column",
    "where",
    "id_column",
    "target",
    "duplicate_where",
)


def _data_spec(args: argparse.Namespace) -> DataSpec:
    """The spec for ``--data``: the vendored export's preset without it; with it, ``--preset``
    or, when neither a preset nor any column option is given, the preset whose columns the
    export has (said on the terminal), else the product's own column names."""
    from training.data import PRESET_FORMATS, PRESETS, DataSpec, recognise_export

    if not args.data:
        return _spec(args, PRESETS["hadoop"])
    base = DataSpec()
    if args.preset is None and all(getattr(args, o) is None for o in _COLUMN_OPTIONS):
        name, base = recognise_export(args.data)
        if name is not None:
            _say(
                f"{args.data}: the columns of {PRESET_FORMATS[name]}: reading it with preset "
                f"{name!r} (label {base.label_column!r}, time {base.time_column!r}); pass "
                "--preset or column options to read it otherwise"
            )
    return _spec(args, base)


def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from training.data import load_dataset, vendored_data_path
    from training.train import train_model

    if args.engine == "spark":
        if args.pull_from is not None:
            raise TicketEnrichError("--from trains with the local engine; pull, then --data")
        if args.corrections_from is not None:
            raise TicketEnrichError("--corrections-from trains with the local engine")
        return _train_spark(args, settings)
    if args.pull_from is not None:
        data, spec = _pulled_data(args, settings)
    else:
        data = Path(args.data) if args.data else vendored_data_path()
        spec = _data_spec(args)
    _say(f"reading {data}")
    dataset = load_dataset(data, spec)
    if dataset.unlabelled:
        _say(f"{dataset.unlabelled} closed tickets without a priority skipped")
    if args.corrections_from is not None:
        from training.retrain import with_corrections

        corrections = _recorded_corrections(args.corrections_from, settings)
        dataset = with_corrections(dataset, corrections)
        _say(f"{len(corrections)} agents' priority corrections from {args.corrections_from} added")
    result = train_model(
        dataset,
        out_dir=Path(args.out) if args.out else None,
        models_dir=Path(args.models_dir) if args.models_dir else settings.models_dir,
        test_fraction=args.test_fraction,
        validation_fraction=args.validation_fraction,
        progress=_say,
    )
    _say(f"model {result.metadata['version']} written to {result.artifact_dir}")
    sys.stdout.write(f"{result.artifact_dir}\n")
    return 0


# --- train --from HELPDESK --------------------------------------------------------------------
PULL_SOURCES = ("zendesk", "freshdesk", "jira", "rt")


def _pulled_data(args: argparse.Namespace, settings: Settings) -> tuple[Path, DataSpec]:
    """`train --from HELPDESK`: pull its closed tickets with the delivery settings into
    PULL_DIR/HELPDESK.jsonl (resuming an unfinished pull), to be read with `helpdesk-pull`."""
    from adapters.helpdesk.closed import closed_reader
    from adapters.helpdesk.pull import pull_closed_tickets
    from training.data import MIN_ROWS, PRESETS

    if args.data:
        raise TicketEnrichError("train reads --data or --from, not both")
    client = _helpdesk(settings.model_copy(update={"helpdesk": args.pull_from}))
    pull_dir = Path(args.pull_dir) if args.pull_dir else settings.database.parent / "pull"
    try:
        result = pull_closed_tickets(
            closed_reader(client),
            pull_dir / f"{args.pull_from}.jsonl",
            source=f"{args.pull_from} {settings.helpdesk_url}",
            progress=_say,
        )
    finally:
        client.close()
    if result.pulled < MIN_ROWS:
        raise TicketEnrichError(
            f"{args.pull_from}: {result.pulled} closed tickets with a priority pulled "
            f"({result.without_priority} without one and {result.unmapped} with one no label "
            f"maps to skipped); training needs at least {MIN_ROWS}"
        )
    _say(f"{args.pull_from}: {result.pulled} closed tickets in {result.export}")
    return result.export, _spec(args, PRESETS["helpdesk-pull"])


# --- end of train --from ----------------------------------------------------------------------


def _train_spark(args: argparse.Namespace, settings: Settings) -> int:
    import tempfile

    from adapters.spark.session import copy_to_url, session_for
    from training.data import vendored_data_path
    from training.spark import train_model_spark

    data = args.data or str(vendored_data_path())
    spec = _data_spec(args)
    # An artifact bound for object storage is written on the driver, then copied there.
    url = args.out if args.out and "://" in args.out else None
    with tempfile.TemporaryDirectory() as scratch, session_for(args.master, "train") as spark:
        result = train_model_spark(
            spark,
            data,
            spec,
            out_dir=Path(scratch) / "artifact" if url else Path(args.out) if args.out else None,
            models_dir=Path(args.models_dir) if args.models_dir else settings.models_dir,
            test_fraction=args.test_fraction,
            validation_fraction=args.validation_fraction,
            progress=_say,
        )
        if url:
            copy_to_url(spark, result.artifact_dir, url)
    where = url or result.artifact_dir
    _say(f"model {result.metadata['version']} written to {where}")
    sys.stdout.write(f"{where}\n")
    return 0


def _cmd_batch(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, date, datetime

    load_date = date.fromisoformat(args.load_date) if args.load_date else datetime.now(UTC).date()
    model = args.model or str(settings.serving_model_dir)
    if args.engine == "spark":
        from adapters.spark.job import run_spark_batch
        from adapters.spark.session import session_for

        with session_for(args.master, "batch") as spark:
            summary = run_spark_batch(
                spark,
                model,
                args.input,
                args.output,
                fmt=args.format,
                errors=args.errors,
                load_date=load_date,
                limits=settings.limits,
                options=settings.enrich_options,
                partitions=args.partitions,
                overwrite=args.overwrite,
            )
    else:
        from adapters.spark.local import run_local_batch

        enricher = load_enricher(model, limits=settings.limits, options=settings.enrich_options)
        summary = run_local_batch(
            enricher,
            args.input,
            args.output,
            fmt=args.format,
            errors=args.errors,
            load_date=load_date,
            overwrite=args.overwrite,
        )
    _say(f"{summary.enriched} enriched, {summary.rejected} rejected (see {summary.errors})")
    sys.stdout.write(json.dumps(summary.as_dict()) + "\n")
    return 0


def _cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from training.data import DataSpec, load_dataset
    from training.evaluate import evaluate_model

    enricher = load_enricher(args.model, limits=settings.limits, options=settings.enrich_options)
    recorded = enricher.metadata.get("training_data", {}).get("spec")
    spec = _spec(args, DataSpec.from_dict(recorded) if recorded else DataSpec())
    dataset = load_dataset(args.data, spec)
    out = Path(args.out) if args.out else Path(args.model) / "evaluation"
    evaluate_model(enricher, dataset, args.split, out)
    sys.stdout.write((out / "report.md").read_text())
    _say(f"report written to {out}")
    return 0


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield number, decode_json(line, max_bytes=len(line.encode("utf-8")))
                    except InvalidTicket as exc:
                        yield number, {"__error__": "; ".join(p.message for p in exc.problems)}
    elif path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            yield from enumerate(csv.DictReader(handle), start=1)
    else:
        raise TicketEnrichError(f"{path}: unknown file type; use .csv or .jsonl")


def _cmd_enrich(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    enricher = load_enricher(args.model, limits=settings.limits, options=settings.enrich_options)
    # A CSV row of a helpdesk export is read with the columns the model was trained on.
    columns = ExportColumns.from_metadata(enricher.metadata)
    path = Path(args.file)
    out: TextIO = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    ok = failed = 0
    try:
        for number, row in tqdm(
            _rows(path), desc="enriching", unit=" tickets", file=sys.stderr, disable=None
        ):
            try:
                if isinstance(row, dict) and "__error__" in row:
                    raise InvalidTicket([FieldProblem("row", row["__error__"])])
                enriched = enricher.enrich(columns.ticket(row))
            except InvalidTicket as exc:
                failed += 1
                problems = [p.as_dict() for p in exc.problems]
                sys.stderr.write(json.dumps({"row": number, "problems": problems}) + "\n")
                continue
            out.write(json.dumps({"row": number, **enriched}, ensure_ascii=False) + "\n")
            ok += 1
    finally:
        if out is not sys.stdout:
            out.close()
    _say(f"{ok} enriched, {failed} rejected")
    return 0 if failed == 0 else 1


def ensure_model(settings: Settings) -> Path:
    """The artifact to serve; trains a first one from the vendored data if there is none."""
    path = settings.serving_model_dir
    if path.exists() or settings.model_dir is not None:
        return path
    from training.data import PRESETS, load_dataset, vendored_data_path
    from training.train import train_model

    _say(f"no model at {path}: training a first one from the vendored closed tickets")
    dataset = load_dataset(vendored_data_path(), PRESETS["hadoop"])
    return train_model(dataset, models_dir=settings.models_dir, progress=_say).artifact_dir


def _with_local_credentials(settings: Settings) -> Settings:
    """With no agents and no API key configured, a first start creates both — an agent
    `admin` with a random password and a random API key — in `credentials.json` beside the
    database (owner-only), so that a newcomer can sign in and call the API at once. Configured
    agents or a configured key always win, and the file is then left alone."""
    if settings.agents or settings.api_key is not None:
        return settings
    from pydantic import SecretStr

    path = settings.database.parent / "credentials.json"
    if path.exists():
        data = json.loads(path.read_text())
        _say(
            f"agents sign in at /agent as {data['agent']!r}; the password and the API key are "
            f"in {path} (owner-only)"
        )
    else:
        import secrets

        from adapters.local.auth import hash_password

        password = secrets.token_urlsafe(12)
        data = {
            "agent": "admin",
            "password": password,
            "api_key": secrets.token_urlsafe(24),
            "agents": {"admin": hash_password(password)},
        }
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        # The secrets are shown once, as they are made; later starts only say where they are.
        _say(
            f"first start: created local credentials in {path}: agents sign in at /agent as "
            f"{data['agent']!r} with password {data['password']!r}; API clients send "
            f"X-API-Key: {data['api_key']} (set TICKET_ENRICH_AGENTS / TICKET_ENRICH_API_KEY "
            "to use your own)"
        )
    return settings.model_copy(
        update={"agents": data["agents"], "api_key": SecretStr(data["api_key"])}
    )


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import gc
    import secrets
    import tempfile
    from contextlib import contextmanager

    from pydantic import SecretStr

    from adapters.local import workers as serving

    updates = {
        k: v
        for k, v in (
            ("host", args.host),
            ("port", args.port),
            ("database", args.database),
            ("model_dir", args.model),
            ("workers", args.workers),
            ("max_in_flight", args.max_in_flight),
        )
        if v is not None
    }
    settings = settings.model_copy(update=updates)
    # Before a first training that takes a minute, not after it.
    _check_port_free(settings.host, settings.port)
    settings = _with_local_credentials(settings)
    if settings.session_secret is None:
        # Drawn once here, so that every worker signs and reads the same cookies; a restart
        # draws another, which signs everybody out.
        settings = settings.model_copy(
            update={"session_secret": SecretStr(secrets.token_urlsafe(32))}
        )
    workers = settings.worker_processes
    if workers > 1 and not hasattr(os, "fork"):
        raise TicketEnrichError(
            f"{workers} workers need processes that fork (Linux, macOS); serve with --workers 1"
        )
    model_dir = ensure_model(settings)
    enricher = load_enricher(model_dir, limits=settings.limits, options=settings.enrich_options)
    metrics_dir = None
    if workers > 1:
        # Each worker counts into its own files here and /metrics adds them up (prometheus_client's
        # multiprocess mode, which reads this variable when it is imported and when a metric is
        # made).
        metrics_dir = Path(tempfile.mkdtemp(prefix="ticket-enrich-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    from adapters.local.app import create_app, server_options
    from adapters.local.sqlite_store import CHECKPOINT_EVERY_S, SQLiteTicketStore

    # Creates the file and its tables once, before the workers open it, and ends what a previous
    # run left: its sessions and rate-limit buckets.
    with SQLiteTicketStore(settings.database) as store:
        store.end_sessions()
        store.forget_rate_limits()
    # What the enrichment loads on first use (language profiles, lexicons) is loaded here once,
    # so that forked workers share it rather than each loading a copy.
    enricher.enrich({"subject": "Warm-up", "description": "The service is starting up."})
    # Everything loaded so far lives as long as the service: the garbage collector need not
    # walk it again (a full collection took 15 ms of a worker's event loop), and forked workers
    # then do not copy the pages it would have written to.
    gc.collect()
    gc.freeze()

    @contextmanager
    def worker_app() -> Iterator[Any]:
        helpdesk = _helpdesk(settings) if settings.deliver else None
        worker_store = SQLiteTicketStore(settings.database, checkpoint_every=CHECKPOINT_EVERY_S)
        try:
            yield create_app(
                enricher,
                worker_store,
                settings,
                outbox=worker_store if helpdesk is not None else None,
                helpdesk=helpdesk,
                metrics_dir=metrics_dir,
            )
        finally:
            worker_store.close()
            if helpdesk is not None:
                helpdesk.close()

    cores = serving.worker_cores(workers, settings.pin_workers)
    _say(
        f"serving model {enricher.model_version} on http://{settings.host}:{settings.port} "
        f"with {workers} worker{'s' if workers != 1 else ''}"
        f"{', each on a core of its own' if cores else ''} (tickets in {settings.database}; "
        f"delivery {'on' if settings.deliver else 'off'}; over {settings.max_in_flight} requests "
        f"in flight per worker: 503)"
    )
    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        # One line per request is the app's own (`ticket enriched`, refusals); uvicorn's access
        # log would double the logging cost of every request.
        "access_log": False,
        **server_options(settings),
    }
    try:
        return serving.serve(worker_app, workers, options, cores)
    finally:
        if metrics_dir is not None:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def _check_port_free(host: str, port: int) -> None:
    """Refuse at once, in one line, to serve on an address another program listens on."""
    import socket

    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as exc:
        raise TicketEnrichError(f"cannot serve on {host}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn binds: a port left in TIME_WAIT by a stopped server is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise TicketEnrichError(
                f"cannot listen on {host}:{port}: {exc.strerror}; another program (perhaps "
                "another `ticket-enrich serve`) holds it: stop it, or choose another port "
                "with --port or TICKET_ENRICH_PORT"
            ) from None


def _helpdesk(settings: Settings) -> HelpdeskClient:
    from adapters.helpdesk.factory import helpdesk_from_settings

    return helpdesk_from_settings(settings)


def _open_store(args: argparse.Namespace, settings: Settings) -> SQLiteTicketStore:
    from adapters.local.sqlite_store import SQLiteTicketStore

    return SQLiteTicketStore(args.database or settings.database)


def _cmd_deliver(args: argparse.Namespace, settings: Settings) -> int:
    from core.delivery import deliver_due, run_delivery_worker

    client = _helpdesk(settings)
    with _open_store(args, settings) as store:
        if args.once:
            report = deliver_due(
                store, client, policy=settings.retry_policy, limit=settings.delivery_batch_size
            )
            summary = {"delivered": report.delivered, "retrying": report.retrying}
            sys.stdout.write(json.dumps({**summary, "dead": report.dead}) + "\n")
            client.close()
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        _say(f"delivering from {store.path} to {client.name}; stop with Ctrl-C or SIGTERM")
        try:
            run_delivery_worker(
                store,
                client,
                stop,
                poll_interval_s=settings.delivery_poll_interval_s,
                policy=settings.retry_policy,
                limit=settings.delivery_batch_size,
            )
        finally:
            client.close()
    return 0


def _cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    from core.delivery import requeue_dead

    with _open_store(args, settings) as store:
        if args.action == "list":
            for delivery in store.deliveries(args.status, args.limit):
                sys.stdout.write(json.dumps(delivery.as_dict()) + "\n")
        elif args.action == "retry":
            if args.all_dead == (args.ticket_id is not None):
                raise TicketEnrichError("outbox retry takes a ticket id or --all-dead, not both")
            ids = (
                [d.ticket_id for d in store.deliveries("dead", limit=1_000_000)]
                if args.all_dead
                else [args.ticket_id]
            )
            for ticket_id in ids:
                requeue_dead(store, ticket_id)
            _say(f"{len(ids)} requeued")
        else:
            _say(f"{store.purge(args.status)} {args.status} deliveries purged")
    return 0


def _cmd_outcomes(args: argparse.Namespace, settings: Settings) -> int:
    from core.artifact import read_artifact
    from core.outcomes import collect_outcomes

    model = Path(args.model) if args.model else settings.serving_model_dir
    # Only labels the served model predicts are recorded; without a model, any mapped label is.
    labels = read_artifact(model).metadata.get("labels") if model.exists() else None
    client = _helpdesk(settings)
    try:
        with _open_store(args, settings) as store:
            report = collect_outcomes(store, store, client, store, labels=labels)
    finally:
        client.close()
    sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    _say(
        f"{report.asked} asked: {len(report.recorded)} closed tickets labelled, "
        f"{len(report.still_open)} still open, {len(report.unmapped)} with a priority that maps "
        f"to no label, {len(report.failed)} failed; {report.already_labelled} already labelled"
    )
    if report.stopped is not None:
        _say(f"stopped, the rest is asked on the next run: {report.stopped}")
        return 1
    return 0


def _registry(args: argparse.Namespace, settings: Settings) -> DirectoryModelRegistry:
    from adapters.local.registry import DirectoryModelRegistry

    return DirectoryModelRegistry(args.registry or settings.model_registry_dir)


def _cmd_monitor(args: argparse.Namespace, settings: Settings) -> int:
    from core.artifact import read_artifact
    from core.drift import REFERENCE_FILE, Profile, Reference, drift
    from core.ports import TicketQuery

    model = Path(args.model) if args.model else settings.serving_model_dir
    reference = Reference.from_dict(read_artifact(model).read_json(REFERENCE_FILE))
    window = args.window or settings.drift_window
    threshold = args.threshold or settings.drift_psi_threshold
    current = Profile()
    with _open_store(args, settings) as store:
        for stored in store.list(TicketQuery(limit=window)).items:
            current.add(reference.features(stored.ticket, stored.enrichment))
    if current.tickets < settings.drift_min_tickets:
        _say(
            f"{current.tickets} recent tickets, fewer than {settings.drift_min_tickets}: "
            "too few to judge drift"
        )
        sys.stdout.write(json.dumps({"tickets": current.tickets, "features": []}) + "\n")
        return 0
    report = drift(reference, current, threshold)
    sys.stdout.write(
        json.dumps(
            {
                "model": str(model),
                "tickets": current.tickets,
                "threshold": threshold,
                "features": [d.as_dict() for d in report],
            }
        )
        + "\n"
    )
    for d in report:
        moved = ", ".join(f"{v} {r:.1%}→{c:.1%}" for v, r, c in d.movers)
        _say(f"{'ALERT' if d.alert else 'ok':5} {d.feature:22} PSI {d.psi:.3f}  ({moved})")
    alerts = [d.feature for d in report if d.alert]
    if alerts:
        _say(f"drift at or above PSI {threshold} in: {', '.join(alerts)}")
        return 1
    return 0


def _recorded_corrections(database: Path, settings: Settings) -> list[Example]:
    """The agents' priority corrections a local service recorded in ``database``, as examples
    (the corrected ticket with the agent's label)."""
    from training.retrain import corrections_as_examples

    with _open_store(argparse.Namespace(database=database), settings) as store:
        pairs = [
            (store.get(c.ticket_id), c)
            for c in store.corrections(limit=1_000_000)
            if c.target == "priority"
        ]
    return corrections_as_examples(pairs)


def _cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from training.data import load_dataset, vendored_data_path
    from training.retrain import retrain_model

    data = Path(args.data) if args.data else vendored_data_path()
    spec = _data_spec(args)
    dataset = load_dataset(data, spec)
    corrections = (
        _recorded_corrections(args.corrections_from, settings)
        if args.corrections_from is not None
        else []
    )
    registry = _registry(args, settings)
    decision = retrain_model(
        dataset,
        registry,
        work_dir=Path(args.work_dir) if args.work_dir else settings.models_dir,
        corrections=corrections,
        tolerance=settings.promotion_tolerance if args.tolerance is None else args.tolerance,
        progress=_say,
    )
    sys.stdout.write(json.dumps(decision.as_dict()) + "\n")
    return 0


def _cmd_registry(args: argparse.Namespace, settings: Settings) -> int:
    registry = _registry(args, settings)
    if args.action == "list":
        for entry in registry.versions():
            sys.stdout.write(json.dumps(entry.as_dict()) + "\n")
        return 0
    if args.action == "promote":
        entry = registry.set_stage(
            args.version, "production", {"promoted": True, "reason": "promoted by hand"}
        )
    else:
        current = registry.production()
        if current is None or current.parent is None:
            raise TicketEnrichError("nothing to roll back to: no production version with a parent")
        entry = registry.set_stage(
            current.parent,
            "production",
            {"promoted": True, "reason": f"rolled back from {current.version}"},
        )
    _say(f"{entry.version} is now in production")
    sys.stdout.write(json.dumps(entry.as_dict()) + "\n")
    return 0


def _rule_summary(rule: Any) -> str:
    """One line for a rule: its name, the label it sets and what it matches."""
    sets = f"label = {rule.label}" if rule.fixed else f"minimum {rule.label}"
    matches = []
    if rule.phrases:
        matches.append("phrases " + ", ".join(json.dumps(p) for p in rule.phrases))
    if rule.patterns:
        matches.append("patterns " + ", ".join(json.dumps(p) for p in rule.patterns))
    for name, values in rule.fields.items():
        matches.append(f"field {name} = " + " | ".join(json.dumps(v) for v in values))
    unless = f"; unless {', '.join(json.dumps(p) for p in rule.unless)}" if rule.unless else ""
    return f"{rule.name}\t{sets}\t{'; '.join(matches)}{unless}"


def _cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    from core.rules_release import priority_labels, read_rules_file

    if args.action == "check":
        model = Path(args.model) if args.model else settings.serving_model_dir
        from core.rules import validate_rules

        rules = validate_rules(read_rules_file(args.file), priority_labels(model))
        for rule in rules.rules:
            sys.stdout.write(_rule_summary(rule) + "\n")
        _say(
            f"{args.file}: {len(rules)} rule{'s' if len(rules) != 1 else ''} valid for the "
            f"labels of {model} (rules version {rules.version or 'none'})"
        )
        return 0
    if args.action == "export":
        return _export_rules(args, settings)
    return _release_rules(args)


def _export_rules(args: argparse.Namespace, settings: Settings) -> int:
    from core.artifact import read_artifact
    from core.rules_source import RULES_DIR, ReloadingRules, RulesDirectory

    registry = Path(args.registry) if args.registry else settings.model_registry_dir
    model = Path(args.model) if args.model else settings.serving_model_dir
    artifact = read_artifact(model)
    directory = RulesDirectory(registry / RULES_DIR)
    # The service's own choice of the rules in force, so that what is exported is what it
    # applies (an invalid newest file is skipped, a model with newer rules of its own wins).
    state = ReloadingRules(directory, lambda: artifact).state
    document = state.document()
    if document is None:
        raise TicketEnrichError(
            f"no rules in force: {directory.root} holds no valid version and {model} ships no "
            "rules of its own"
        )
    text = json.dumps(document, indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    entry = directory.entry(state.version) if state.version else None
    who = f", written by {entry.get('by')} at {entry.get('at')}" if entry else ""
    _say(
        f"rules version {state.version} ({state.source}{who}; {state.reason}), "
        f"{len(document['rules'])} rules, for model {state.model_version}"
        + (f", written to {args.out}" if args.out else "")
    )
    return 0


def _release_rules(args: argparse.Namespace) -> int:
    from core.rules_release import read_rules_file, release_rules

    by = args.by
    if not by:
        import getpass

        try:
            by = getpass.getuser()
        except (KeyError, OSError):
            by = "unknown"
    released = release_rules(
        args.model,
        read_rules_file(args.file),
        args.out,
        by=by,
        source=str(Path(args.file).resolve()),
    )
    sys.stdout.write(
        json.dumps(
            {
                "version": released.version,
                "path": str(released.path),
                "parent": released.metadata["parent"],
                "rules": released.metadata["rules"],
            }
        )
        + "\n"
    )
    _say(
        f"model {released.version} (model {released.parent} with rules "
        f"{released.rules.version or 'unversioned'}, {len(released.rules)} rules) written to "
        f"{released.path}; register or deploy it as a trained model"
    )
    return 0


def _at_least(lowest: int) -> Callable[[str], int]:
    """An argparse type: an integer no lower than ``lowest``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be at least {lowest}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="ticket-enrich", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model artifact from closed tickets")
    train.add_argument("--data", help="CSV/TSV/JSONL export; default: the vendored Hadoop data")
    train.add_argument("--out", help="artifact directory; default: MODELS_DIR/<version>")
    train.add_argument("--models-dir", help="where versions and the `latest` link live")
    train.add_argument("--test-fraction", type=float, default=0.2)
    train.add_argument("--validation-fraction", type=float, default=0.2)
    train.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: scikit-learn in this process; spark: Spark MLlib (DATA may be a URL)",
    )
    train.add_argument("--master", help="Spark master URL (spark engine); default local[*]")
    train.add_argument(
        "--from",
        dest="pull_from",
        choices=PULL_SOURCES,
        help="pull the closed tickets of this helpdesk (the TICKET_ENRICH_HELPDESK_* settings "
        "of delivery) and train on them; a stopped pull resumes where it stopped",
    )
    train.add_argument(
        "--pull-dir", help="where --from keeps the pulled export and its state; default: var/pull"
    )
    train.add_argument(
        "--corrections-from",
        type=Path,
        help="a local service's database whose agents' priority corrections to add to the data",
    )
    _add_spec_options(train)

    evaluate = sub.add_parser("evaluate", help="evaluate an artifact on closed tickets")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--out", help="report directory; default: MODEL/evaluation")
    evaluate.add_argument(
        "--split",
        choices=("auto", "test", "all"),
        default="auto",
        help="auto: the test window when DATA is the training file, else all",
    )
    _add_spec_options(evaluate)

    enrich = sub.add_parser("enrich", help="enrich a CSV/JSONL batch to JSONL")
    enrich.add_argument("--model", required=True)
    enrich.add_argument("file")
    enrich.add_argument("--out", help="JSONL output file; default: standard output")

    batch = sub.add_parser(
        "batch",
        help="enrich CSV/JSONL/Parquet into Parquet partitioned by creation date",
        description="Enrich INPUT (a file, a directory, or with --engine spark any URL Spark "
        "reads) into OUTPUT, a Parquet dataset partitioned by created_date (the ticket's "
        "creation date in UTC, or the load date when it has none); rejected records go to "
        "--errors with their reason and never fail the job.",
    )
    batch.add_argument("input", metavar="INPUT")
    batch.add_argument("output", metavar="OUTPUT")
    batch.add_argument("--engine", choices=("local", "spark"), default="local")
    batch.add_argument("--model", help="artifact directory or URL; default: MODELS_DIR/latest")
    batch.add_argument(
        "--format", choices=("csv", "jsonl", "parquet"), help="default: from INPUT's suffix"
    )
    batch.add_argument("--errors", help="rejected records; default: OUTPUT/_errors")
    batch.add_argument(
        "--load-date", help="YYYY-MM-DD for tickets without a creation time; default: today (UTC)"
    )
    batch.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    batch.add_argument("--master", help="Spark master URL (spark engine); default local[*]")
    batch.add_argument(
        "--partitions", type=int, help="Spark tasks that enrich (spark engine); default: 2 per core"
    )

    serve = sub.add_parser("serve", help="run the local service (trains a first model if needed)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--database", type=Path)
    serve.add_argument("--model", type=Path, help="artifact to serve; default: MODELS_DIR/latest")
    serve.add_argument(
        "--workers",
        type=_at_least(0),
        help="worker processes (default 0: one per usable CPU core)",
    )
    serve.add_argument(
        "--max-in-flight",
        type=_at_least(1),
        help="requests one worker holds at once before it answers 503 (default 64)",
    )

    deliver = sub.add_parser("deliver", help="deliver enqueued tickets to the helpdesk webhook")
    deliver.add_argument("--database", type=Path)
    deliver.add_argument("--once", action="store_true", help="one pass over what is due, then exit")

    outbox = sub.add_parser("outbox", help="inspect and requeue deliveries to the helpdesk")
    outbox_sub = outbox.add_subparsers(dest="action", required=True)
    listing = outbox_sub.add_parser("list", help="deliveries as JSON lines")
    listing.add_argument("--status", choices=DELIVERY_STATUSES)
    listing.add_argument("--limit", type=int, default=1000)
    retry = outbox_sub.add_parser("retry", help="requeue dead deliveries")
    retry.add_argument("ticket_id", nargs="?")
    retry.add_argument("--all-dead", action="store_true")
    purge = outbox_sub.add_parser("purge", help="forget finished deliveries (tickets stay)")
    purge.add_argument("--status", choices=("delivered", "dead"), required=True)
    for command in (listing, retry, purge):
        command.add_argument("--database", type=Path)

    monitor = sub.add_parser(
        "monitor", help="drift of recent tickets from the model's training data (exit 1: alert)"
    )
    monitor.add_argument("--database", type=Path)
    monitor.add_argument("--model", type=Path, help="default: the served model")
    monitor.add_argument("--window", type=int, help="recent tickets to profile")
    monitor.add_argument("--threshold", type=float, help="PSI that alerts")

    retrain = sub.add_parser(
        "retrain", help="train a challenger, judge it against production, promote it or not"
    )
    retrain.add_argument("--data", help="closed tickets; default: the vendored Hadoop data")
    retrain.add_argument(
        "--corrections-from", type=Path, help="a local database whose agents' corrections to add"
    )
    retrain.add_argument("--registry", type=Path)
    retrain.add_argument("--work-dir", help="where the challenger is trained")
    retrain.add_argument("--tolerance", type=float)
    _add_spec_options(retrain)

    outcomes = sub.add_parser(
        "outcomes",
        help="label delivered tickets with the priority they closed with in the helpdesk",
        description="Ask the configured helpdesk about every delivered ticket that has no "
        "priority label yet, and record the final priority of each closed one as a correction "
        "by helpdesk:<system>. Prints a JSON summary; exits 1 when the helpdesk was unavailable "
        "and the run stopped early.",
    )
    outcomes.add_argument("--database", type=Path)
    outcomes.add_argument(
        "--model", type=Path, help="whose labels may be recorded; default: the served model"
    )

    registry = sub.add_parser("registry", help="model versions, promotion and rollback")
    registry_sub = registry.add_subparsers(dest="action", required=True)
    listing = registry_sub.add_parser("list", help="every version as JSON lines")
    promote = registry_sub.add_parser("promote", help="put a version in production")
    promote.add_argument("version")
    rollback = registry_sub.add_parser("rollback", help="put production's parent back")
    for command in (listing, promote, rollback):
        command.add_argument("--registry", type=Path)

    rules = sub.add_parser(
        "rules",
        help="priority rules: check a file, export the local service's, release them in a model",
        description="Carry the priority rules to the clouds and Spark: `check` validates a "
        "rules file for a model, `export` writes the rules in force on the local service, "
        "`release` makes a new model version that ships them (register or deploy it as a "
        "trained model).",
    )
    rules_sub = rules.add_subparsers(dest="action", required=True)
    check = rules_sub.add_parser(
        "check", help="validate a rules file (exit 2 naming the rule at fault)"
    )
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--model", type=Path, help="whose labels the rules must use; default: the served model"
    )
    export = rules_sub.add_parser(
        "export", help="the rules in force on the local service, as a rules file"
    )
    export.add_argument(
        "--registry", type=Path, help="the local registry whose rules/ to read; default: its own"
    )
    export.add_argument("--model", type=Path, help="the served model; default: MODELS_DIR/latest")
    export.add_argument("--out", type=Path, help="file to write; default: standard output")
    release = rules_sub.add_parser(
        "release", help="a new model version: MODEL with the rules of FILE, written to NEWDIR"
    )
    release.add_argument("file", metavar="FILE")
    release.add_argument("--model", type=Path, required=True, help="the model artifact")
    release.add_argument(
        "--out", type=Path, required=True, metavar="NEWDIR", help="where (must not exist)"
    )
    release.add_argument("--by", help="who releases them; default: the user running this")

    deploy = sub.add_parser("deploy", help="build and deploy to a cloud (or --dry-run)")
    targets = deploy.add_subparsers(dest="cloud", required=True)
    for cloud in _cloud_modules("command"):
        module = importlib.import_module(f"deploy.{cloud}.command")
        target = targets.add_parser(cloud, help=module.HELP)
        target.add_argument(
            "--dry-run", action="store_true", help="build and print what would be created"
        )
        module.add_arguments(target)

    rollout = sub.add_parser(
        "rollout", help="gradual rollout on a cloud: a share of traffic, then promote or roll back"
    )
    clouds = rollout.add_subparsers(dest="cloud", required=True)
    for cloud in _cloud_modules("rollout"):
        module = importlib.import_module(f"deploy.{cloud}.rollout")
        target = clouds.add_parser(cloud, help=module.HELP)
        module.add_arguments(target)
    return parser


_CLOUDS = ("aws", "gcp", "azure")


def _cloud_modules(name: str) -> list[str]:
    """The clouds whose `deploy.<cloud>.<name>` module is installed."""
    return [
        c
        for c in _CLOUDS
        if importlib.util.find_spec(f"deploy.{c}") is not None
        and importlib.util.find_spec(f"deploy.{c}.{name}") is not None
    ]


def _cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    module = importlib.import_module(f"deploy.{args.cloud}.command")
    result: int = module.run(args, settings)
    return result


def _cmd_rollout(args: argparse.Namespace, settings: Settings) -> int:
    module = importlib.import_module(f"deploy.{args.cloud}.rollout")
    result: int = module.run(args, settings)
    return result


# The extra that installs each optional top-level module (the longest matching prefix wins).
EXTRA_OF_MODULE = {
    "fastapi": "local",
    "starlette": "local",
    "uvicorn": "local",
    "uvloop": "local",
    "httptools": "local",
    "orjson": "local",
    "tqdm": "local",
    "prometheus_client": "local",
    "httpx": "helpdesk",
    "sklearn": "train",
    "scipy": "train",
    "numpy": "train",
    "matplotlib": "train",
    "joblib": "train",
    "boto3": "aws",
    "botocore": "aws",
    "aws_lambda_powertools": "aws",
    "functions_framework": "gcp",
    "cloudevents": "gcp",
    "google": "gcp",
    "firebase_admin": "gcp",
    "azure": "azure",
    "azure.ai.ml": "azure-deploy",
    "pyspark": "spark",
    "pandas": "spark",
    "pyarrow": "spark",
}


def missing_extra(module: str | None) -> str | None:
    """The extra to install for a module that failed to import, if one of ours provides it."""
    parts = (module or "").split(".")
    for end in range(len(parts), 0, -1):
        extra = EXTRA_OF_MODULE.get(".".join(parts[:end]))
        if extra is not None:
            return extra
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ticket-enrich` console script."""
    args = build_parser().parse_args(argv)
    commands = {
        "train": _cmd_train,
        "evaluate": _cmd_evaluate,
        "enrich": _cmd_enrich,
        "batch": _cmd_batch,
        "serve": _cmd_serve,
        "deliver": _cmd_deliver,
        "outbox": _cmd_outbox,
        "deploy": _cmd_deploy,
        "rollout": _cmd_rollout,
        "monitor": _cmd_monitor,
        "retrain": _cmd_retrain,
        "registry": _cmd_registry,
        "outcomes": _cmd_outcomes,
        "rules": _cmd_rules,
    }
    try:
        return commands[args.command](args, Settings())
    except TicketEnrichError as exc:
        _say(f"error: {exc}")
        return 2
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc.name)
        if extra is None:
            raise
        command = " ".join(str(a) for a in (args.command, getattr(args, "cloud", None)) if a)
        _say(
            f"error: `ticket-enrich {command}` needs the {extra!r} extra ({exc.name} is not "
            f"installed): pip install 'ticket-enrich[{extra}]'"
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
