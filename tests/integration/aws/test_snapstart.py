"""The SnapStart runtime hooks as Lambda's python runtime runs them: registered when the handler
module is imported (with the runtime's own ``snapshot_restore_py``), the before-snapshot hooks
run, then the process is copied (``fork``, as every copy restored from one snapshot starts from
the same memory) and each copy runs the after-restore hooks, then requests, against moto."""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

import pytest

from adapters.aws import api
from adapters.aws import runtime as aws_runtime
from tests.integration.aws.conftest import FakeLambdaContext, load_event


def _run(hooks: list[tuple[Any, tuple[Any, ...], dict[str, Any]]]) -> None:
    for func, args, kwargs in hooks:
        func(*args, **kwargs)


def _restored_copy(access_key: str, ticket: dict[str, Any]) -> dict[str, Any]:
    """Fork; the child restores with its own credentials, answers one request and reports."""
    import snapshot_restore_py

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the restored copy
        code = 1
        try:
            os.close(read)
            os.environ["AWS_ACCESS_KEY_ID"] = access_key
            _run(snapshot_restore_py.get_after_restore())
            event = load_event("http_post_ticket.json")
            event["body"], event["isBase64Encoded"] = json.dumps(ticket), False
            response = api.http_api(event, FakeLambdaContext())
            rt = aws_runtime.runtime()
            report = {
                "random": random.random(),
                "status": response["statusCode"],
                "access_key": rt.session.get_credentials().access_key,
            }
            with os.fdopen(write, "w") as out:
                json.dump(report, out)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as got:
        text = got.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the restored copy failed"
    report: dict[str, Any] = json.loads(text)
    return report


def test_hooks_build_before_the_snapshot_and_each_restored_copy_gets_its_own_seed_and_keys(
    configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import snapshot_restore_py  # Lambda's runtime has it; tests/setup.d/20-aws.sh installs it

    configure()
    assert aws_runtime.register_snapstart_hooks() is True
    befores = [h[0] for h in snapshot_restore_py.get_before_snapshot()]
    afters = [h[0] for h in snapshot_restore_py.get_after_restore()]
    assert aws_runtime.prepare_snapshot in befores and aws_runtime.after_restore in afters
    # Importing the handler module built nothing: the runtime is the hooks' work.
    assert aws_runtime.runtime.cache_info().currsize == 0

    # Lambda runs the before-snapshot hooks in the reverse order of registration.
    _run(list(reversed(snapshot_restore_py.get_before_snapshot())))

    assert aws_runtime.runtime.cache_info().currsize == 1
    assert "boto3" in sys.modules
    built = aws_runtime.runtime()
    assert built.enricher.model_version
    random.seed(7)  # the same generator state in every copy, as in a snapshot
    first = _restored_copy("restored-one", {"subject": "Disk full", "external_id": "S-1"})
    second = _restored_copy("restored-two", {"subject": "Disk full", "external_id": "S-1"})

    assert (first["status"], second["status"]) == (201, 200)  # one ticket, stored once
    assert first["access_key"] == "restored-one" and second["access_key"] == "restored-two"
    assert first["random"] != second["random"]
    random.seed(7)
    assert random.random() not in (first["random"], second["random"])
