"""A concurrent HTTP load generator, run in its own process so it does not share the server's GIL.

``python -m benchmarks.load PORT PATH CONCURRENCY REQUESTS_FILE RESULT_FILE``: POSTs every request
of ``REQUESTS_FILE`` (a JSON list of ``[body, headers]``) to ``http://127.0.0.1:PORT/PATH`` over
``CONCURRENCY`` keep-alive connections, each with one request in flight, and writes the wall time
and every request's latency to ``RESULT_FILE``. Any answer other than 200 fails the run.

One thread drives every connection from a selector, with each request encoded before the clock
starts: the generator shares the machine's two cores with the server and the database, so the
less CPU it spends per request, the more of the measurement is the server's. (Threads with
``http.client`` cost 210-230 µs of CPU per request here, this 40-60 µs; the floor's rate at
concurrency 8 was held down by the generator by a third or more.)
"""

from __future__ import annotations

import json
import re
import resource
import selectors
import socket
import sys
import time

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def encode(port: int, path: str, body: str, headers: dict[str, str]) -> bytes:
    """The whole HTTP/1.1 request as it goes on the wire (``headers`` name its Content-Type)."""
    content = body.encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Length: {len(content)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + content


class Connection:
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.started = 0.0

    def send(self, request: bytes) -> None:
        self.buffer = b""
        self.started = time.perf_counter()
        self.socket.sendall(request)

    def answer(self) -> int | None:
        """Read what arrived; the status once the whole answer is in, else None."""
        chunk = self.socket.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed a keep-alive connection")
        self.buffer += chunk
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        length = _CONTENT_LENGTH.search(self.buffer, 0, end + 2)
        if length is None:
            raise ValueError(f"an answer without Content-Length: {self.buffer[:200]!r}")
        if len(self.buffer) < end + 4 + int(length.group(1)):
            return None
        return int(self.buffer[9:12])


def drive(port: int, path: str, concurrency: int, requests: list[list]) -> dict:
    """Send ``requests`` over ``concurrency`` connections; returns seconds, latencies, failures
    and the CPU seconds the generator itself spent (to show it is not what limits the rate)."""
    wire = [encode(port, path, body, headers) for body, headers in requests]
    latencies: list[float] = []
    failures: list[str] = []
    selector = selectors.DefaultSelector()
    connections = [Connection(port) for _ in range(min(concurrency, len(wire)))]
    sent = 0
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for connection in connections:
        connection.send(wire[sent])
        sent += 1
        selector.register(connection.socket, selectors.EVENT_READ, connection)
    in_flight = len(connections)
    while in_flight:
        for key, _ in selector.select():
            connection = key.data
            status = connection.answer()
            if status is None:
                continue
            latencies.append(time.perf_counter() - connection.started)
            if status != 200:
                failures.append(f"{path} answered {status}")
            if sent < len(wire):
                connection.send(wire[sent])
                sent += 1
            else:
                selector.unregister(connection.socket)
                connection.socket.close()
                in_flight -= 1
    seconds = time.perf_counter() - start
    used = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "cpu_seconds": used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime,
        "latencies": latencies,
        "failures": failures[:5],
    }


if __name__ == "__main__":
    port, path, concurrency, requests_file, result_file = sys.argv[1:]
    with open(requests_file) as source:
        requests = json.load(source)
    result = drive(int(port), path, int(concurrency), requests)
    with open(result_file, "w") as target:
        json.dump(result, target)
