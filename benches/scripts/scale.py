#!/usr/bin/env python3
"""Scale benchmarks of one Skein node (`make bench-scale`):

1. 10,000 partitions: creating them, memory per partition, a Metadata
   request for every topic, producing to every partition, and a restart.
2. 10,000 idle connections: memory per connection, and how fast a new
   client is answered while they are open.
3. 1,000 concurrent producers (franz-go clients, one connection each, all
   at once): records/s and the latency to acknowledgement.

The broker is the release build with its defaults, except max.connections
for part 2 (its default, 10,000, would refuse the measuring connection). The
report is printed and written to benches/results/<date>-<machine>-scale.md.

    python3 benches/scripts/scale.py [--quick]

Environment as for bench.py (SKEIN_TOOLS_DIR, CARGO_TARGET_DIR,
SKEIN_BENCH_MACHINE). Python 3 standard library only.
"""
import argparse
import atexit
import datetime
import json
import os
import resource
import shutil
import socket
import struct
import sys
import tempfile
import time

sys.dont_write_bytecode = True
from bench import (REPO, BenchError, Broker, api_versions, cleanup, proc_field, recv_exact, run_tool,  # noqa: E402
                   say, scratch_parent)
from bench_report import MIB, machine_info  # noqa: E402

FULL = dict(partitions=10_000, connections=10_000, producers=1_000, wide_records=200_000,
            producer_records=200_000)
QUICK = dict(partitions=500, connections=500, producers=50, wide_records=10_000, producer_records=10_000)


def rss_bytes(pid):
    return proc_field(pid, "VmRSS", "status") * 1024


def metadata_all_topics(port):
    """One Metadata v1 request for every topic; returns (ms, response bytes)."""
    client = b"skein-scale"
    body = struct.pack(">hhih", 3, 1, 9, len(client)) + client + struct.pack(">i", -1)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        t0 = time.monotonic()
        s.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", recv_exact(s, 4))
        recv_exact(s, size)
        return (time.monotonic() - t0) * 1000, size


def median_api_versions_ms(port, n=50):
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        if not api_versions(port, 10):
            raise BenchError("ApiVersions failed")
        times.append((time.monotonic() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


class Scale:
    def __init__(self, cfg):
        self.cfg = cfg
        self.log = os.path.join(cfg["work"], "tools.log")

    def tool(self, name, *args):
        cmd = [os.path.join(self.cfg["tools"], "bin", name)] + [str(a) for a in args]
        return run_tool(cmd, self.log, 1800)

    def broker(self, extra=()):
        broker = Broker("skein-always", self.cfg, self.cfg["work"])
        base = broker.command
        broker.command = lambda data: base(data) + list(extra)
        return broker

    def partitions(self, n, records):
        broker = self.broker()
        data = os.path.join(self.cfg["work"], "wide-data")
        out = {"partitions": n}
        out["startup_ms"] = broker.start(data)
        before = rss_bytes(broker.pid)
        t0 = time.monotonic()
        self.tool("kafka-topics", "--bootstrap-server", broker.bootstrap, "--create", "--topic", "wide",
                  "--partitions", n, "--replication-factor", 1)
        out["create_s"] = time.monotonic() - t0
        out["rss_per_partition"] = (rss_bytes(broker.pid) - before) / n
        out["metadata_ms"], out["metadata_bytes"] = metadata_all_topics(broker.port)
        text = self.tool("kafka-producer-perf-test", "--bootstrap-server", broker.bootstrap, "--topic", "wide",
                         "--num-records", records, "--record-size", 100, "--throughput", -1,
                         "--command-property", "acks=1",
                         "partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner")
        out["produce_line"] = text.strip().splitlines()[-1]
        out["peak_rss"] = proc_field(broker.pid, "VmHWM", "status") * 1024
        broker.stop()
        out["restart_ms"] = broker.start(data)
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)
        return out

    def connections(self, n):
        broker = self.broker(["--max.connections", str(n + 100)])
        data = os.path.join(self.cfg["work"], "conn-data")
        broker.start(data)
        out = {"connections": n, "api_versions_ms_idle": median_api_versions_ms(broker.port)}
        before = rss_bytes(broker.pid)
        sockets = []
        try:
            t0 = time.monotonic()
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", broker.port), timeout=30)
                sockets.append(s)
            # One request each, so every connection is fully set up broker-side.
            client = b"idle"
            body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
            for s in sockets:
                s.sendall(struct.pack(">i", len(body)) + body)
            for s in sockets:
                (size,) = struct.unpack(">i", recv_exact(s, 4))
                recv_exact(s, size)
            out["open_s"] = time.monotonic() - t0
            out["rss_per_connection"] = (rss_bytes(broker.pid) - before) / n
            out["api_versions_ms_busy"] = median_api_versions_ms(broker.port)
        finally:
            for s in sockets:
                s.close()
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)
        return out

    def producers(self, n, records):
        broker = self.broker()
        data = os.path.join(self.cfg["work"], "producers-data")
        broker.start(data)
        text = self.tool("franz-client", "--bootstrap", broker.bootstrap, "--topic", "many", "--mode", "producers",
                         "--producers", n, "--count", records, "--size", 1024, "--partitions", 16,
                         "--timeout", 600)
        out = json.loads(text.strip().splitlines()[-1])
        out["peak_rss"] = proc_field(broker.pid, "VmHWM", "status") * 1024
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)
        return out


def report(cfg, info, wide, conns, prods):
    quick = " (QUICK: smoke run, figures meaningless)" if cfg["quick"] else ""
    lines = [
        f"# Skein at scale, {cfg['date']} on {cfg['machine']}{quick}", "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, kernel {info['kernel']}. "
        f"Skein at `{info['commit']}`, release build, one node, `skein.fsync=always`. "
        f"Command: `python3 benches/scripts/scale.py`.", "",
        f"## {wide['partitions']:,} partitions (one topic)", "",
        "| measure | value |", "|---|---|",
        f"| broker start, empty | {wide['startup_ms']:.0f} ms |",
        f"| `kafka-topics --create --partitions {wide['partitions']}` | {wide['create_s']:.1f} s |",
        f"| memory per partition (RSS growth ÷ partitions) | {wide['rss_per_partition'] / 1024:.1f} KiB |",
        f"| Metadata v1, all topics | {wide['metadata_ms']:.1f} ms, {wide['metadata_bytes'] / 1024:.0f} KiB |",
        f"| produce to every partition (round robin, 100 B, acks=1) | {wide['produce_line']} |",
        f"| peak RSS | {wide['peak_rss'] / MIB:.0f} MiB |",
        f"| restart with them (to the first ApiVersions answer) | {wide['restart_ms']:.0f} ms |", "",
        f"## {conns['connections']:,} idle connections", "",
        "| measure | value |", "|---|---|",
        f"| open them (each answered one ApiVersions) | {conns['open_s']:.1f} s |",
        f"| memory per connection | {conns['rss_per_connection'] / 1024:.1f} KiB |",
        f"| ApiVersions on a new connection, median: alone / with them open | "
        f"{conns['api_versions_ms_idle']:.2f} ms / {conns['api_versions_ms_busy']:.2f} ms |", "",
        f"## {prods['producers']:,} concurrent producers (franz-go, 1 KiB, acks=all, idempotent, 16 partitions)", "",
        "| measure | value |", "|---|---|",
        f"| records acknowledged | {prods['count']:,} in {prods['seconds']:.1f} s |",
        f"| throughput | {prods['records_per_sec']:,.0f} records/s |",
        f"| produce → ack latency p50 / p99 / max | {prods['p50_ms']:.0f} / {prods['p99_ms']:.0f} / "
        f"{prods['max_ms']:.0f} ms |",
        f"| broker peak RSS | {prods['peak_rss'] / MIB:.0f} MiB |", "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, to check the script")
    args = ap.parse_args()
    atexit.register(cleanup)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    plan = QUICK if args.quick else FULL
    if hard < plan["connections"] + 1000:
        say(f"scale: the open-file limit ({hard}) is below {plan['connections'] + 1000}")
        return 2
    # Raised here so the broker (a child) inherits it too.
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tools = os.path.abspath(os.environ.get("SKEIN_TOOLS_DIR") or os.path.join(REPO, ".tools"))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    os.makedirs(scratch_parent(), exist_ok=True)
    cfg = {"tools": tools, "skein_bin": os.path.join(target, "release", "skein"), "quick": args.quick,
           "broker_commands": {}, "date": datetime.date.today().isoformat(),
           "machine": os.environ.get("SKEIN_BENCH_MACHINE") or socket.gethostname().split(".")[0],
           "work": tempfile.mkdtemp(prefix="skein-scale-", dir=scratch_parent())}
    os.environ["SKEIN_TOOLS_DIR"] = tools
    info = machine_info(cfg["work"], REPO, cfg["skein_bin"])
    try:
        say("scale: partitions")
        wide = Scale(cfg).partitions(plan["partitions"], plan["wide_records"])
        say("scale: connections")
        conns = Scale(cfg).connections(plan["connections"])
        say("scale: producers")
        prods = Scale(cfg).producers(plan["producers"], plan["producer_records"])
    except BenchError as e:
        say(f"scale: FAILED: {e}\nlogs kept in {cfg['work']}")
        return 1
    finally:
        cleanup()
    text = report(cfg, info, wide, conns, prods)
    print(text)
    suffix = "-scale-quick" if args.quick else "-scale"
    path = os.path.join(REPO, "benches", "results", f"{cfg['date']}-{cfg['machine']}{suffix}.md")
    with open(path, "w") as f:
        f.write(text)
    say(f"scale: wrote {path}")
    shutil.rmtree(cfg["work"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
