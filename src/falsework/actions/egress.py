"""Where outbound connections may go: one policy for ``http:request`` and git.

A template (and so any user who runs one) chooses the URLs its steps call. Left
alone, a server would call its own loopback services, the private network it
sits in and the cloud's metadata endpoint for them. ``EgressPolicy`` refuses
those by default: loopback, private (RFC 1918, ULA), shared (CGNAT), link-local
(which holds the metadata addresses 169.254.169.254 and fd00:ec2::254),
multicast, unspecified and reserved ranges, however the address is spelt
(``127.1``, ``0x7f000001``, ``[::ffff:127.0.0.1]``, a name that resolves there).

The check is made on the addresses a name resolves to, *after* DNS, and the
connection then goes to one of exactly those addresses (``addresses()`` for git,
which pins them with ``http.curloptResolve`` / ssh's ``HostName``;
``falsework.actions.transport.EgressTransport`` for httpx, whose
connections are opened by its ``_PinnedBackend``): a name that resolves to a
public address for the check and to ``127.0.0.1`` a moment later (DNS rebinding)
reaches nothing new.

Every failure to reach a host, refused here or by the network, is the same
``UnreachableError`` message; the reason is logged for the operator only, so a
step's error never says whether a port is open.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from falsework.errors import UnreachableError

log = logging.getLogger("falsework.egress")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Refused unless allowed: (what it is, range). Policy as data: docs/operations.md
# lists the same table.
DENIED_RANGES: tuple[tuple[str, IPNetwork], ...] = tuple(
    (what, ipaddress.ip_network(net))
    for what, net in (
        ("unspecified", "0.0.0.0/8"),
        ("private", "10.0.0.0/8"),
        ("shared (CGNAT)", "100.64.0.0/10"),
        ("loopback", "127.0.0.0/8"),
        ("link-local (cloud metadata)", "169.254.0.0/16"),
        ("private", "172.16.0.0/12"),
        ("IETF protocol assignments", "192.0.0.0/24"),
        ("private", "192.168.0.0/16"),
        ("benchmarking", "198.18.0.0/15"),
        ("multicast", "224.0.0.0/4"),
        ("reserved", "240.0.0.0/4"),
        ("unspecified", "::/128"),
        ("loopback", "::1/128"),
        ("discard", "100::/64"),
        ("unique local (private, cloud metadata)", "fc00::/7"),
        ("link-local", "fe80::/10"),
        ("site-local", "fec0::/10"),
        ("multicast", "ff00::/8"),
    )
)
# IPv6 ranges that carry an IPv4 address in their last 32 bits, which is what a
# connection to them may end up reaching (IPv4-compatible, NAT64).
_EMBEDDING = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96"))
_HOST_NAME = re.compile(r"^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z]([a-z0-9-]*[a-z0-9])?$")


def _name(host: str) -> str:
    """A host as the rules compare it: lower case, no brackets, no trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class Rule:
    """One entry of ``egress.allow`` / ``egress.deny``: a network or a host name
    (``*.example.com`` covers the names below example.com, not itself)."""

    text: str
    network: IPNetwork | None = None
    host: str | None = None

    @classmethod
    def parse(cls, text: str) -> Rule:
        entry = str(text).strip()
        try:
            return cls(entry, network=ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            pass
        name = _name(entry)
        if _HOST_NAME.match(name):
            return cls(entry, host=name)
        raise ValueError(
            f"{text!r} is neither an address or network (10.0.0.0/8, ::1) nor a host name "
            "(git.example.com, *.example.com)"
        )

    def matches_name(self, name: str) -> bool:
        if self.host is None:
            return False
        if self.host.startswith("*."):
            return name.endswith(self.host[1:])
        return name == self.host

    def matches_address(self, address: IPAddress) -> bool:
        return self.network is not None and any(
            candidate.version == self.network.version and candidate in self.network
            for candidate in _candidates(address)
        )


def _candidates(address: IPAddress) -> list[IPAddress]:
    """The address and every IPv4 address it carries (``::ffff:127.0.0.1``,
    ``64:ff9b::7f00:1``, ``2002:7f00:1::``): all of them must pass."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        for net in _EMBEDDING:
            if address in net and int(address) > 1:
                found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def denied_range(address: IPAddress) -> str | None:
    """What a default-denied address is (``loopback (127.0.0.0/8)``), else None."""
    for candidate in _candidates(address):
        for what, net in DENIED_RANGES:
            if candidate.version == net.version and candidate in net:
                return f"{what} ({net})"
    return None


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now (numeric spellings included)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class EgressPolicy:
    """Which hosts and addresses outbound connections may reach.

    Precedence: a ``deny`` entry (name or address) refuses; else an ``allow``
    entry allows; else the default-denied ranges refuse; else allowed. An
    unenforced policy (``falsework run`` on one's own machine) allows everything.
    """

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    enforced: bool = True
    # How names are resolved: the system's resolver, or a fixed table in tests.
    resolver: Resolver = system_resolve

    @classmethod
    def from_lists(
        cls, allow: Iterable[str] = (), deny: Iterable[str] = (), **kwargs: Any
    ) -> EgressPolicy:
        return cls(
            allow=tuple(Rule.parse(a) for a in allow),
            deny=tuple(Rule.parse(d) for d in deny),
            **kwargs,
        )

    @classmethod
    def unrestricted(cls) -> EgressPolicy:
        return cls(enforced=False)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why a connection to ``address`` (which ``host`` resolved to) is
        refused, or None when it is allowed."""
        if not self.enforced:
            return None
        name = _name(host)
        for rule in self.deny:
            if rule.matches_name(name) or rule.matches_address(address):
                return f"denied by egress.deny entry {rule.text!r}"
        for rule in self.allow:
            if rule.matches_name(name) or rule.matches_address(address):
                return None
        kind = denied_range(address)
        return f"{address} is {kind}, which is denied by default" if kind else None

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses a connection to ``host:port`` may use, resolved now.

        Raises ``UnreachableError`` (the reason logged) when the name does not
        resolve or none of its addresses is allowed. The caller bounds its time."""
        try:
            found = await self.resolver(_name(host), port)
        except (OSError, UnicodeError) as exc:
            raise unreachable(host, port, f"does not resolve ({exc})") from None
        allowed: list[str] = []
        reasons: list[str] = []
        for text in found:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            reason = self.refusal(host, address)
            if reason is None:
                allowed.append(text)
            else:
                reasons.append(reason)
        if not allowed:
            raise unreachable(host, port, "; ".join(reasons) or "no address")
        return allowed


def unreachable(host: str, port: int | None, reason: str) -> UnreachableError:
    """The one error of every failed connection (the reason logged, not shown)."""
    where = f"{host}:{port}" if port else host
    log.warning("outbound connection to %s refused or failed: %s", where, reason)
    return UnreachableError(unreachable_message(where))


def unreachable_message(where: str) -> str:
    return (
        f"Could not reach {where}: the connection failed, timed out, or is not allowed by "
        "this server's egress policy (the server's log has the reason)"
    )
