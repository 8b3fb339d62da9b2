"""The link cutter on loopback sockets: forwarding, cut, restore, refusals and shutdown."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from schemas.runtime.endpoints import EndpointError
from simulators.link_proxy import LinkProxy
from tests.support.harness import wait_for


class EchoServer:
    """A loopback TCP server that echoes every chunk back, one thread per connection."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="echo", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(4096):
                    conn.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def connect(proxy: LinkProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=10)


def roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def is_closed(sock: socket.socket) -> bool:
    """Whether the peer has closed or reset the connection (waits up to the socket timeout)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def sending_fails(sock: socket.socket) -> bool:
    """Whether sends to the peer fail with a reset or a broken pipe within a few tries."""
    try:
        for _ in range(50):
            sock.sendall(b"y" * 1024)
            sock.recv(1)
    except ConnectionError:
        return True
    return False


def is_refused(proxy: LinkProxy) -> bool:
    """Whether a new connection is reset: in connect() already, or at its first read."""
    try:
        sock = connect(proxy)
    except ConnectionResetError:
        return True
    with sock:
        return is_closed(sock)


def proxy_threads(port: int) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(f"link-proxy:{port}:")]


def test_bytes_are_forwarded_both_ways_in_chunks(echo: EchoServer) -> None:
    with LinkProxy("127.0.0.1", echo.port) as proxy, connect(proxy) as sock:
        assert roundtrip(sock, b"hello") == b"hello"
        big = bytes(range(256)) * 4096  # 1 MiB
        assert roundtrip(sock, big) == big
        assert proxy.open_connections == 1


def test_cut_resets_open_connections_and_new_ones_until_restored(echo: EchoServer) -> None:
    with LinkProxy("127.0.0.1", echo.port) as proxy:
        first, second = connect(proxy), connect(proxy)
        assert roundtrip(first, b"a") == b"a"
        assert roundtrip(second, b"b") == b"b"
        proxy.cut()
        assert proxy.is_cut
        assert proxy.open_connections == 0
        assert is_closed(first)
        assert is_closed(second)
        # While cut, a new connection is accepted and reset at once: nothing is forwarded.
        assert is_refused(proxy)
        proxy.restore()
        with connect(proxy) as again:
            assert roundtrip(again, b"back") == b"back"
        assert proxy.accepted == 4
        first.close()
        second.close()


def test_a_cut_connection_is_reset_not_just_closed(echo: EchoServer) -> None:
    with LinkProxy("127.0.0.1", echo.port) as proxy, connect(proxy) as sock:
        assert roundtrip(sock, b"x") == b"x"
        proxy.cut()
        # The RST arrives after the FIN of the shutdown: a send soon fails.
        assert sending_fails(sock)


def test_an_unreachable_upstream_resets_the_client() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        dead_port = placeholder.getsockname()[1]
    with LinkProxy("127.0.0.1", dead_port) as proxy:
        assert is_refused(proxy)
        wait_for(lambda: proxy.accepted == 1, 10, "the connection accepted")
        assert proxy.open_connections == 0


def test_stop_ends_every_thread(echo: EchoServer) -> None:
    proxy = LinkProxy("127.0.0.1", echo.port).start()
    port = proxy.port
    sock = connect(proxy)
    assert roundtrip(sock, b"z") == b"z"
    assert len(proxy_threads(port)) == 3  # accept, and up and down of the connection
    proxy.stop()
    wait_for(lambda: not proxy_threads(port), 10, "proxy threads to end")
    assert is_closed(sock)
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_url_for_swaps_host_and_port_and_keeps_the_rest() -> None:
    proxy = LinkProxy("broker.example", 1883)
    proxy.port = 40000
    assert proxy.url_for("mqtt://broker.example:1883") == "mqtt://127.0.0.1:40000"
    assert proxy.url_for("mqtt://u:p%40ss@broker.example") == "mqtt://u:p%40ss@127.0.0.1:40000"


def test_for_url_takes_the_broker_of_a_url() -> None:
    assert LinkProxy.for_url("mqtt://broker.example").upstream == ("broker.example", 1883)
    assert LinkProxy.for_url("mqtts://b:9000").upstream == ("b", 9000)
    with pytest.raises(EndpointError, match="mqtt:// or mqtts://"):
        LinkProxy.for_url("http://broker.example")
