"""The port the workers share, in one of two ways (docs/operations.md says which is used):

  reuseport  every worker binds and listens on its own socket with SO_REUSEPORT; the kernel
             spreads new connections over the listening sockets by a hash of their addresses.
             The supervisor keeps one socket bound (never listening) with the same option, so
             the port stays reserved — and `--port 0` is resolved once — while workers come
             and go.
  shared     the supervisor binds and listens; every worker accepts on an inherited copy.
             Whichever worker is woken first accepts what is queued: under load a busy
             worker can take a burst of connections while another sits idle.
"""

from __future__ import annotations

import socket

REUSEPORT = "reuseport"
SHARED = "shared"
MODES = (REUSEPORT, SHARED)
#: aiohttp's own backlog (TCPSite), so a worker queues what a single process would.
BACKLOG = 128


def _new(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def supervisor_socket(mode: str, host: str, port: int) -> socket.socket:
    """The parent's socket: listening (shared) or only bound (reuseport). Its port is the
    one every worker serves, also when `port` was 0."""
    if mode not in MODES:
        raise ValueError(f"unknown listen mode {mode!r}")
    sock = _new(host, port, reuse_port=mode == REUSEPORT)
    if mode == SHARED:
        sock.listen(BACKLOG)
        sock.set_inheritable(True)
    return sock


def worker_socket(host: str, port: int) -> socket.socket:
    """A worker's own listening socket on the supervisor's port (reuseport mode)."""
    sock = _new(host, port, reuse_port=True)
    sock.listen(BACKLOG)
    return sock


def bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
