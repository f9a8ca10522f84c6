"""A loopback port where nothing listens, for tests of unreachable servers."""

from __future__ import annotations

import socket


def refusing_socket() -> socket.socket:
    """A TCP socket bound to a loopback port of the kernel's choosing and never listening.

    While it is open, connections to its port are refused and no server can take the port, so an
    "unreachable" address stays unreachable; close it (or use it in a ``with`` block) afterwards.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    """The port a socket is bound to."""
    return int(sock.getsockname()[1])
