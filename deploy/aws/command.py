"""`ticket-enrich deploy aws`: build the Lambda package with `sam build`, bundle the model (or
upload it to S3), check the package, and deploy the SAM stack with `sam deploy` (credentials
from the usual AWS chain). With ``--dry-run`` it builds and prints what would be created."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from core.enricher import load_enricher
from core.errors import TicketEnrichError
from core.settings import Settings
from deploy.aws.package import (
    REPO_ROOT,
    built_resources,
    bundle_model,
    find_sam,
    function_dirs,
    is_training_function,
    measure,
    prune_tests,
    sam_build,
    sam_environment,
)

HELP = (
    "AWS: API Gateway + Lambda, S3 and Kinesis triggers, DynamoDB, with AWS SAM "
    "(sam build; sam deploy unless --dry-run)"
)
# The batch bucket is "<stack>-batches-<account id>-<region>": at most 63 characters.
_STACK_NAME = re.compile(r"[a-z][a-z0-9-]{0,24}")
ZIPPED_LIMIT_BYTES = 50 * 1024 * 1024  # Lambda's limit for a directly uploaded .zip
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024


def _say(message: str) -> None:
    sys.stderr.write(f"[deploy aws] {message}\n")
    sys.stderr.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `ticket-enrich deploy aws` (``--dry-run`` is added by the CLI)."""
    parser.add_argument(
        "--stack-name", default="ticket-enrich", help="lower case: it names a bucket"
    )
    parser.add_argument("--region", help="AWS region (default: the AWS CLI's configuration)")
    parser.add_argument("--model", type=Path, help="model artifact (default: the served one)")
    parser.add_argument(
        "--model-s3-uri",
        help="upload the model to this s3://bucket/prefix/ and load it from there at cold "
        "start, instead of bundling it in the package",
    )
    parser.add_argument(
        "--build-dir", type=Path, default=REPO_ROOT / "build" / "aws", help="sam build output"
    )
    parser.add_argument("--sam", help="the sam executable (default: .tools/sam/bin/sam or PATH)")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter, e.g. Deliver=true, Helpdesk=zendesk (repeatable)",
    )


def _parameters(values: list[str]) -> dict[str, str]:
    parameters = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise TicketEnrichError(f"--parameter expects NAME=VALUE, got {item!r}")
        parameters[name] = value
    return parameters


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Build, check and (unless ``args.dry_run``) deploy; 0 on success."""
    if not _STACK_NAME.fullmatch(args.stack_name):
        raise TicketEnrichError(
            f"--stack-name {args.stack_name!r}: use lower-case letters, digits and hyphens, "
            "starting with a letter, at most 25 characters (it names the batch bucket)"
        )
    model_dir = Path(args.model) if args.model else settings.serving_model_dir
    enricher = load_enricher(model_dir)  # refuses a modified or truncated artifact up front
    _say(f"model {enricher.model_name} {enricher.model_version} from {model_dir}")
    sam = find_sam(args.sam)
    build_dir = Path(args.build_dir)
    _say(f"sam build into {build_dir} (pip fetches the functions' arm64 wheels)")
    built = sam_build(sam, build_dir)
    parameters = _parameters(args.parameter)
    reports = []
    for function_dir in function_dirs(build_dir):
        if is_training_function(function_dir):
            prune_tests(function_dir)
        elif not args.model_s3_uri:
            bundle_model(function_dir, model_dir)
        reports.append(measure(function_dir))
    out = sys.stdout
    out.write(f"stack {args.stack_name}: resources in {built}\n")
    for logical_id, kind in built_resources(built):
        out.write(f"  {kind:<34} {logical_id}\n")
    out.write("deployment packages (the serving functions share their code):\n")
    failures = []
    for report in reports:
        out.write(
            f"  {report.function:<18} {report.zipped_bytes / 1e6:6.1f} MB zipped, "
            f"{report.unzipped_bytes / 1e6:6.1f} MB unzipped, {report.files} files, "
            f"model {report.model_bytes / 1e6:.1f} MB, boto3 bundled: {report.bundles_boto3}\n"
        )
        trains = is_training_function(report.directory)
        if report.forbidden and not trains:
            failures.append(f"{report.function} contains {', '.join(report.forbidden)}")
        # sam deploy uploads through S3, where the limit is the unzipped size; the serving
        # packages are also kept under the 50 MB of a direct upload.
        too_big = report.unzipped_bytes > UNZIPPED_LIMIT_BYTES or (
            not trains and report.zipped_bytes > ZIPPED_LIMIT_BYTES
        )
        if too_big:
            failures.append(f"{report.function} is over Lambda's package size limits")
    if failures:
        raise TicketEnrichError("; ".join(failures))
    model_line = (
        f"model loaded from {args.model_s3_uri} at cold start"
        if args.model_s3_uri
        else "model bundled under /var/task/model"
    )
    out.write(
        f"{model_line}; no scikit-learn, SciPy, pandas or NumPy in any serving package "
        "(the retrain function's package has them and no model)\n"
    )
    if args.dry_run:
        out.write("dry run: nothing was uploaded or deployed\n")
        return 0
    if args.model_s3_uri:
        parameters.update(_upload_model(model_dir, args.model_s3_uri, args.region))
    command = [
        sam,
        "deploy",
        "--template-file",
        str(built),
        "--stack-name",
        args.stack_name,
        "--capabilities",
        "CAPABILITY_IAM",
        "--resolve-s3",
        "--no-fail-on-empty-changeset",
        "--no-confirm-changeset",
    ]
    if args.region:
        command += ["--region", args.region]
    if parameters:
        command += ["--parameter-overrides", *(f"{k}={v}" for k, v in parameters.items())]
    _say("sam deploy " + " ".join(command[2:]))
    return subprocess.run(command, env=sam_environment(), check=False).returncode


def _upload_model(model_dir: Path, uri: str, region: str | None) -> dict[str, str]:
    import boto3

    from adapters.aws.s3_model import split_s3_uri, upload_artifact

    client = boto3.session.Session(region_name=region).client("s3")
    sha = upload_artifact(client, model_dir, uri)
    bucket, prefix = split_s3_uri(uri)
    _say(f"model uploaded to {uri} (checksums.json SHA-256 {sha})")
    return {"ModelS3Bucket": bucket, "ModelS3Prefix": prefix, "ModelSha256": sha}
