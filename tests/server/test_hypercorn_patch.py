"""The local server on trio survives a response written while hypercorn closes the socket."""

from __future__ import annotations

import pytest
import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.tcp_server import TCPServer

from nexus_async.server._serve import _patch_trio_send


class _BusyStream:
    async def send_all(self, data: bytes) -> None:  # as while another task sends EOF
        raise trio.BusyResourceError("another task is currently sending data on this SocketStream")


class _Protocol:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def handle(self, event: Event) -> None:
        self.events.append(event)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_send_racing_the_close_is_a_closed_peer_not_a_crash() -> None:
    _patch_trio_send()
    server = TCPServer.__new__(TCPServer)  # only what `protocol_send` touches
    server.stream = _BusyStream()  # type: ignore[assignment]
    server.send_lock = trio.Lock()
    protocol = _Protocol()
    server.protocol = protocol  # type: ignore[assignment]
    await server.protocol_send(RawData(data=b"HTTP/1.1 400 Bad Request\r\n\r\n"))
    assert [type(event) for event in protocol.events] == [Closed]
