"""A small DynamoDB client on the standard library: JSON 1.0 over one kept-alive HTTPS
connection, signed with Signature Version 4.

Why not botocore: the API function's cold start. Importing botocore and building its DynamoDB
client (service model, endpoint rules, the docs machinery its waiters import) costs about
150 ms before the first request, and its first request resolves endpoint rules on top; the
issue's budget for the whole adapter is 300 ms. DynamoDB's low-level API is plain JSON whose
request and response shapes are exactly botocore's low-level ones (typed attribute values,
numbers as strings), so the store calls this client with the same operation names and
parameters it would pass to botocore's (`put_item(TableName=..., Item=...)`).

What it does: SigV4 signing (`sign`, checked against botocore's signer in the tests and by
moto's server with authentication enforced), the ``x-amz-crc32`` check of each response,
standard-mode retries (throttling, 5xx, dropped connections; full-jitter exponential backoff),
connect and read timeouts, and credentials from the environment as Lambda provides them. Where
the environment has none (a developer's profile or SSO), it asks botocore's credential chain
once, imported only then.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import random
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

SERVICE = "dynamodb"
TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
# Error codes DynamoDB answers with HTTP 400 that standard-mode retries (besides 5xx).
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TransactionInProgressException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


class DynamoDBError(Exception):
    """DynamoDB refused a request. ``code`` is the short error type
    (``ConditionalCheckFailedException``); ``response`` carries it as botocore's
    ``ClientError.response`` does (``{"Error": {"Code", "Message"}, ...}``, plus the body's other
    fields such as ``CancellationReasons``)."""

    def __init__(self, code: str, message: str, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.code = code
        self.status = status
        extra = {k: v for k, v in body.items() if k not in ("__type", "message", "Message")}
        self.response: dict[str, Any] = {"Error": {"Code": code, "Message": message}, **extra}


class DynamoDBUnavailable(Exception):
    """No answer from DynamoDB after the retries: connection refused, reset or timed out."""


@dataclass(frozen=True)
class Credentials:
    """An access key, with the session token temporary credentials carry."""

    access_key: str
    secret_key: str
    token: str | None = None


def environment_credentials(environ: Mapping[str, str] = os.environ) -> Credentials | None:
    """The credentials Lambda puts in every function's environment, if present."""
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    return Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or None)


def botocore_credentials() -> Credentials:
    """Credentials from botocore's full chain (profiles, SSO, instance roles), frozen now."""
    import botocore.session

    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise DynamoDBUnavailable("no AWS credentials found (environment, profile or role)")
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def default_endpoint(region: str) -> str:
    """DynamoDB's public endpoint in a region."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://dynamodb.{region}.{suffix}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign(
    headers: dict[str, str],
    body: bytes,
    *,
    host: str,
    region: str,
    credentials: Credentials,
    now: datetime,
    service: str = SERVICE,
) -> dict[str, str]:
    """The headers of a signed ``POST /`` (SigV4): ``headers`` plus Host, X-Amz-Date, the
    session token when there is one, and Authorization. Every header given is signed."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {**headers, "Host": host, "X-Amz-Date": amz_date}
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    canonical = {name.lower(): " ".join(value.strip().split()) for name, value in signed.items()}
    names = sorted(canonical)
    signed_headers = ";".join(names)
    request = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{name}:{canonical[name]}\n" for name in names),
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(request.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{credentials.secret_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return signed


class DynamoDBClient:
    """The DynamoDB operations the ticket store uses, with botocore's low-level signatures:
    keyword parameters in, the parsed JSON answer out, `DynamoDBError` for a refusal and
    `DynamoDBUnavailable` when DynamoDB cannot be reached."""

    def __init__(
        self,
        region: str,
        *,
        endpoint_url: str | None = None,
        credentials: Credentials | Callable[[], Credentials] | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_attempts: int = 4,
        base_backoff_s: float = 0.05,
        max_backoff_s: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.region = region
        url = urlsplit(endpoint_url or default_endpoint(region))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint_url!r}")
        self._https = url.scheme == "https"
        self._hostname = url.hostname
        self._port = url.port
        self.host = url.netloc
        self._credentials = credentials
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._max_attempts = max_attempts
        self._base_backoff_s = base_backoff_s
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._local = threading.local()

    # -- operations (botocore's names and parameters) ------------------------------------------

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self.call("GetItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self.call("PutItem", params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        return self.call("UpdateItem", params)

    def delete_item(self, **params: Any) -> dict[str, Any]:
        return self.call("DeleteItem", params)

    def query(self, **params: Any) -> dict[str, Any]:
        return self.call("Query", params)

    def scan(self, **params: Any) -> dict[str, Any]:
        return self.call("Scan", params)

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        # As botocore does: a token makes a retry of a transaction that did commit (its answer
        # lost) succeed again instead of failing its conditions.
        params.setdefault("ClientRequestToken", str(uuid.uuid4()))
        return self.call("TransactWriteItems", params)

    # -- the wire -------------------------------------------------------------------------------

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One operation, retried as standard mode retries; its parsed JSON answer."""
        body = json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            try:
                status, payload = self._send(operation, body)
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                if last:
                    raise DynamoDBUnavailable(
                        f"DynamoDB {operation} at {self.host}: {exc!r} after {attempt} attempts"
                    ) from exc
                self._backoff(attempt)
                continue
            answer = _parse(payload, status)
            if status == 200:
                return answer
            error = _error(answer, status)
            if last or not (status >= 500 or error.code in RETRYABLE_CODES):
                raise error
            self._backoff(attempt)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        """Close this thread's connection (another call opens a new one)."""
        self._drop_connection()

    def _send(self, operation: str, body: bytes) -> tuple[int, bytes]:
        headers = sign(
            {
                "Content-Type": CONTENT_TYPE,
                "X-Amz-Target": TARGET_PREFIX + operation,
            },
            body,
            host=self.host,
            region=self.region,
            credentials=self._resolve_credentials(),
            now=datetime.now(UTC),
        )
        headers["Accept-Encoding"] = "identity"
        connection = self._connection()
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        expected = response.getheader("x-amz-crc32")
        if expected is not None and int(expected) != zlib.crc32(payload):
            # A damaged answer: drop the connection and let the retry loop ask again.
            raise http.client.HTTPException("the answer's CRC32 does not match x-amz-crc32")
        if response.will_close:
            self._drop_connection()
        return response.status, payload

    def _resolve_credentials(self) -> Credentials:
        source = self._credentials
        if isinstance(source, Credentials):
            return source
        if callable(source):
            return source()
        found = environment_credentials()
        if found is None:
            found = botocore_credentials()
        self._credentials = found
        return found

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._https:
                connection = http.client.HTTPSConnection(
                    self._hostname,
                    self._port,
                    timeout=self._connect_timeout_s,
                    context=_tls_context(),
                )
            else:
                connection = http.client.HTTPConnection(
                    self._hostname, self._port, timeout=self._connect_timeout_s
                )
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(self._read_timeout_s)
            self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _backoff(self, attempt: int) -> None:
        ceiling = min(self._max_backoff_s, self._base_backoff_s * 2 ** (attempt - 1))
        self._sleep(random.uniform(0, ceiling))


def _parse(payload: bytes, status: int) -> dict[str, Any]:
    if not payload:
        return {}
    try:
        answer = json.loads(payload)
    except ValueError:
        return {"__type": f"HTTP{status}", "message": payload[:200].decode("utf-8", "replace")}
    return answer if isinstance(answer, dict) else {}


def _error(body: Mapping[str, Any], status: int) -> DynamoDBError:
    kind = str(body.get("__type") or f"HTTP{status}")
    code = kind.rsplit("#", 1)[-1]
    message = str(body.get("message") or body.get("Message") or "")
    return DynamoDBError(code, message, status, body)


_TLS: Any = None


def _tls_context() -> Any:
    """The TLS context for HTTPS: certifi's CA bundle when installed (as botocore uses), else
    the system's; built once."""
    global _TLS
    if _TLS is None:
        import ssl

        try:
            import certifi
        except ImportError:
            _TLS = ssl.create_default_context()
        else:
            _TLS = ssl.create_default_context(cafile=certifi.where())
    return _TLS
