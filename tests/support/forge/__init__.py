"""Loopback git forges checked against their hosts' OpenAPI descriptions (see
server.py and contract.py)."""

from support.forge.contract import Contract
from support.forge.github import GitHub, github_contract, seed
from support.forge.server import Call, ForgeServer, HttpError, Reply

__all__ = [
    "Call",
    "Contract",
    "ForgeServer",
    "GitHub",
    "HttpError",
    "Reply",
    "github_contract",
    "seed",
]
