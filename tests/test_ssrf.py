"""The SSRF guard: only public http(s) targets, after name resolution.

Every name goes through an injected resolver; no test asks real DNS.
"""

from __future__ import annotations

import socket

import pytest

from bridge.errors import DeliveryError
from bridge.ssrf import UnsafeTargetError, check_target

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


class FakeResolver:
    """Answer like ``socket.getaddrinfo`` from a fixed table, noting each ask."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int, **kwargs: object) -> list[tuple]:
        self.asked.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [self.entry(address, port) for address in self.table[host]]

    @staticmethod
    def entry(address: str, port: int) -> tuple:
        if ":" in address:
            return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
        return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


RESOLVER = FakeResolver(
    {
        "localhost": ["127.0.0.1", "::1"],
        "hooks.example.org": [PUBLIC_V4, PUBLIC_V6],
        "sneaky.example.org": ["127.0.0.1"],
        "half.example.org": [PUBLIC_V4, "10.1.2.3"],
        "mapped.example.org": ["::ffff:192.168.1.20"],
        "zoned.example.org": ["fe80::1%eth0"],
    }
)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1 is loopback"),
        ("http://10.0.0.5/", "10.0.0.5 is private"),
        ("http://172.16.4.4/", "private"),
        ("http://192.168.0.10:8080/hook", "private"),
        ("http://169.254.169.254/latest", "169.254.169.254 is link-local"),
        ("http://[::1]/", "::1 is loopback"),
        ("http://[fc00::5]/", "private"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.251/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://100.64.0.1/", "non-global"),
        ("http://[::7f00:1]/", "reserved"),
        ("http://[::ffff:127.0.0.1]/", r"\(127.0.0.1\) is loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://localhost/", r"localhost \(127.0.0.1\) is loopback"),
        ("https://sneaky.example.org/hook", r"sneaky.example.org \(127.0.0.1\)"),
        ("https://half.example.org/", r"half.example.org \(10.1.2.3\) is private"),
        ("https://mapped.example.org/", r"\(192.168.1.20\) is private"),
        ("https://zoned.example.org/", r"\(fe80::1\) is link-local"),
    ],
)
def test_refuses_targets_that_are_not_public(url, reason):
    with pytest.raises(UnsafeTargetError, match=reason):
        check_target(url, resolve=RESOLVER)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://x", "scheme must be http or https; got 'ftp'"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("hooks.example.org/path", "scheme must be http or https"),
        ("http:///path-only", "a host is required"),
        ("http://hooks.example.org:99999/", "port"),
        ("https://nowhere.invalid/", "cannot resolve host 'nowhere.invalid'"),
    ],
)
def test_refuses_bad_schemes_hosts_ports_and_unknown_names(url, reason):
    with pytest.raises(UnsafeTargetError, match=reason):
        check_target(url, resolve=RESOLVER)


def test_unsafe_target_error_is_a_delivery_and_value_error():
    with pytest.raises(UnsafeTargetError) as caught:
        check_target("http://127.0.0.1/", resolve=RESOLVER)

    assert isinstance(caught.value, DeliveryError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason == str(caught.value)


def test_a_name_resolving_only_to_public_addresses_is_allowed():
    resolver = FakeResolver(RESOLVER.table)

    check_target("https://hooks.example.org/progress", resolve=resolver)
    check_target("http://hooks.example.org:8443/progress", resolve=resolver)

    assert resolver.asked == [("hooks.example.org", 443), ("hooks.example.org", 8443)]


def test_public_literals_are_allowed_without_resolving():
    resolver = FakeResolver({})

    check_target(f"http://{PUBLIC_V4}/hook", resolve=resolver)
    check_target(f"https://[{PUBLIC_V6}]/hook", resolve=resolver)
    check_target(f"https://[::ffff:{PUBLIC_V4}]/hook", resolve=resolver)

    assert resolver.asked == []


def test_allowed_networks_let_loopback_through_and_nothing_else():
    allowed = ("127.0.0.0/8",)

    check_target("http://127.0.0.1:9000/hook", allowed, resolve=RESOLVER)
    check_target("http://sneaky.example.org/", allowed, resolve=RESOLVER)
    check_target("http://[::ffff:127.0.0.1]/", allowed, resolve=RESOLVER)
    with pytest.raises(UnsafeTargetError, match="::1 is loopback"):
        check_target("http://[::1]/", allowed, resolve=RESOLVER)
    with pytest.raises(UnsafeTargetError, match=r"\(::1\) is loopback"):
        check_target("http://localhost/", allowed, resolve=RESOLVER)
    with pytest.raises(UnsafeTargetError, match="10.0.0.5 is private"):
        check_target("http://10.0.0.5/", allowed, resolve=RESOLVER)


def test_allowed_networks_cover_ipv6_too():
    check_target("http://localhost/", ("127.0.0.0/8", "::1/128"), resolve=RESOLVER)


@pytest.mark.parametrize("url", ["http://[::1", "https://[not-an-address]/hook"])
def test_a_url_that_does_not_parse_is_refused_not_raised_as_a_crash(url):
    with pytest.raises(UnsafeTargetError, match="does not parse"):
        check_target(url)
