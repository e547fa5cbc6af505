"""A double of the part of `azure.ai.ml.MLClient` the Azure commands and the retraining trigger
use. Azure ML has no local emulator, so the control plane is faked here; it refuses what the
service refuses (traffic to a deployment that does not exist, a split that does not add up to
100, deleting a deployment that still has traffic, a job name used twice) and keeps the real
SDK entities it is given, so tests can check them with the SDK's own request building."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError


@dataclass
class Poller:
    result_value: Any = None

    def result(self) -> Any:
        return self.result_value


@dataclass
class Endpoint:
    name: str
    traffic: dict[str, int] = field(default_factory=dict)


@dataclass
class Deployment:
    name: str = "blue"
    endpoint_name: str = "ticket-enrich"
    tags: dict[str, str] = field(default_factory=dict)
    model: Any = None


class FakeEndpoints:
    def __init__(self, client: FakeMLClient) -> None:
        self.client = client

    def get(self, name: str) -> Endpoint:
        if name not in self.client.endpoints:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        stored = self.client.endpoints[name]
        return Endpoint(stored.name, dict(stored.traffic))

    def begin_create_or_update(self, endpoint: Any) -> Poller:
        traffic = dict(endpoint.traffic or {})
        unknown = set(traffic) - set(self.client.deployments)
        assert not unknown, f"traffic for deployments that do not exist: {unknown}"
        assert not traffic or sum(traffic.values()) == 100, f"traffic {traffic} is not 100 %"
        self.client.calls.append(("endpoint", endpoint.name, traffic))
        self.client.endpoints[endpoint.name] = Endpoint(endpoint.name, traffic)
        return Poller(endpoint)


class FakeDeployments:
    def __init__(self, client: FakeMLClient) -> None:
        self.client = client

    def begin_create_or_update(self, deployment: Any) -> Poller:
        assert deployment.endpoint_name in self.client.endpoints
        self.client.calls.append(("deployment", deployment.name, {}))
        self.client.deployments[deployment.name] = deployment
        return Poller(deployment)

    def list(self, endpoint_name: str) -> list[Any]:
        return [d for d in self.client.deployments.values() if d.endpoint_name == endpoint_name]

    def begin_delete(self, name: str, endpoint_name: str) -> Poller:
        if name not in self.client.deployments:
            raise ResourceNotFoundError(f"deployment {name} not found")
        share = self.client.endpoints[endpoint_name].traffic.get(name, 0)
        if share:
            raise HttpResponseError(f"deployment {name} still takes {share} % of the traffic")
        self.client.calls.append(("delete", name, {}))
        del self.client.deployments[name]
        return Poller(None)


class FakeJobs:
    def __init__(self, client: FakeMLClient) -> None:
        self.client = client

    def get(self, name: str) -> Any:
        if name not in self.client.jobs_created:
            raise ResourceNotFoundError(f"job {name} not found")
        return self.client.jobs_created[name]

    def create_or_update(self, job: Any) -> Any:
        if job.name in self.client.jobs_created:
            raise HttpResponseError(f"job {job.name} already exists")
        self.client.calls.append(("job", job.name, {}))
        self.client.jobs_created[job.name] = job
        return job


class FakeSchedules:
    def __init__(self, client: FakeMLClient) -> None:
        self.client = client

    def begin_create_or_update(self, schedule: Any) -> Poller:
        self.client.calls.append(("schedule", schedule.name, {}))
        self.client.schedules_created[schedule.name] = schedule
        return Poller(schedule)


class FakeMLClient:
    """The part of `azure.ai.ml.MLClient` the commands and the trigger use."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.deployments: dict[str, Any] = {}
        self.jobs_created: dict[str, Any] = {}
        self.schedules_created: dict[str, Any] = {}
        self.calls: list[tuple[str, str, dict[str, int]]] = []
        self.online_endpoints = FakeEndpoints(self)
        self.online_deployments = FakeDeployments(self)
        self.jobs = FakeJobs(self)
        self.schedules = FakeSchedules(self)
