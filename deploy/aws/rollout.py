"""`ticket-enrich rollout aws`: gradual rollout through the API functions' ``live`` alias.

API Gateway invokes each API function through its alias (the template's ``AutoPublishAlias:
live``). A rollout gives a newer published version of the function a share of the alias's
traffic (the alias's ``RoutingConfig.AdditionalVersionWeights``) while the alias stays on the
version it served; ``promote`` moves the alias to the new version, ``rollback`` drops the new
version's share. ``publish`` makes such a version from a model in the S3 registry: the
function's configuration points at that version of the registry and a Lambda version is
published, without touching the alias.

Every enrichment names the model that produced it (``enrichment.model.version``), so during a
rollout each ticket says which side of the split answered it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import Any

from core.errors import TicketEnrichError
from core.settings import Settings

HELP = (
    "AWS: give a new Lambda version of the API functions a share of their 'live' alias, "
    "then promote or roll it back (status shows the split)"
)
_API_FUNCTIONS = ("rest-api", "http-api")
_MODEL_URI = "TICKET_ENRICH_MODEL_S3_URI"
_MODEL_SHA = "TICKET_ENRICH_MODEL_SHA256"


def _say(message: str) -> None:
    sys.stderr.write(f"[rollout aws] {message}\n")
    sys.stderr.flush()


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= 99:
        raise argparse.ArgumentTypeError(
            f"{text}: the new version's share is a percentage from 1 to 99 "
            "(0 is a rollback, 100 a promotion)"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `ticket-enrich rollout aws ACTION`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--stack-name", default="ticket-enrich", help="the SAM stack (names the functions)"
    )
    common.add_argument(
        "--function",
        action="append",
        metavar="NAME",
        help="a function to act on (repeatable); default: the stack's REST and HTTP API functions",
    )
    common.add_argument("--alias", default="live", help="the alias the API invokes")
    common.add_argument("--region", help="AWS region (default: the AWS CLI's configuration)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    publish = actions.add_parser(
        "publish",
        parents=[common],
        help="publish a version of each function that serves a model version of the S3 registry",
    )
    publish.add_argument("--model-version", required=True, help="a version in the registry")
    publish.add_argument(
        "--registry", required=True, help="the registry: s3://bucket/prefix/ (e.g. .../models/)"
    )
    start = actions.add_parser(
        "start", parents=[common], help="send a share of the alias's traffic to a new version"
    )
    start.add_argument("--version", type=int, required=True, help="the new Lambda version")
    start.add_argument(
        "--share", type=_share, required=True, help="percentage of requests for it (1-99)"
    )
    actions.add_parser("status", parents=[common], help="the alias's versions and their shares")
    actions.add_parser("promote", parents=[common], help="the alias moves to the new version")
    actions.add_parser(
        "rollback", parents=[common], help="the new version's share goes back to the old one"
    )


def _functions(args: argparse.Namespace) -> list[str]:
    return list(args.function or [f"{args.stack_name}-{name}" for name in _API_FUNCTIONS])


def _client(service: str, region: str | None) -> Any:
    import boto3

    return boto3.session.Session(region_name=region).client(service)


def _call(what: str, method: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return method(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise TicketEnrichError(f"{what}: {error.get('Code')}: {error.get('Message')}") from exc
    except BotoCoreError as exc:
        raise TicketEnrichError(f"{what}: {exc}") from exc


def _weights(alias: dict[str, Any]) -> dict[str, float]:
    routing = alias.get("RoutingConfig") or {}
    return {str(k): float(v) for k, v in (routing.get("AdditionalVersionWeights") or {}).items()}


def _status(client: Any, function: str, alias_name: str) -> dict[str, Any]:
    alias = _call(
        f"{function}:{alias_name}", client.get_alias, FunctionName=function, Name=alias_name
    )
    weights = _weights(alias)
    primary = str(alias["FunctionVersion"])
    shares = {primary: round(100 * (1 - sum(weights.values())), 4)}
    shares.update({v: round(100 * w, 4) for v, w in weights.items()})
    models = {}
    for version in shares:
        config = _call(
            f"{function}:{version}",
            client.get_function_configuration,
            FunctionName=function,
            Qualifier=version,
        )
        variables = (config.get("Environment") or {}).get("Variables") or {}
        models[version] = variables.get(_MODEL_URI) or "bundled"
    return {
        "function": function,
        "alias": alias_name,
        "version": primary,
        "shares": shares,
        "new_version": next(iter(weights), None),
        "models": models,
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out ``args.action`` on each function; print one JSON line per function."""
    client = _client("lambda", args.region)
    functions = _functions(args)
    out = sys.stdout
    if args.action == "publish":
        for line in _publish(client, functions, args):
            out.write(json.dumps(line) + "\n")
        return 0
    current = {f: _status(client, f, args.alias) for f in functions}
    if args.action == "start":
        for function, status in current.items():
            if status["new_version"] is not None:
                raise TicketEnrichError(
                    f"{function}:{args.alias} is already rolling out version "
                    f"{status['new_version']}: promote or roll it back first"
                )
            if str(args.version) == status["version"]:
                raise TicketEnrichError(
                    f"{function}:{args.alias} already serves version {args.version}"
                )
            _call(
                f"{function} version {args.version}",
                client.get_function_configuration,
                FunctionName=function,
                Qualifier=str(args.version),
            )
    elif args.action in ("promote", "rollback"):
        idle = [f for f, s in current.items() if s["new_version"] is None]
        if idle:
            raise TicketEnrichError(
                f"no rollout in progress on {', '.join(idle)}:{args.alias}; nothing to "
                f"{args.action}"
            )
    for function, status in current.items():
        if args.action == "start":
            routing = {"AdditionalVersionWeights": {str(args.version): args.share / 100}}
            target = status["version"]
        elif args.action == "promote":
            routing, target = {"AdditionalVersionWeights": {}}, status["new_version"]
        elif args.action == "rollback":
            routing, target = {"AdditionalVersionWeights": {}}, status["version"]
        else:
            out.write(json.dumps(status) + "\n")
            continue
        _call(
            f"{function}:{args.alias}",
            client.update_alias,
            FunctionName=function,
            Name=args.alias,
            FunctionVersion=target,
            RoutingConfig=routing,
        )
        after = _status(client, function, args.alias)
        _say(f"{function}:{args.alias} {args.action}: shares {after['shares']}")
        out.write(json.dumps(after) + "\n")
    return 0


def _publish(client: Any, functions: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Point each function's unpublished configuration at the registry's model version (its
    checksums pinned by SHA-256) and publish a Lambda version of it."""
    from adapters.aws.registry import S3ModelRegistry
    from adapters.aws.s3_model import split_s3_uri
    from core.artifact import CHECKSUMS_FILE

    bucket, prefix = split_s3_uri(args.registry)
    s3 = _client("s3", args.region)
    entry = S3ModelRegistry(s3, bucket, prefix).get(args.model_version)
    key = f"{prefix}{entry.version}/{CHECKSUMS_FILE}"
    checksums = _call(f"s3://{bucket}/{key}", s3.get_object, Bucket=bucket, Key=key)
    sha = hashlib.sha256(checksums["Body"].read()).hexdigest()
    uri = f"s3://{bucket}/{prefix}{entry.version}/"
    published = []
    for function in functions:
        config = _call(function, client.get_function_configuration, FunctionName=function)
        variables = dict((config.get("Environment") or {}).get("Variables") or {})
        variables.update({_MODEL_URI: uri, _MODEL_SHA: sha})
        _call(
            function,
            client.update_function_configuration,
            FunctionName=function,
            Environment={"Variables": variables},
        )
        _call(
            function,
            client.get_waiter("function_updated_v2").wait,
            FunctionName=function,
            WaiterConfig={"Delay": 2, "MaxAttempts": 150},
        )
        version = _call(
            function,
            client.publish_version,
            FunctionName=function,
            Description=f"model {entry.version} ({entry.stage} in the registry)",
        )
        _say(f"{function}: version {version['Version']} serves model {entry.version} from {uri}")
        published.append(
            {
                "function": function,
                "version": version["Version"],
                "model_version": entry.version,
                "model_uri": uri,
                "model_sha256": sha,
            }
        )
    return published
