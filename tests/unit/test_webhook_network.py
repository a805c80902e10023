"""The SSRF guard: an address inside is refused unless the server allows its network."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from creditpool.webhooks import network
from creditpool.webhooks.network import RefusedAddress


def test_localhost_is_refused_by_default() -> None:
    with pytest.raises(RefusedAddress):
        network.resolve("http://localhost:1/", [])


def test_an_allowed_network_lets_localhost_through() -> None:
    target = network.resolve("http://localhost:1/", [ip_network("127.0.0.0/8")])
    assert str(target.address) == "127.0.0.1"
    assert target.url == "http://127.0.0.1:1/"
    assert target.host == "localhost:1"


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/", "http://10.0.0.1/", "http://[::1]/", "http://0.0.0.0/"]
)
def test_inside_addresses_are_refused(url: str) -> None:
    with pytest.raises(RefusedAddress):
        network.resolve(url, [])
