#!/usr/bin/env python3
"""Generate a JSON-lines event stream for benchmarking hub-report (not run in CI).

    bench/report_gen.py runs  LINES > events.jsonl   # many deploys of the 11-service stack
    bench/report_gen.py wide  LINES > events.jsonl   # one deploy of 1,000 services, retrying

`runs`: deploy after deploy, each with plan, started, waiting, healthy/unhealthy, retries and a
finished record, the way an events file grows when every deploy appends to it. `wide`: one run
whose services retry and wait over and over, so records vastly outnumber services.
Deterministic (seeded), so figures are comparable between machines.
"""
import json
import random
import sys

STACK = [
    ("postgres", 0, "core", []), ("mongodb", 0, "core", []), ("redis", 0, "core", []),
    ("redis-blacklist", 0, "core", []), ("opa", 0, "core", []),
    ("keycloak", 1, "core", ["postgres"]), ("kas", 1, "stretch", ["opa", "redis"]),
    ("backend", 2, "core", ["keycloak", "mongodb", "redis-blacklist"]),
    ("otel-collector", 2, "optional", ["keycloak"]),
    ("frontend", 3, "core", ["backend"]), ("authzforce", 3, "stretch", ["backend"]),
]
HEALTH = {"kind": "http", "url": "http://127.0.0.1:8080/health", "status": "200-399",
          "interval_ms": 100, "probe_timeout_ms": 2000, "start_period_ms": 0}
RETRY = {"attempts": 3, "delay_ms": 2000, "max_delay_ms": 30000}


def line(record):
    return json.dumps(record, separators=(",", ":"))


def plan(run, ts, name, level, cls, deps):
    return line({"type": "plan", "ts": ts, "run_id": run, "service": name, "level": level,
                 "class": cls, "deps": deps, "soft_deps": [], "timeout_ms": 60000,
                 "backend": "run", "run": ["/opt/hub/bin/" + name], "health": HEALTH,
                 "retry": RETRY, "labels": {"hub.class": cls}})


def outcome(kind, run, ts, name, level, cls, attempt, **fields):
    record = {"type": kind, "ts": ts, "run_id": run, "service": name, "class": cls,
              "level": level, "attempt": attempt, "max_attempts": 3}
    record.update(fields)
    return line(record)


def deploy(rng, index, t0):
    run = f"bench-{index:07d}"
    out = [plan(run, t0 + i, n, l, c, d) for i, (n, l, c, d) in enumerate(STACK)]
    t = t0 + 50
    for level in range(4):
        ends = []
        for name, lvl, cls, deps in STACK:
            if lvl != level:
                continue
            start, attempt = t, 1
            if rng.random() < 0.1:  # an attempt that exits and is retried
                out.append(outcome("started", run, start, name, lvl, cls, 1, backend="run",
                                   timeout_ms=60000, health=HEALTH,
                                   pid=1000 + index % 30000, log=f".hub/logs/{name}.log"))
                out.append(outcome("unhealthy", run, start + 900, name, lvl, cls, 1, final=False,
                                   reason="exited", elapsed_ms=900, probes=9, exit_status=1,
                                   last_probe="connection refused",
                                   log_tail=["error: not ready", "exiting"]))
                start, attempt = start + 2900, 2
            out.append(outcome("started", run, start, name, lvl, cls, attempt, backend="run",
                               timeout_ms=60000, health=HEALTH,
                               pid=2000 + index % 30000, log=f".hub/logs/{name}.log"))
            took = rng.randint(3000, 15000)
            out.append(outcome("waiting", run, start + took // 2, name, lvl, cls, attempt,
                               percent=50, elapsed_ms=took // 2, timeout_ms=60000,
                               last_probe="GET /health: 503"))
            out.append(outcome("healthy", run, start + took, name, lvl, cls, attempt, final=True,
                               ready_ms=took, probes=took // 100))
            ends.append(start + took)
        t = max(ends) + 100
    out.append(line({"type": "finished", "ts": t, "run_id": run, "ok": True, "exit_status": 0,
                     "counts": {"healthy": 11, "started": 0, "failed": 0, "skipped": 0},
                     "duration_ms": t - t0}))
    return out, t


def runs(total):
    rng = random.Random(42)
    written, index, t = 0, 0, 1795882713000
    while written < total:
        lines, t = deploy(rng, index, t)
        lines = lines[: total - written]
        sys.stdout.write("\n".join(lines) + "\n")
        written += len(lines)
        index += 1
        t += 60_000


def wide(total, services=1000):
    rng = random.Random(7)
    run, t = "bench-wide", 1795882713000
    out = []
    names = [f"svc-{i:04d}" for i in range(services)]
    for i, name in enumerate(names):
        out.append(plan(run, t, name, 0, "core" if i % 3 else "optional", []))
    written = len(out)
    sys.stdout.write("\n".join(out) + "\n")
    # Each round: every service starts, waits and exits (non-final), until the budget is spent.
    attempt = 0
    while written < total - 2 * services:
        attempt += 1
        batch = []
        for name in names:
            t += 1
            batch.append(outcome("started", run, t, name, 0, "core", attempt, backend="run",
                                 timeout_ms=60000, health=HEALTH,
                                 pid=rng.randint(1000, 60000), log=f".hub/logs/{name}.log"))
            batch.append(outcome("waiting", run, t + 5, name, 0, "core", attempt, percent=50,
                                 elapsed_ms=5, timeout_ms=60000, last_probe="connection refused"))
            batch.append(outcome("unhealthy", run, t + 9, name, 0, "core", attempt, final=False,
                                 reason="exited", elapsed_ms=9, probes=2, exit_status=1,
                                 last_probe="connection refused", log_tail=["boom"]))
        batch = batch[: total - 2 * services - written]
        sys.stdout.write("\n".join(batch) + "\n")
        written += len(batch)
    last = []
    for name in names:
        t += 1
        last.append(outcome("started", run, t, name, 0, "core", attempt + 1, backend="run",
                            timeout_ms=60000, health=HEALTH))
        last.append(outcome("healthy", run, t + 50, name, 0, "core", attempt + 1, final=True,
                            ready_ms=50, probes=1))
    sys.stdout.write("\n".join(last[: total - written]) + "\n")


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "runs"
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    {"runs": runs, "wide": wide}[kind](total)
