"""Run every benchmark with its defaults and print their JSON documents."""

from __future__ import annotations

import json

from benchmarks import http_overhead


def main() -> None:
    print(json.dumps(http_overhead.run(seconds=10, connections=32, cluster=True), indent=2))


if __name__ == "__main__":
    main()
