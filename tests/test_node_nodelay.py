"""Distribution sockets turn off Nagle's algorithm, as OTP's do.

Without TCP_NODELAY on accepted connections every small reply (an rpc result, a
pong) waits for the peer's delayed ACK: about 40 ms per round trip on Linux.
"""

from __future__ import annotations

import asyncio
import socket

from pyekka.node.node import _listen_socket


async def test_accepted_connections_have_tcp_nodelay() -> None:
    sock = _listen_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = writer.get_extra_info("socket")
        accepted.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_accept, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(accepted, 10) != 0
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
