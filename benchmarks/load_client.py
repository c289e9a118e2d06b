"""``python -m benchmarks.load_client``: HTTP clients of the prediction service, on their own.

Run in a new process by ``benchmarks.serving``: the benchmark's own process holds
TensorFlow, a JVM gateway and their threads, which slowed clients running there by half.
Prints one JSON object: latencies (``--mode latency``) or time and errors (``--mode load``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from pathlib import Path

WARM_UP_REQUESTS = 50


def _ask(connection: http.client.HTTPConnection, body: bytes) -> int:
    connection.request("POST", "/v1/predict", body=body, headers={"Content-Type": "image/jpeg"})
    response = connection.getresponse()
    response.read()
    return response.status


def latencies_ms(port: int, photo: bytes, requests: int) -> list[float]:
    """One client, one photo, sequential: each request's milliseconds, after a warm-up."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(WARM_UP_REQUESTS):
        _ask(connection, photo)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        status = _ask(connection, photo)
        times.append((time.perf_counter() - start) * 1000)
        if status != 200:  # noqa: PLR2004
            raise SystemExit(f"status {status}")
    return times


def load(port: int, photos: list[bytes], requests: int, clients: int) -> dict[str, float]:
    """``requests`` requests from ``clients`` keep-alive connections: seconds and errors."""
    errors = [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        for i in range(index, requests, clients):
            if _ask(connection, photos[i % len(photos)]) != 200:  # noqa: PLR2004
                with lock:
                    errors[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"seconds": time.perf_counter() - start, "errors": errors[0]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_client")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["latency", "load"], required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("photos", nargs="+", type=Path)
    args = parser.parse_args()
    photos = [path.read_bytes() for path in args.photos]
    if args.mode == "latency":
        print(json.dumps(latencies_ms(args.port, photos[0], args.requests)))
    else:
        print(json.dumps(load(args.port, photos, args.requests, args.clients)))


if __name__ == "__main__":
    main()
