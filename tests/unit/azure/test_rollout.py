"""`ticket-enrich rollout azure start|status|promote|rollback` against a double of `MLClient`
(Azure ML has no local emulator; `fake_mlclient` refuses what the service refuses), and the
traffic moves it shares with `ticket-enrich deploy azure`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.local.cli import main
from core.errors import TicketEnrichError
from deploy.azure import command, rollout, traffic
from deploy.azure.traffic import apply, rolled_back
from tests.unit.azure.fake_mlclient import Deployment, Endpoint, FakeMLClient

pytestmark = [
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.RemovedInMarshmallow4Warning"),
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.ChangedInMarshmallow4Warning"),
]


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeMLClient:
    fake = FakeMLClient()
    # Both commands reach the workspace through the one ml_client they import.
    monkeypatch.setattr(rollout, "ml_client", lambda args, settings: fake)
    monkeypatch.setattr(command, "ml_client", lambda args, settings: fake)
    return fake


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main(list(argv))
    out = capsys.readouterr().out.strip().splitlines()
    return code, (json.loads(out[-1]) if out else {})


def _live_blue(client: FakeMLClient) -> None:
    apply(client, Endpoint("ticket-enrich"), Deployment(tags={"model_version": "v1"}), 10)


def test_start_puts_the_new_version_beside_the_live_one_with_its_share(
    client: FakeMLClient,
    small_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _live_blue(client)
    client.calls.clear()
    code, result = _run(
        capsys, "rollout", "azure", "start", "--share", "25",
        "--model", str(small_model_dir), "--build-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0
    assert result["deployment"] == "green" and result["live"] == "blue"
    assert result["traffic"] == {"blue": 75, "green": 25}
    assert client.endpoints["ticket-enrich"].traffic == {"blue": 75, "green": 25}
    # The deployment exists (and is healthy: create_or_update waited) before it gets traffic.
    assert [c[0] for c in client.calls] == ["deployment", "endpoint"]
    green = client.deployments["green"]
    assert green.tags["model_version"] == result["model_version"]
    assert Path(green.model.path) == small_model_dir.resolve()

    code, status = _run(capsys, "rollout", "azure", "status")
    assert code == 0
    assert status["live"] == "blue" and status["canary"] == "green"
    deployments = status["deployments"]
    assert isinstance(deployments, dict)
    assert deployments["blue"]["model_version"] == "v1"
    assert deployments["green"] == {
        "model_version": result["model_version"],
        "model": deployments["green"]["model"],
        "traffic": 25,
    }


def test_start_refuses_an_endpoint_where_nothing_serves(
    client: FakeMLClient,
    small_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["rollout", "azure", "start", "--model", str(small_model_dir)]
    assert main([*argv, "--build-dir", str(tmp_path)]) == 2
    assert "deploy azure" in capsys.readouterr().err
    assert client.calls == [] and client.endpoints == {}


@pytest.mark.parametrize("share", ["0", "100", "-5", "ten", "12.5"])
def test_start_refuses_a_share_outside_1_to_99(
    client: FakeMLClient, share: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["rollout", "azure", "start", "--share", share])
    assert stopped.value.code == 2
    assert "--share" in capsys.readouterr().err
    assert client.calls == []


def test_promote_sends_everything_to_the_canary_from_either_command(
    client: FakeMLClient, capsys: pytest.CaptureFixture[str]
) -> None:
    _live_blue(client)
    apply(client, Endpoint("ticket-enrich"), Deployment(), 20)
    code, result = _run(capsys, "rollout", "azure", "promote")
    assert code == 0 and result["traffic"] == {"blue": 0, "green": 100}

    # `deploy azure --promote` is the same move: the next canary (blue) promoted likewise.
    apply(client, Endpoint("ticket-enrich"), Deployment(), 20)
    assert client.endpoints["ticket-enrich"].traffic == {"green": 80, "blue": 20}
    code, result = _run(capsys, "deploy", "azure", "--promote")
    assert code == 0 and result["traffic"] == {"green": 0, "blue": 100}


def test_rollback_returns_all_traffic_to_the_live_one_and_deletes_the_canary(
    client: FakeMLClient, capsys: pytest.CaptureFixture[str]
) -> None:
    _live_blue(client)
    apply(client, Endpoint("ticket-enrich"), Deployment(), 30)
    client.calls.clear()
    code, result = _run(capsys, "rollout", "azure", "rollback")
    assert code == 0
    assert result == {"endpoint": "ticket-enrich", "traffic": {"blue": 100}, "deleted": "green"}
    assert client.endpoints["ticket-enrich"].traffic == {"blue": 100}
    assert set(client.deployments) == {"blue"}
    # Traffic first: the service refuses to delete a deployment that still takes some.
    assert [c[0] for c in client.calls] == ["endpoint", "delete"]

    # Nothing left to roll back.
    assert main(["rollout", "azure", "rollback"]) == 2
    assert "nothing to roll back" in capsys.readouterr().err


def test_rolled_back_and_its_limits() -> None:
    assert rolled_back({"blue": 90, "green": 10}) == ({"blue": 100}, "green")
    assert rolled_back({"green": 60, "blue": 40}) == ({"green": 100}, "blue")
    for split in ({"blue": 100}, {"blue": 100, "green": 0}, {}):
        with pytest.raises(TicketEnrichError):
            rolled_back(split)
    with pytest.raises(TicketEnrichError):
        traffic.check_share(100)


def test_rollout_without_a_workspace_stops_before_contacting_azure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "ML_WORKSPACE"):
        monkeypatch.delenv(f"TICKET_ENRICH_AZURE_{name}", raising=False)
    assert main(["rollout", "azure", "status"]) == 2
    assert "--subscription" in capsys.readouterr().err
