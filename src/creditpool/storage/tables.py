"""The schema. Every organization-owned table carries ``org_id`` first in its primary key,
so that the data can be distributed by organization (e.g. Citus); the feature catalog is
the one global reference table.

On SQLite the tables with a composite primary key are WITHOUT ROWID: one b-tree per table
instead of a rowid table plus a primary-key index, which halves the pages a change dirties
(measured: see bench/RESULTS.md).

Ids of grants, consumptions and holds are per organization, allocated from the
organization's row under its lock (``object_seq``); ledger entries are numbered per
organization without gaps (``ledger_seq``), which is what event streams resume from.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from creditpool.storage.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(64)
Units = BigInteger

orgs = Table(
    "orgs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("low_balance_thresholds", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ledger_seq", BigInteger, nullable=False),
    Column("object_seq", BigInteger, nullable=False),
    # The instant of the last ledger entry: entries never go back in time.
    Column("ledger_at", UTCDateTime, nullable=True),
    # The earliest not yet logged availability or expiry: lets a change skip the catch-up.
    Column("next_event_at", UTCDateTime, nullable=True),
    # Days before a grant's expiry that ``grant.expiring_soon`` is sent.
    Column("expiry_notice_days", Integer, nullable=False, server_default="7"),
    # The low-balance alerts in force (``core/alerts.py``): which thresholds Left is below
    # and whether it is depleted; each fires once until Left recovers above it.
    Column("alerts", JSON, nullable=True),
    # The longest time to live (seconds) any of its holds was given, NULL before its first:
    # a hold open at an instant t ends by t + this (a past balance reads only those holds,
    # ``repositories.holds.held_at``; migration 0010).
    Column("longest_hold_s", BigInteger, nullable=True),
)

features = Table(
    "features",
    metadata,
    Column("key", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    # rate units (1e-8 credit) per use, or per unit when ``per_unit``
    Column("rate", BigInteger, nullable=False),
    Column("per_unit", Boolean, nullable=False),
    Column("unit", String(64), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

teams = Table(
    "teams",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("monthly_limit", Units, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # Paid usage of the calendar month ``usage_month`` (YYYY-MM, in the organization's
    # zone), kept by every consumption and refund: ``team.limit_crossed`` is decided from it
    # without summing the month's consumptions. NULL: not counted yet (read from them once).
    Column("usage_month", String(7), nullable=True),
    Column("usage_units", Units, nullable=False, server_default="0"),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
    sqlite_with_rowid=False,
)

members = Table(
    "members",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("team_id", ID, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # Shown instead of the user id where present (migration 0006).
    Column("display_name", String(200), nullable=True),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
    ForeignKeyConstraint(["org_id", "team_id"], ["teams.org_id", "teams.id"]),
    sqlite_with_rowid=False,
)

grants = Table(
    "grants",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("amount", Units, nullable=False),
    Column("remaining", Units, nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
    Column("available_from", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("note", Text, nullable=True),
    Column("reference", String(200), nullable=True),
    Column("granted_by", String(200), nullable=True),
    Column("voided_at", UTCDateTime, nullable=True),
    Column("voided_by", String(200), nullable=True),
    Column("void_reason", Text, nullable=True),
    Column("voided_credits", Units, nullable=False),
    Column("added_logged", Boolean, nullable=False),
    Column("expiry_logged", Boolean, nullable=False),
    # Reserved on this grant by open holds (not in ``remaining``); 0 once the grant expired
    # or was voided (what was held on it left the pool with it).
    Column("held", Units, nullable=False, server_default="0"),
    # ``grant.expiring_soon`` was sent (once per grant).
    Column("expiry_noticed", Boolean, nullable=False, server_default=false()),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
    sqlite_with_rowid=False,
)
# The "live" grants (neither voided nor logged as expired) are read on every change.
Index("ix_grants_live", grants.c.org_id, grants.c.expiry_logged, grants.c.voided_at)

consumptions = Table(
    "consumptions",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("feature", ID, nullable=False),
    Column("feature_name", String(500), nullable=True),
    Column("action", String(64), nullable=True),
    Column("integration", String(200), nullable=True),
    Column("user_id", ID, nullable=False),
    Column("team_id", ID, nullable=True),
    Column("quantity", Units, nullable=True),
    Column("rate", BigInteger, nullable=False),
    Column("cost", Units, nullable=False),
    Column("breakdown", JSON, nullable=True),
    Column("requests", Integer, nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("status", String(16), nullable=False),
    Column("refunded_at", UTCDateTime, nullable=True),
    Column("refund_reason", Text, nullable=True),
    Column("refund_restored", Units, nullable=True),
    Column("refund_lost", Units, nullable=True),
    # The hold this consumption settled, if a settle made it.
    Column("hold_id", BigInteger, nullable=True),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
    sqlite_with_rowid=False,
)
Index("ix_consumptions_org_created", consumptions.c.org_id, consumptions.c.created_at)
Index(
    "ix_consumptions_org_user",
    consumptions.c.org_id,
    consumptions.c.user_id,
    consumptions.c.created_at,
)
# Only consumptions of a team (a team's usage and limit): most users may be in none, and a
# consumption without a team then writes no entry here (migration 0008).
Index(
    "ix_consumptions_org_team",
    consumptions.c.org_id,
    consumptions.c.team_id,
    consumptions.c.created_at,
    sqlite_where=consumptions.c.team_id.isnot(None),
    postgresql_where=consumptions.c.team_id.isnot(None),
)

allocations = Table(
    "allocations",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("consumption_id", BigInteger, primary_key=True),
    Column("grant_id", BigInteger, primary_key=True),
    Column("amount", Units, nullable=False),
    ForeignKeyConstraint(["org_id", "consumption_id"], ["consumptions.org_id", "consumptions.id"]),
    ForeignKeyConstraint(["org_id", "grant_id"], ["grants.org_id", "grants.id"]),
    sqlite_with_rowid=False,
)
Index("ix_allocations_grant", allocations.c.org_id, allocations.c.grant_id)

restorations = Table(
    "restorations",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("consumption_id", BigInteger, primary_key=True),
    Column("grant_id", BigInteger, primary_key=True),
    Column("amount", Units, nullable=False),
    ForeignKeyConstraint(["org_id", "consumption_id"], ["consumptions.org_id", "consumptions.id"]),
    ForeignKeyConstraint(["org_id", "grant_id"], ["grants.org_id", "grants.id"]),
    sqlite_with_rowid=False,
)
Index("ix_restorations_grant", restorations.c.org_id, restorations.c.grant_id)

ledger = Table(
    "ledger",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("action", String(32), nullable=False),
    Column("method", String(32), nullable=False),
    Column("credits", Units, nullable=False),
    Column("total_before", Units, nullable=False),
    Column("total_after", Units, nullable=False),
    Column("grant_id", BigInteger, nullable=True),
    Column("consumption_id", BigInteger, nullable=True),
    Column("hold_id", BigInteger, nullable=True),
    # The staff correction (expiry change, void, adjustment) this entry records.
    Column("correction_id", BigInteger, nullable=True),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
    sqlite_with_rowid=False,
)
Index("ix_ledger_org_at", ledger.c.org_id, ledger.c.at)

# Credits reserved before a long job (ids from the organization's ``object_seq``, like
# grants and consumptions). ``status``: open, settled, released, expired.
holds = Table(
    "holds",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("status", String(16), nullable=False),
    Column("amount", Units, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("feature", ID, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("team_id", ID, nullable=True),
    Column("quantity", Units, nullable=True),
    Column("feature_name", String(500), nullable=True),
    Column("action", String(64), nullable=True),
    Column("integration", String(200), nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("consumption_id", BigInteger, nullable=True),
    Column("released", Units, nullable=False),
    Column("lost", Units, nullable=False),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
    sqlite_with_rowid=False,
)
# Open holds are read when one is settled, released or falls due.
Index("ix_holds_org_status", holds.c.org_id, holds.c.status, holds.c.expires_at)
# The holds that may have held credits at a past instant (a past balance): those ending
# after it. An index range of the holds near that instant, not every hold ever made.
# With the columns the filter and the join read (migration 0010): the range is read from the
# index alone, no hold's row looked up.
Index(
    "ix_holds_org_expires",
    holds.c.org_id,
    holds.c.expires_at,
    holds.c.created_at,
    holds.c.closed_at,
    holds.c.id,
)
# A page of one status's holds, newest first: an index range in page order (migration 0010).
Index("ix_holds_org_status_id", holds.c.org_id, holds.c.status, holds.c.id)

# Which grants a hold's credits are held on, and how much on each.
hold_allocations = Table(
    "hold_allocations",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("hold_id", BigInteger, primary_key=True),
    Column("grant_id", BigInteger, primary_key=True),
    Column("amount", Units, nullable=False),
    # Once the hold closed: what went back to this grant (the rest was lost with it).
    Column("returned", Units, nullable=True),
    ForeignKeyConstraint(["org_id", "hold_id"], ["holds.org_id", "holds.id"]),
    ForeignKeyConstraint(["org_id", "grant_id"], ["grants.org_id", "grants.id"]),
    sqlite_with_rowid=False,
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("operation", String(32), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("result", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
    sqlite_with_rowid=False,
)
Index("ix_idempotency_created", idempotency_keys.c.created_at)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("org_id", ID, nullable=True),
    Column("user_id", ID, nullable=True),
    # SHA-256 of the secret: the secret is 32 random bytes, so a fast hash is enough
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
)

# Every idempotency key an API key used, whatever the organization: the response of a
# directory change (organizations, teams, members, features), or, with status 0 and an empty
# body, the claim of a ledger change (its result is the organization's idempotency_keys
# row). The primary key makes an API key's key take effect once.
http_idempotency = Table(
    "http_idempotency",
    metadata,
    # who sent it (an API key id) and the key it chose
    Column("scope", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("org_id", ID, nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    sqlite_with_rowid=False,
)
Index("ix_http_idempotency_created", http_idempotency.c.created_at)

portal_tokens = Table(
    "portal_tokens",
    metadata,
    # SHA-256 of a one-time sign-in token: the token itself is only ever in the link
    Column("token_hash", String(64), primary_key=True),
    Column("org_id", ID, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
)
Index("ix_portal_tokens_expires", portal_tokens.c.expires_at)

app_secrets = Table(
    "app_secrets",
    metadata,
    # Secrets every server process of one database shares (e.g. the session signing key)
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# -- events and webhooks (migration 0005) ------------------------------------------------

# The outbox: every event is written in the transaction of the change that caused it, so an
# event exists exactly when its change committed. ``dispatched`` turns true once the
# delivery worker has made a delivery per matching webhook endpoint. ``dedupe`` makes the
# once-only events (a team's limit crossed in a month, ...) take effect once.
events = Table(
    "events",
    metadata,
    Column("id", String(40), primary_key=True),
    # None only for the vendor-level ``webhook.test``
    Column("org_id", ID, nullable=True),
    Column("type", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("ledger_seq", BigInteger, nullable=True),
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("dispatched", Boolean, nullable=False),
    Column("dedupe", String(200), nullable=True),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
)
Index("ix_events_org_seq", events.c.org_id, events.c.ledger_seq)
# Only once-only events carry a dedupe key (migration 0008: the others write no entry).
Index(
    "ix_events_dedupe",
    events.c.org_id,
    events.c.dedupe,
    unique=True,
    sqlite_where=events.c.dedupe.isnot(None),
    postgresql_where=events.c.dedupe.isnot(None),
)
Index("ix_events_dispatched", events.c.dispatched, events.c.created_at)

# The vendor's endpoints. Secrets are stored encrypted with the server's secret key
# (``webhooks/secrets.py``): a dump of the database alone cannot sign.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", String(500), nullable=True),
    Column("event_types", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("secret", Text, nullable=False),
    # The secret before the last rotation: it signs too until ``old_secret_until``.
    Column("old_secret", Text, nullable=True),
    Column("old_secret_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("failing_since", UTCDateTime, nullable=True),
    Column("disabled_reason", String(500), nullable=True),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("org_id", ID, nullable=True),
    # pending (due at next_attempt_at), delivered, failed (retries exhausted)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"], ondelete="CASCADE"),
    ForeignKeyConstraint(["event_id"], ["events.id"]),
)
Index(
    "ix_webhook_deliveries_endpoint_event",
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.event_id,
    unique=True,
)
Index(
    "ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("delivery_id", BigInteger, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response", Text, nullable=True),
    Column("error", String(500), nullable=True),
    ForeignKeyConstraint(["delivery_id"], ["webhook_deliveries.id"], ondelete="CASCADE"),
)
Index("ix_webhook_attempts_delivery", webhook_attempts.c.delivery_id, webhook_attempts.c.at)

# An organization admin's request for more credits, answered by staff.
credit_requests = Table(
    "credit_requests",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("amount", Units, nullable=False),
    Column("message", Text, nullable=True),
    Column("requested_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # open, granted, dismissed
    Column("status", String(16), nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("closed_by", String(200), nullable=True),
    Column("grant_id", BigInteger, nullable=True),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
    sqlite_with_rowid=False,
)

# -- staff corrections and the price history (migration 0006) -----------------------------

# Every staff correction of an organization's credits, the audit of who, when and why: a
# grant's expiry changed (``expires_before`` -> ``expires_after``, NULL = permanent), credits
# voided from a grant (``credits``: how many; all that was left when the grant was voided
# whole), a manual adjustment (``credits`` signed: negative debits, positive credits back).
# Ids come from the organization's ``object_seq`` like grants and consumptions.
corrections = Table(
    "corrections",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    # who (NULL only for a whole void made through the library without naming anyone)
    Column("by", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Column("grant_id", BigInteger, nullable=True),
    Column("credits", Units, nullable=True),
    Column("expires_before", UTCDateTime, nullable=True),
    Column("expires_after", UTCDateTime, nullable=True),
    ForeignKeyConstraint(["org_id"], ["orgs.id"]),
    sqlite_with_rowid=False,
)
Index("ix_corrections_org_grant", corrections.c.org_id, corrections.c.grant_id)

# Which grants an adjustment drew from (``amount`` < 0) or gave credits back to (> 0).
adjustment_allocations = Table(
    "adjustment_allocations",
    metadata,
    Column("org_id", ID, primary_key=True),
    Column("correction_id", BigInteger, primary_key=True),
    Column("grant_id", BigInteger, primary_key=True),
    Column("amount", Units, nullable=False),
    ForeignKeyConstraint(["org_id", "correction_id"], ["corrections.org_id", "corrections.id"]),
    ForeignKeyConstraint(["org_id", "grant_id"], ["grants.org_id", "grants.id"]),
    sqlite_with_rowid=False,
)
Index(
    "ix_adjustment_allocations_grant",
    adjustment_allocations.c.org_id,
    adjustment_allocations.c.grant_id,
)

# Every price a feature has had, from the instant it applied (``features`` holds the one in
# force; consumptions keep the rate they were charged at).
feature_prices = Table(
    "feature_prices",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("feature", ID, nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("name", String(200), nullable=False),
    Column("rate", BigInteger, nullable=False),
    Column("per_unit", Boolean, nullable=False),
    Column("unit", String(64), nullable=True),
    Column("changed_by", String(200), nullable=True),
    ForeignKeyConstraint(["feature"], ["features.key"]),
)
Index("ix_feature_prices_feature_since", feature_prices.c.feature, feature_prices.c.since)

# -- the audit trail (migration 0007) ---------------------------------------------------------

# Changes that write no ledger entry (an organization created or changed, an API key created
# or revoked, a portal link minted) and refunds, each written in the change's transaction:
# who (``by``: NULL when a library call named no one), when, and what (``details``).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("org_id", ID, nullable=True),
    Column("by", String(200), nullable=True),
    Column("action", String(64), nullable=False),
    Column("details", JSON, nullable=False),
)
Index("ix_audit_log_org", audit_log.c.org_id, audit_log.c.id)
