"""A link cutter: a TCP forwarder between one node and its broker that can cut the link.

A scenario's "link outage" must look, to both ends, like a cellular link that died: the
broker sees the node's connection lost without a DISCONNECT and publishes its last will
(the "offline" status, edge/link.py), and the node sees its connection fail and its
reconnects refused until the link comes back, journaling meanwhile. Stopping the broker
would cut every node at once; this cuts one.

    with LinkProxy("127.0.0.1", 1883) as proxy:      # or LinkProxy.for_url(mqtt_url)
        config.mqtt.url = proxy.url_for(mqtt_url)     # the node connects through it
        proxy.cut()                                   # every open connection reset now
        proxy.restore()                               # new connections forwarded again

The proxy listens on 127.0.0.1 on a free port (`.port`). Each accepted connection is
forwarded to the upstream in two threads (one per direction), each a loop of blocking
`recv` of a chunk and `sendall` of it: no polling, no per-byte work. `cut()` resets every
open connection at once (SO_LINGER 0, so the close is a TCP RST where the connection is
still open) and, while cut, accepts and resets every new connection at once, so the node's
reconnects fail fast. `restore()` forwards new connections again. Threads are named
"link-proxy:PORT:..." and all end on `stop()` (the context manager's exit).

Development and test tooling: it forwards plain bytes, so an mqtts:// node through it
would check the broker's certificate against 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self
from urllib.parse import urlsplit, urlunsplit

from schemas.runtime.endpoints import parse_mqtt_url
from schemas.runtime.logs import get_logger

log = get_logger("simulators.link_proxy")

CHUNK: Final = 65_536
# SO_LINGER on with a zero timeout: close() discards unsent data and sends an RST.
_ABORT: Final = struct.pack("ii", 1, 0)
_JOIN_TIMEOUT_S: Final = 10.0


class _Link:
    """One forwarded connection: the node's socket and the upstream one.

    Two pump threads use the sockets; `abort` (from any thread) only shuts them down, which
    wakes both pumps, and the last pump to end closes them, so a socket is never closed
    under a thread that is still using it.
    """

    def __init__(
        self,
        client: socket.socket,
        upstream: socket.socket,
        on_end: Callable[[_Link], None],
    ) -> None:
        self.sockets = (client, upstream)
        self._on_end = on_end
        self._lock = threading.Lock()
        self._running = 2
        self._aborted = False
        self.threads: list[threading.Thread] = []

    def abort(self) -> None:
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
            for sock in self.sockets:
                _shut(sock)

    def pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass  # either end gone, or aborted: the link is over
        finally:
            self._pump_ended()

    def _pump_ended(self) -> None:
        self.abort()  # one direction over means the connection is over
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            for sock in self.sockets:
                sock.close()
            self._on_end(self)


def _shut(sock: socket.socket) -> None:
    """Make the coming close an RST, and wake any thread blocked on the socket."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT)
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already reset by the peer: nothing left to shut


def _reset(sock: socket.socket) -> None:
    """Close a socket no thread uses, with an RST."""
    with contextlib.suppress(OSError):  # already reset by the peer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT)
    sock.close()


class LinkProxy:
    """A TCP forwarder to (upstream_host, upstream_port) whose link can be cut and restored."""

    def __init__(
        self, upstream_host: str, upstream_port: int, *, connect_timeout_s: float = 5.0
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._connect_timeout_s = connect_timeout_s
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._cut = False
        self._stopping = False
        self._accepted = 0
        self.port = 0

    @classmethod
    def for_url(cls, mqtt_url: str, *, connect_timeout_s: float = 5.0) -> LinkProxy:
        """A proxy to the broker of an mqtt:// or mqtts:// URL (EndpointError if it is bad)."""
        endpoint = parse_mqtt_url(mqtt_url)
        return cls(endpoint.host, endpoint.port, connect_timeout_s=connect_timeout_s)

    def url_for(self, mqtt_url: str) -> str:
        """`mqtt_url` with its host and port replaced by the proxy's (credentials kept)."""
        parts = urlsplit(mqtt_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        listener = socket.create_server(("127.0.0.1", 0))
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop,
            args=(listener,),
            name=f"link-proxy:{self.port}:accept",
            daemon=True,
        )
        self._accept_thread.start()
        log.info(
            "link_proxy_started", port=self.port, upstream=f"{self.upstream[0]}:{self.upstream[1]}"
        )
        return self

    def stop(self) -> None:
        """Reset every connection, stop accepting and wait for every thread to end."""
        with self._lock:
            if self._stopping or self._listener is None:
                return
            self._stopping = True
        self._wake_accept()
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_TIMEOUT_S)
        self._abort_all()
        self._listener.close()
        log.info("link_proxy_stopped", port=self.port)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the link -----------------------------------------------------------------------------

    def cut(self) -> None:
        """Reset every open connection now; reset new ones until `restore()`. When this
        returns, every forwarding thread of the cut connections has ended."""
        with self._lock:
            self._cut = True
        count = self._abort_all()
        log.info("link_cut", port=self.port, connections=count)

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._cut = False
        log.info("link_restored", port=self.port)

    @property
    def is_cut(self) -> bool:
        with self._lock:
            return self._cut

    @property
    def open_connections(self) -> int:
        """Connections being forwarded now."""
        with self._lock:
            return len(self._links)

    @property
    def accepted(self) -> int:
        """Connections accepted so far (forwarded or reset)."""
        with self._lock:
            return self._accepted

    # -- threads ------------------------------------------------------------------------------

    def _abort_all(self) -> int:
        with self._lock:
            links = list(self._links)
        for link in links:
            link.abort()
        for link in links:
            for thread in link.threads:
                thread.join(_JOIN_TIMEOUT_S)
        return len(links)

    def _wake_accept(self) -> None:
        """Unblock accept() with a connection of our own (portable, unlike shutdown)."""
        # An error means the listener is gone already: accept() has returned.
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._accepted += 1
                refuse, stopping = self._cut, self._stopping
            if stopping:
                _reset(client)
                return
            if refuse:
                _reset(client)
                continue
            self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=self._connect_timeout_s)
        except OSError as exc:
            log.warning("link_proxy_upstream_unreachable", port=self.port, error=str(exc))
            _reset(client)
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream, self._forget)
        name = f"link-proxy:{self.port}:{self._accepted}"
        link.threads = [
            threading.Thread(target=link.pump, args=(client, upstream), name=f"{name}:up"),
            threading.Thread(target=link.pump, args=(upstream, client), name=f"{name}:down"),
        ]
        with self._lock:
            if self._cut or self._stopping:  # cut while we connected: this one too
                link.abort()
            self._links.add(link)
        for thread in link.threads:
            thread.daemon = True
            thread.start()

    def _forget(self, link: _Link) -> None:
        """Called by a link's last pump thread as it ends."""
        with self._lock:
            self._links.discard(link)
