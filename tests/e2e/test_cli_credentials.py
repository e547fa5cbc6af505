"""First start of the local service: credentials for a newcomer, never over configured ones."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.local.auth import verify_password
from adapters.local.cli import _with_local_credentials
from core.settings import Settings


def test_a_first_start_creates_an_agent_and_a_key_and_later_starts_reuse_them(
    tmp_path: Path,
) -> None:
    settings = Settings(database=tmp_path / "var" / "tickets.sqlite3")
    first = _with_local_credentials(settings)
    path = tmp_path / "var" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first.agents) == {"admin"} and first.api_key is not None
    saved = json.loads(path.read_text())
    assert verify_password(saved["password"], first.agents["admin"])
    again = _with_local_credentials(settings)
    assert again.agents == first.agents
    assert again.api_key is not None
    assert again.api_key.get_secret_value() == first.api_key.get_secret_value()


def test_configured_credentials_win_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(database=tmp_path / "tickets.sqlite3", api_key=SecretStr("k" * 32))
    assert _with_local_credentials(settings) is settings
    assert not (tmp_path / "credentials.json").exists()


def test_the_secrets_are_printed_at_creation_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database=tmp_path / "var" / "tickets.sqlite3")
    first = _with_local_credentials(settings)
    assert first.api_key is not None
    key = first.api_key.get_secret_value()
    printed = capsys.readouterr().err
    assert key in printed and "password" in printed
    _with_local_credentials(settings)
    again = capsys.readouterr().err
    assert key not in again
    saved = json.loads((tmp_path / "var" / "credentials.json").read_text())
    assert saved["password"] not in again
    assert "credentials.json" in again
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700


def test_a_new_ticket_store_is_its_owner_s_alone(tmp_path: Path) -> None:
    from adapters.local.sqlite_store import SQLiteTicketStore

    path = tmp_path / "data" / "tickets.sqlite3"
    with SQLiteTicketStore(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if sidecar.exists():
            assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
