"""Loopback helpers for the receiver tests of both listeners: connections from 127.0.0.x sources,
polling with a deadline, small socket buffers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds (a deadline, not a timing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def connect_from(source: str, port: int, *, rcvbuf: int | None = None) -> socket.socket:
    """A non-blocking socket connected to 127.0.0.1:``port`` from the loopback address ``source``."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: a small window
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def open_from(source: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream connection to 127.0.0.1:``port`` from the loopback address ``source`` (127.0.0.2, ...)."""
    return await asyncio.open_connection(sock=await connect_from(source, port))


def shrink_send_buffers(sockets: tuple[Any, ...]) -> None:
    """Accepted sockets inherit the listener's SO_SNDBUF: keep the kernel from hiding unread replies."""
    for sock in sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def read_to_close(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes:
    """What the server sent before closing (a close with unread input arrives as a reset)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    except ConnectionResetError:
        return b""
