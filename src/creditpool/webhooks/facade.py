"""The library's webhook and event methods, mixed into ``CreditPool`` (one transaction each;
delegation only)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from creditpool import queries as q
from creditpool import validation as check
from creditpool.reads import reading
from creditpool.settings import Settings
from creditpool.storage.uow import Database, Tx
from creditpool.webhooks import network
from creditpool.webhooks import service as webhooks
from creditpool.webhooks.models import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)
from creditpool.webhooks.network import IPNetwork
from creditpool.webhooks.secrets import SecretBox
from creditpool.webhooks.worker import Deliverer


class WebhooksFacade:
    """Writes run through ``_write`` (``CreditPool``'s directory-change transaction): the
    HTTP layer's idempotency record then commits with the change."""

    db: Database
    settings: Settings
    _write: Callable[[Callable[[Tx], Any]], Any]

    @cached_property
    def secret_box(self) -> SecretBox:
        """Seals webhook secrets with the server's key (made on first use when unset: a
        file beside a SQLite database, else in the working directory)."""
        settings = self.settings
        if not settings.secret_key and settings.secret_key_file is None:
            database = self.db.engine.url.database
            if self.db.dialect == "sqlite" and database and database != ":memory:":
                path = str(Path(database).with_name(Path(database).name + ".secret-key"))
            else:
                path = "creditpool-secret.key"
            settings = settings.model_copy(update={"secret_key_file": path})
        return SecretBox.from_settings(settings)

    @cached_property
    def webhook_networks(self) -> list[IPNetwork]:
        return network.parse_networks(self.settings.webhook_allowed_networks)

    events = reading(q.Events, webhooks.org_events)

    def create_webhook_endpoint(
        self,
        url: str,
        *,
        event_types: list[str] | None = None,
        description: str | None = None,
        enabled: bool = True,
    ) -> WebhookEndpointWithSecret:
        """A new endpoint; its secret is in the answer, and never shown again."""
        created: WebhookEndpointWithSecret = self._write(
            lambda tx: webhooks.create_endpoint(
                tx,
                self.secret_box,
                self.webhook_networks,
                url=url,
                event_types=event_types,
                description=description,
                enabled=enabled,
            )
        )
        return created

    webhook_endpoints = reading(q.WebhookEndpoints, webhooks.list_endpoints)

    def webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        with self.db.read() as tx:
            return webhooks.get_endpoint(tx, endpoint_id)

    def update_webhook_endpoint(self, endpoint_id: str, **changes: Any) -> WebhookEndpoint:
        """Change ``url``, ``event_types``, ``description`` or ``enabled`` (enabling a
        disabled endpoint starts it afresh)."""
        networks = self.webhook_networks
        updated: WebhookEndpoint = self._write(
            lambda tx: webhooks.update_endpoint(tx, networks, endpoint_id, changes)
        )
        return updated

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        self._write(lambda tx: webhooks.delete_endpoint(tx, endpoint_id))

    def rotate_webhook_secret(self, endpoint_id: str) -> WebhookEndpointWithSecret:
        """A new secret; the old one keeps signing beside it for 24 hours."""
        rotated: WebhookEndpointWithSecret = self._write(
            lambda tx: webhooks.rotate_secret(tx, self.secret_box, endpoint_id)
        )
        return rotated

    webhook_deliveries = reading(q.WebhookDeliveries, webhooks.deliveries)

    def webhook_delivery(self, endpoint_id: str, delivery_id: int) -> WebhookDelivery:
        with self.db.read() as tx:
            return webhooks.get_delivery(tx, endpoint_id, delivery_id)

    def retry_webhook_delivery(self, endpoint_id: str, delivery_id: int) -> WebhookDelivery:
        """Send a delivery again now."""
        retried: WebhookDelivery = self._write(
            lambda tx: webhooks.retry(tx, endpoint_id, delivery_id)
        )
        return retried

    def webhook_worker(self) -> Deliverer:
        """A delivery worker on this database (``run(stop)`` delivers until stopped;
        ``run_once()`` does one round). Close it when done."""
        return Deliverer(self.db, self.settings, self.secret_box, self.db.now)

    def test_webhook_endpoint(self, endpoint_id: str) -> WebhookDelivery:
        """Send the endpoint a ``webhook.test`` event."""
        sent: WebhookDelivery = self._write(lambda tx: webhooks.send_test(tx, endpoint_id))
        return sent


_limit = check.page_limit
