"""The AWS functions' settings: the core's, plus where the tables, buckets and model live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from core.settings import Settings


class AwsSettings(Settings):
    """`core.settings.Settings` with the AWS resources the functions use (same prefix,
    `TICKET_ENRICH_`); the SAM template sets these on every function."""

    tickets_table: str = Field("ticket-enrich-tickets", description="DynamoDB tickets + outbox.")
    input_prefix: str = Field("incoming/", description="S3 keys under this prefix are batches.")
    output_prefix: str = Field("enriched/", description="Where enriched JSONL batches go.")
    output_bucket: str | None = Field(
        None, description="Bucket for enriched batches; default: the input object's bucket."
    )
    model_s3_uri: str | None = Field(
        None,
        description="s3://bucket/prefix/ of a model artifact to load at cold start; "
        "default: the bundled model_dir.",
    )
    model_sha256: str | None = Field(
        None, description="SHA-256 of the artifact's checksums.json, pinning what S3 serves."
    )
    model_cache_dir: Path = Field(
        Path("/tmp/ticket-enrich/models"), description="Where a model from S3 is cached."
    )
    aws_endpoint_url: str | None = Field(
        None, description="Endpoint of an AWS emulator (tests, local runs); unset in AWS."
    )
    aws_region: str | None = Field(None, description="Region of the clients; default: boto3's.")
    s3_part_bytes: int = Field(
        8 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        description="Multipart upload part size: the most a batch's output holds in memory.",
    )
    dead_letter_queue_url: str | None = Field(
        None,
        description="SQS queue for Kinesis records and S3 batches that can never succeed, each "
        "with the reason; unset: they are reported as failures and retried like any other.",
    )
    outbox_max_passes: int = Field(
        50, ge=1, description="Delivery passes per invocation of the outbox function."
    )
