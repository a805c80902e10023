"""Settings: one class, read from the environment with the ``CREDITPOOL_`` prefix.

Every field has a default that works out of the box (a SQLite file in the working
directory), so ``creditpool demo`` runs with no set-up at all.
"""

from __future__ import annotations

import ipaddress
from typing import Literal, TypeAlias

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///creditpool.db"
REPORT_SPAN_DAYS_MAX: int | None = None  # days one report may cover: no cap (rows stream)
SESSION_TTL_S = 8 * 3600  # a browser session lasts a working day
PORTAL_LINK_TTL_S = 300  # a one-time portal link must be opened within five minutes
HOLD_TTL_S_DEFAULT = 15 * 60  # a hold lasts a quarter of an hour unless asked otherwise
HOLD_TTL_S_MAX = 24 * 3600  # and at most a day
WEBHOOK_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000,36000,36000,36000,36000"
SqliteSynchronous: TypeAlias = Literal["full", "normal"]


class Settings(BaseSettings):
    """``CREDITPOOL_DATABASE_URL``: ``sqlite:///path.db`` or ``postgresql://user@host/db``."""

    model_config = SettingsConfigDict(env_prefix="CREDITPOOL_")

    database_url: str = DEFAULT_DATABASE_URL
    # SQLite's PRAGMA synchronous. "full": every acknowledged change is on disk before the
    # answer (survives a power cut). "normal": faster commits, but in WAL mode a power cut
    # or OS crash may lose the last acknowledged changes (the file stays consistent).
    sqlite_synchronous: SqliteSynchronous = "full"
    host: str = "127.0.0.1"
    port: int = 8000
    # Server processes; SQLite always runs one (one writer per database file).
    workers: int = 1
    # Slow or oversized requests (api/http.py): the request line and headers must arrive
    # within request_header_timeout_s of the connection (or of the request's first byte on
    # a kept-alive connection) and fit in request_header_bytes_max; the body must arrive
    # within request_body_timeout_s of the headers. Else 408 (or 431) and the connection
    # is closed. A reverse proxy in front should have its own (docs/DEPLOYMENT.md).
    request_header_timeout_s: float = Field(default=30.0, gt=0)
    request_body_timeout_s: float = Field(default=30.0, gt=0)
    request_header_bytes_max: int = Field(default=16 * 1024, ge=1024)
    # The longest date range one report may cover, in days; unset, any range (reports
    # stream their rows, so a long range costs only the rows it holds).
    report_span_days_max: int | None = Field(default=REPORT_SPAN_DAYS_MAX, ge=1)
    # Event streams (GET /v1/orgs/{org}/events): a heartbeat comment after this many quiet
    # seconds (also how often missed notifications are looked for), and the longest a
    # stream stays open before the server ends it (EventSource reconnects, missing nothing).
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    sse_lifetime_s_max: float = Field(default=300.0, gt=0)
    # Signs browser session cookies. Unset: a secret generated once per database and
    # stored in it, which every server process on that database shares.
    session_secret: str | None = None
    # How long a browser session lasts, and how soon a one-time portal link must be opened.
    session_ttl_s: int = SESSION_TTL_S
    portal_link_ttl_s: int = PORTAL_LINK_TTL_S
    # Holds: the time to live of a hold when the caller gives none, and the longest allowed.
    hold_ttl_s_default: int = Field(default=HOLD_TTL_S_DEFAULT, gt=0)
    hold_ttl_s_max: int = Field(default=HOLD_TTL_S_MAX, gt=0)
    # How often each server process writes what fell due while nothing happened (a hold or
    # a grant that ran out, a grant that became available), so live pages hear of it.
    sweep_interval_s: float = Field(default=60.0, gt=0)
    # Encrypts stored webhook secrets. Unset: a random key kept in ``secret_key_file``
    # (made on first use, mode 0600). Every server process of one database needs the same
    # key: set it in production.
    secret_key: str | None = None
    # None: beside a SQLite database file (``<file>.secret-key``), else
    # ``creditpool-secret.key`` in the working directory.
    secret_key_file: str | None = None
    # Webhooks. Deliveries to loopback, private, link-local and metadata addresses are
    # refused unless one of these comma-separated CIDRs allows them.
    webhook_allowed_networks: str = ""
    # Seconds before each retry after a failed attempt (each with +-10% jitter); when they
    # are spent the delivery has failed: 2.8 days in all (Svix's steps, then every 10 h).
    webhook_retry_schedule: str = WEBHOOK_RETRY_SCHEDULE
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # An endpoint failing with no success for this long is disabled.
    webhook_disable_after_s: float = Field(default=5 * 24 * 3600.0, gt=0)
    # How often a delivery worker looks for due deliveries when nothing woke it earlier.
    webhook_poll_s: float = Field(default=0.25, gt=0)
    # Deliveries one worker sends at once.
    webhook_concurrency: int = Field(default=8, ge=1, le=64)
    # Whether `creditpool serve` runs a delivery worker in each process.
    webhook_worker: bool = True
    # `creditpool serve --demo`: /demo/admin, /demo/member and /demo/staff open sessions.
    demo: bool = False
    # Operations. /metrics asks for ``Authorization: Bearer <metrics_token>`` when it is set.
    metrics_token: str | None = None
    # Requests per API key, in each server process (http/ratelimit.py): "100/second",
    # "6000/minute"; unset, no limit. The burst is how many may come at once (default: the
    # rate's count): burst requests in any burst/rate seconds. Over it, 429 with
    # Retry-After. Counted per process: with N workers (--workers, or N servers behind a
    # proxy), a key may get up to N times the rate and N times the burst; set the rate to
    # the limit wanted divided by N, or limit at the proxy.
    rate_limit: str | None = None
    rate_limit_burst: int | None = Field(default=None, ge=1)
    # "json": one JSON line per request on stdout (route, status, duration, org, key id,
    # request id). "text": no line per request.
    log_format: Literal["text", "json"] = "text"
    # On SIGTERM, how long requests in progress may take to finish before the process ends.
    shutdown_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_schedule(value)  # a clear error at start-up, not at the first failure
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError as error:
                    raise ValueError(f"not a network (CIDR): {part.strip()!r}") from error
        return value

    @property
    def webhook_retry_delays_s(self) -> list[float]:
        return parse_schedule(self.webhook_retry_schedule)


def parse_schedule(spec: str) -> list[float]:
    """``5,300,1800``: seconds before each retry."""
    try:
        delays = [float(part) for part in spec.split(",") if part.strip()]
    except ValueError as error:
        raise ValueError(f"CREDITPOOL_WEBHOOK_RETRY_SCHEDULE: {error}") from error
    if any(d < 0 for d in delays):
        raise ValueError("CREDITPOOL_WEBHOOK_RETRY_SCHEDULE: delays cannot be negative")
    return delays
