"""A concurrent HTTP load generator, run in its own process so it does not share the server's GIL.

``python -m benchmarks.load PORT PATH CONCURRENCY REQUESTS_FILE RESULT_FILE``: POSTs every request
of ``REQUESTS_FILE`` (a JSON list of ``[body, headers]``) to ``http://127.0.0.1:PORT/PATH`` from
``CONCURRENCY`` threads, each on its own keep-alive connection, and writes the wall time and every
request's latency to ``RESULT_FILE``. Any answer other than 200 fails the run.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from itertools import count


def drive(port: int, path: str, concurrency: int, requests: list[list]) -> dict:
    """Send ``requests`` from ``concurrency`` threads; returns seconds, latencies and failures."""
    latencies: list[float] = []
    failures: list[str] = []
    next_index = count()
    lock = threading.Lock()

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while (index := next(next_index)) < len(requests):
            body, headers = requests[index]
            start = time.perf_counter()
            connection.request("POST", path, body=body.encode(), headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                with lock:
                    failures.append(f"{path} answered {response.status}")
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "seconds": time.perf_counter() - start,
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
