"""``python -m benchmarks``: run every benchmark, each in its own process, and print a summary.

``python -m benchmarks NAME DATABASE`` runs one benchmark in this process (what the parent does per
child). A child gets its database from ``benchmarks/settings.py`` through ``BENCH_DATABASE``.
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from .table import GOAL_PREFIX

ROOT = Path(__file__).resolve().parents[1]

#: (benchmark module, database) in the order they run.
PLAN = [
    ("sync_bench", "sqlite"),
    ("sync_bench", "postgres"),
    ("webhook_bench", "sqlite"),
    ("webhook_bench", "postgres"),
    ("admin_api_bench", "sqlite"),
    ("admin_api_bench", "postgres"),
    ("scheduling_bench", "sqlite"),
    ("memory_bench", "postgres"),
    ("burst_bench", "postgres"),
]


def run_one(name: str, database: str) -> None:
    from .harness import scratch_database, setup_django

    setup_django(database)
    module = importlib.import_module(f"benchmarks.{name}")
    with scratch_database():
        module.run(database)


def machine() -> str:
    import django

    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.1f} GiB RAM"
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = f" ({models[0]})" if models else ""
    return (
        f"{os.cpu_count()} CPUs{cpu}{memory}, Python {platform.python_version()}, "
        f"Django {django.get_version()}"
    )


def main(only: list[str]) -> int:
    print(f"django-recall-calendar benchmarks: {machine()}", flush=True)
    started = time.perf_counter()
    goals: list[str] = []
    failures = 0
    for name, database in PLAN:
        if only and name not in only and database not in only:
            continue
        print(f"\n==== {name} on {database} ====", flush=True)
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks", name, database],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        for line in child.stdout:
            print(line, end="", flush=True)
            if line.startswith(GOAL_PREFIX):
                goals.append(line.rstrip())
        if child.wait() != 0:
            failures += 1
            goals.append(f"{GOAL_PREFIX} [ERROR] {name} on {database}: the benchmark crashed")
    print(f"\n==== summary ({time.perf_counter() - started:.0f} s) ====")
    for goal in goals:
        print(goal)
    return 1 if failures else 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if (
        len(arguments) == 2
        and not arguments[0].startswith("-")
        and arguments[1]
        in (
            "sqlite",
            "postgres",
        )
    ):
        run_one(*arguments)
    else:
        sys.exit(main(arguments))
