"""An event stream's response (api/tasks.py, _HeldStream) at the ASGI level: it
ends when the body ends or when the client leaves, releases its slot either way,
and lets any other cancel through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.types import Message

from falsework.api.tasks import _HeldStream


class Client:
    """The server's side of one connection: what was sent, and a disconnect to
    hand to ``receive`` when the test says so."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.left = asyncio.Event()
        self.wrote = asyncio.Event()  # some of the body went out
        self.asked = 0

    async def receive(self) -> Message:
        self.asked += 1
        if self.asked == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message.get("body"):
            self.wrote.set()

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def held(body: AsyncIterator[bytes]) -> tuple[_HeldStream, list[str]]:
    released: list[str] = []
    return _HeldStream(body, lambda: released.append("slot"), media_type="text/event-stream"), (
        released
    )


async def test_a_stream_that_ends_is_complete_and_releases_its_slot() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        await asyncio.sleep(0)
        yield b"b"

    client = Client()
    response, released = held(body())
    await response({"type": "http"}, client.receive, client.send)
    assert client.body == b"ab"
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert released == ["slot"]
    # no cancel is left pending for the request's task
    await asyncio.sleep(0.01)


async def test_a_client_that_leaves_ends_the_stream() -> None:
    closed: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await asyncio.sleep(3600)  # a task that runs on
            yield b"never"
        finally:
            closed.append("body")

    client = Client()
    response, released = held(body())
    writing = asyncio.create_task(response({"type": "http"}, client.receive, client.send))
    await asyncio.wait_for(client.wrote.wait(), 5)
    # one plain task waits for the client (no anyio task group around the writing)
    names = [t.get_name() for t in asyncio.all_tasks()]
    assert names.count("falsework-stream-listener") == 1
    client.left.set()
    await asyncio.wait_for(writing, 5)  # returns, not cancelled
    assert not writing.cancelled()
    assert writing.result() is None
    assert client.body == b"first"
    assert released == ["slot"]
    assert closed == ["body"]


async def test_another_cancel_goes_on_up() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        await asyncio.sleep(3600)

    client = Client()
    response, released = held(body())
    writing = asyncio.create_task(response({"type": "http"}, client.receive, client.send))
    await asyncio.wait_for(client.wrote.wait(), 5)
    writing.cancel()  # a shutdown, say
    with pytest.raises(asyncio.CancelledError):
        await writing
    assert released == ["slot"]
