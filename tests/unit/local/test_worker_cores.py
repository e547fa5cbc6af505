"""Which core each worker process is kept on (`worker_cores`): one per core when the workers
are exactly one per usable core, otherwise none, and none when pinning is turned off."""

from __future__ import annotations

import os

import pytest

from adapters.local import workers
from core.settings import Settings


@pytest.fixture
def usable(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    cores = {6, 2, 4}
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(cores))
    return cores


def test_one_worker_per_usable_core_gives_each_its_own_in_order(usable: set[int]) -> None:
    assert workers.worker_cores(3, pin=True) == [2, 4, 6]


@pytest.mark.parametrize("count", [1, 2, 4])
def test_fewer_or_more_workers_than_cores_are_left_to_the_kernel(
    usable: set[int], count: int
) -> None:
    assert workers.worker_cores(count, pin=True) is None


def test_pinning_turned_off_pins_nothing(usable: set[int]) -> None:
    assert workers.worker_cores(3, pin=False) is None


def test_pinning_is_on_by_default_and_a_setting_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().pin_workers is True
    monkeypatch.setenv("TICKET_ENRICH_PIN_WORKERS", "false")
    assert Settings().pin_workers is False


def test_a_core_list_that_does_not_match_the_workers_is_refused() -> None:
    with pytest.raises(ValueError, match="2 workers need 2 cores"):
        workers.serve(lambda: None, 2, {"host": "127.0.0.1", "port": 0}, [0])  # type: ignore[arg-type, return-value]
