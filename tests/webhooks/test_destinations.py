"""The destination check: only public addresses, unless private ones are allowed; every address
a name resolves to counts; literal addresses are judged without DNS."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from ipaddress import ip_address

import httpx
import pytest

from adapters.webhooks.destinations import (
    Destination,
    RefusedDestination,
    Resolve,
    check,
    refusal,
)

PUBLIC_V4, PUBLIC_V6 = "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def answers(*addresses: str) -> Resolve:
    """A resolver that answers every name with these addresses."""
    return lambda _host: addresses


def no_dns(host: str) -> Iterable[str]:
    raise AssertionError(f"{host} was looked up")


def unknown(host: str) -> Iterable[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback"),
        ("127.8.9.10", "a loopback"),
        ("10.0.0.5", "a private"),
        ("172.16.0.1", "a private"),
        ("172.31.255.254", "a private"),
        ("192.168.1.1", "a private"),
        ("169.254.169.254", "a link-local"),
        ("0.0.0.0", "an unspecified"),  # noqa: S104  # an address under test, not a bind
        ("100.64.0.1", "a shared (carrier-grade NAT)"),
        ("100.127.255.254", "a shared (carrier-grade NAT)"),
        ("224.0.0.1", "a multicast"),
        ("::1", "a loopback"),
        ("::", "an unspecified"),
        ("fe80::1", "a link-local"),
        ("fc00::1", "a private"),
        ("fd12:3456::1", "a private"),
        ("ff02::1", "a multicast"),
        ("ff0e::1", "a multicast"),
    ],
)
def test_a_name_resolving_to_a_non_public_address_is_refused(address: str, kind: str) -> None:
    reason = refusal("https://hooks.example/in", allow_private=False, resolve=answers(address))
    assert reason == f"resolves to {kind} address {address}"


@pytest.mark.parametrize("address", ["240.0.0.1", "192.0.2.1", "198.18.0.1", "2001:db8::1"])
def test_reserved_documentation_and_benchmark_ranges_are_refused_too(address: str) -> None:
    reason = refusal("https://hooks.example/", allow_private=False, resolve=answers(address))
    assert reason is not None
    assert reason.endswith(f" address {address}")


def test_the_reason_names_the_address() -> None:
    reason = refusal("https://hooks.example/", allow_private=False, resolve=answers("10.0.0.5"))
    assert reason == "resolves to a private address 10.0.0.5"


def test_an_ipv4_mapped_ipv6_address_is_judged_by_the_ipv4_inside() -> None:
    mapped = answers("::ffff:127.0.0.1")
    reason = refusal("https://hooks.example/", allow_private=False, resolve=mapped)
    assert reason == "resolves to a loopback address 127.0.0.1"
    assert refusal("http://[::ffff:10.1.2.3]/", allow_private=False, resolve=no_dns) == (
        "points to a private address 10.1.2.3"
    )


def test_any_non_public_address_among_several_refuses_the_name() -> None:
    mixed = answers(PUBLIC_V4, PUBLIC_V6, "10.0.0.5")
    reason = refusal("https://hooks.example/", allow_private=False, resolve=mixed)
    assert reason == "resolves to a private address 10.0.0.5"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000/hook", "points to a loopback address 127.0.0.1"),
        ("http://[::1]/hook", "points to a loopback address ::1"),
        ("http://10.0.0.5/", "points to a private address 10.0.0.5"),
        ("http://0.0.0.0/", "points to an unspecified address 0.0.0.0"),
        ("http://[fe80::1]/", "points to a link-local address fe80::1"),
        ("http://[::ffff:127.0.0.1]/", "points to a loopback address 127.0.0.1"),
        (f"http://{PUBLIC_V4}/", None),
        (f"http://[{PUBLIC_V6}]/", None),
    ],
)
def test_a_literal_address_is_judged_without_dns(url: str, reason: str | None) -> None:
    assert refusal(url, allow_private=False, resolve=no_dns) == reason


def test_a_public_name_may_be_called() -> None:
    destination = check(
        "https://hooks.example/in?tenant=1",
        allow_private=False,
        resolve=answers(PUBLIC_V4, PUBLIC_V6, PUBLIC_V4),
    )
    assert destination == Destination(
        url=httpx.URL("https://hooks.example/in?tenant=1"),
        host="hooks.example",
        port=443,
        addresses=(ip_address(PUBLIC_V4), ip_address(PUBLIC_V6)),
    )


def test_the_checked_host_is_the_one_connected_to() -> None:
    destination = check(
        "HTTP://Bücher.Example:8080/", allow_private=False, resolve=answers(PUBLIC_V4)
    )
    assert (destination.host, destination.port) == ("xn--bcher-kva.example", 8080)


def test_allow_private_lets_private_addresses_through() -> None:
    for address in ("127.0.0.1", "10.0.0.5", "fe80::1", "100.64.0.1"):
        assert (
            refusal("http://hooks.internal/", allow_private=True, resolve=answers(address)) is None
        )
    assert refusal("http://127.0.0.1:4000/", allow_private=True, resolve=no_dns) is None


@pytest.mark.parametrize(
    "url",
    ["ftp://hooks.example/", "file:///etc/passwd", "gopher://hooks.example/", "hooks.example/in"],
)
def test_only_http_and_https_urls_are_called(url: str) -> None:
    for allow_private in (False, True):
        reason = refusal(url, allow_private=allow_private, resolve=answers(PUBLIC_V4))
        assert reason == "must be an http or https URL"


@pytest.mark.parametrize(
    "url", ["https://user:secret@hooks.example/", "https://user@hooks.example/", "http://:pw@h/"]
)
def test_credentials_in_the_url_are_refused(url: str) -> None:
    reason = refusal(url, allow_private=True, resolve=answers(PUBLIC_V4))
    assert reason == "must not carry a user name or password"


@pytest.mark.parametrize("url", ["http:///hook", "https://", "http://:8080/"])
def test_a_url_without_a_host_is_refused(url: str) -> None:
    assert refusal(url, allow_private=True, resolve=answers(PUBLIC_V4)) == "has no host"


def test_a_url_longer_than_2000_characters_is_refused() -> None:
    base = "https://hooks.example/"
    longest = base + "a" * (2000 - len(base))
    assert refusal(longest, allow_private=False, resolve=answers(PUBLIC_V4)) is None
    assert refusal(longest + "a", allow_private=False, resolve=answers(PUBLIC_V4)) == (
        "is longer than 2000 characters"
    )


@pytest.mark.parametrize("resolve", [unknown, answers()], ids=["lookup fails", "no address"])
def test_a_host_that_does_not_resolve_is_refused(resolve: Resolve) -> None:
    for allow_private in (False, True):
        reason = refusal("https://hooks.example/", allow_private=allow_private, resolve=resolve)
        assert reason == "does not resolve"


def test_check_raises_the_reason() -> None:
    with pytest.raises(RefusedDestination, match=r"^resolves to a private address 10\.0\.0\.5$"):
        check("https://hooks.example/", allow_private=False, resolve=answers("10.0.0.5"))


def test_the_system_resolver_is_used_by_default() -> None:
    # localhost resolves to loopback addresses on any machine; .invalid never resolves.
    assert (refusal("http://localhost:4000/", allow_private=False) or "").startswith(
        "resolves to a loopback address"
    )
    assert refusal("http://localhost:4000/", allow_private=True) is None
    assert refusal("https://nothing.invalid/", allow_private=True) == "does not resolve"
