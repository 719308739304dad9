"""Benchmark of the registration service through HTTP: requests per second and p50/p99
latency of register (POST /events/{id}/registrations) and unregister (DELETE
.../registrations/{user}) on the real uvicorn server, several clients at once, in each
phase (mysql_only, dual_write, shadow_read, dynamodb_read, dynamodb_only), in one run;
each phase's figures also as a ratio to mysql_only's.

    .venv/bin/python bench/registration.py [--clients 8] [--requests 400] [--events 8]
                                           [--rounds 2]

Local services are started when none answer (as the tests do); the database and the
table prefix are the bench's own, dropped afterwards. One server (uvicorn in a thread
of this process, `migration.registration.server.running`) serves every phase; the
phases take turns in each round, so that a change of the machine's load falls on all
of them. In each turn, fresh users and events are made in that phase (where the phase
reads them), then `--requests` registrations go out from `--clients` clients (each its
own keep-alive connection, released together), spread over `--events` events with room
for all; then the same users leave. Every answer must be a 201/204, or the run stops.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.dual_write import bench_settings  # noqa: E402
from migration.dynamodb.schema import apply  # noqa: E402
from migration.registration.dual_write import (  # noqa: E402
    REGISTRATION_ENTITIES,
    RegistrationApp,
)
from migration.registration.models import Event, User  # noqa: E402
from migration.registration.schema import upgrade  # noqa: E402
from migration.registration.server import running  # noqa: E402

PHASES = ("mysql_only", "dual_write", "shadow_read", "dynamodb_read", "dynamodb_only")
OPERATIONS = ("register", "unregister")

Pair = tuple[str, str]  # (user, event)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400,
                        help="registrations (and as many unregistrations) a phase, a round")
    parser.add_argument("--events", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"load average at start: {_load()}", flush=True)
    with bench_settings(f"bench_reg_{uuid.uuid4().hex[:8]}") as settings:
        upgrade(settings)
        with RegistrationApp(settings) as app:
            apply(app.contract, app.ddb)
            with running(app) as base:
                timings = run(app, base, args.clients, args.requests, args.events, args.rounds)
    print(f"load average at end: {_load()}")
    report(timings)
    return 0


def _load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


# (phase, operation) -> each request's seconds, and the wall-clock seconds of the bursts
Timings = dict[tuple[str, str], tuple[list[float], list[float]]]


def run(app: RegistrationApp, base: str, clients: int, requests: int, events: int,
        rounds: int) -> Timings:
    timings: Timings = {(p, o): ([], []) for p in PHASES for o in OPERATIONS}
    for round_ in range(rounds):
        for phase in PHASES:
            for name in REGISTRATION_ENTITIES:
                app.flags.set_phase(name, phase, caught_up=True)
            pairs = _made(app, f"r{round_}{phase[:2]}{phase.split('_')[1][:2]}", requests,
                          events)
            register = burst(clients, pairs, lambda http, p: http.post(
                f"{base}/events/{p[1]}/registrations", json={"userId": p[0]}), 201)
            unregister = burst(clients, pairs, lambda http, p: http.delete(
                f"{base}/events/{p[1]}/registrations/{p[0]}"), 204)
            for operation, (latencies, wall) in (("register", register),
                                                 ("unregister", unregister)):
                timings[(phase, operation)][0].extend(latencies)
                timings[(phase, operation)][1].append(wall)
            print(f"round {round_ + 1} {phase:>13}: register {len(pairs) / register[1]:7.1f}/s,"
                  f" unregister {len(pairs) / unregister[1]:7.1f}/s (load {_load()})",
                  flush=True)
    return timings


def _made(app: RegistrationApp, prefix: str, requests: int, events: int) -> list[Pair]:
    """Users and events made in the current phase; one (user, event) pair a request, the
    events taking turns so that the clients do not all queue on one event."""
    event_ids = [f"{prefix}-e{n}" for n in range(events)]
    for event_id in event_ids:
        app.events.create(Event(event_id, f"Event {event_id}", 10**6, waitlist_enabled=True))
    users = [f"{prefix}-u{n}" for n in range(-(-requests // events))]
    for user_id in users:
        app.users.create(User(user_id, f"User {user_id}"))
    return [(u, e) for u in users for e in event_ids][:requests]


def burst(clients: int, pairs: list[Pair],
          request: Callable[[httpx.Client, Pair], httpx.Response], expected: int
          ) -> tuple[list[float], float]:
    """`pairs` sent by `clients` clients released together; each request's seconds and
    the wall-clock seconds from the release to the last answer."""
    pending = list(reversed(pairs))
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    latencies: list[float] = []
    failures: list[str] = []

    def client() -> None:
        mine: list[float] = []
        with httpx.Client(timeout=120) as http:
            barrier.wait()
            while True:
                with lock:
                    if not pending:
                        break
                    pair = pending.pop()
                started = time.perf_counter()
                answer = request(http, pair)
                mine.append(time.perf_counter() - started)
                if answer.status_code != expected:
                    failures.append(f"{pair}: {answer.status_code} {answer.text}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies, wall


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(timings: Timings) -> None:
    print("\n| phase | operation | requests | req/s | p50 ms | p99 ms | req/s vs mysql_only "
          "| p50 vs mysql_only |")
    print("|---|---|---|---|---|---|---|---|")
    for operation in OPERATIONS:
        base_latencies, base_walls = timings[("mysql_only", operation)]
        base_rate = len(base_latencies) / sum(base_walls)
        base_p50 = _percentile(base_latencies, 50)
        for phase in PHASES:
            latencies, walls = timings[(phase, operation)]
            rate = len(latencies) / sum(walls)
            p50, p99 = _percentile(latencies, 50), _percentile(latencies, 99)
            print(f"| {phase} | {operation} | {len(latencies)} | {rate:.1f} | "
                  f"{p50 * 1000:.1f} | {p99 * 1000:.1f} | {rate / base_rate:.2f} | "
                  f"{p50 / base_p50:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
