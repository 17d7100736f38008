"""The ASGI side of shadow mode: one request body, replayed to both implementations.

    body, complete = await read_body(receive, limit)   # the whole body, if small enough
    await legacy_app(scope, replay(body, receive), tee(send, outcome, limit))
    await candidate_app(scope, replay(body, None), capture(outcome))

`tee` sends to the client and keeps a copy; `capture` keeps the candidate's answer (its
background tasks then run, in its rolled-back transaction, as legacy's run for real).
"""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Send

from gateway.shadow.compare import COMPARED_HEADERS, Outcome

__all__ = ["capture", "read_body", "replay", "tee"]


async def read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole request body if it is at most `limit` bytes: (body, True); else what was
    read so far and False (the rest is still to be received)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def replay(body: bytes, then: Receive | None, complete: bool = True) -> Receive:
    """A receive that gives `body` first, then defers to `then` (or waits forever)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        if then is None:
            await asyncio.Event().wait()  # the candidate never sees a disconnect
        assert then is not None
        return await then()

    return receive


def tee(send: Send, outcome: Outcome, limit: int) -> Send:
    """Send to the client, keeping a copy of the status, headers and (bounded) body."""
    chunks: list[bytes] = []

    async def tee(message: Message) -> None:
        if message["type"] == "http.response.start":
            outcome.status = message["status"]
            outcome.headers = _headers(message.get("headers", []))
        elif message["type"] == "http.response.body":
            if sum(map(len, chunks)) <= limit:
                chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                outcome.body = b"".join(chunks)
        await send(message)

    return tee


def capture(outcome: Outcome) -> Send:
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        if message["type"] == "http.response.start":
            outcome.status = message["status"]
            outcome.headers = _headers(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                outcome.body = b"".join(chunks)

    return capture


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    wanted = {name.encode() for name in COMPARED_HEADERS}
    return {k.decode().lower(): v.decode("latin-1") for k, v in raw if k.lower() in wanted}
