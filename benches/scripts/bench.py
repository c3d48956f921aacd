#!/usr/bin/env python3
"""Side-by-side benchmark of Skein and Apache Kafka 4.3.1 on this machine.

`make bench` runs this after installing the tools and building the release
binary. One broker runs at a time: Apache Kafka first (its maximum throughput
per produce cell sets the rate of the latency runs), then Skein with
skein.fsync=always (the default), then Skein with skein.fsync=interval. Each
broker gets a fresh data directory on the repository's disk, the same
workloads from the same client tools, and is measured from /proc. The machine's
own limits (disk, fsync, loopback) are measured in the same run. The markdown
report is printed and written to benches/results/<date>-<machine>.md.

    python3 benches/scripts/bench.py [--quick] [--only kafka|skein] [--keep-work]

Environment: SKEIN_TOOLS_DIR (default <repo>/.tools), CARGO_TARGET_DIR
(default <repo>/target), SKEIN_BENCH_MACHINE (default `hostname -s`),
BENCH_QUICK=1 (same as --quick), SKEIN_BENCH_WORK (parent of the scratch dir).
Python 3 standard library only.
"""
import argparse
import atexit
import datetime
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from bench_report import LINGER_MS, MIB, SERIES, STOP_TIMEOUT_S, cell_name, machine_info, report  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Record counts sized so that each run takes ~10-20 s at Kafka's speed on a
# 2-core machine (1 KiB ≈ 35k rec/s, 100 B ≈ 250k rec/s); the runs at half of
# Kafka's maximum send half as many, so they take about as long.
FULL = dict(cells=[(s, a, p) for s in (1024, 100) for a in ("all", "1") for p in (1, 16)],
            records={1024: 500_000, 100: 3_000_000}, consume_bytes=1 << 30,
            franz_records=500_000, e2e_records=10_000, disk_bytes=1 << 30,
            fsyncs=1000, loopback_bytes=4 << 30, timeout_s=900)
# Enough to exercise every code path (both sizes, both acks, 1 and 16
# partitions) in under 3 minutes; the figures mean nothing.
QUICK = dict(cells=[(1024, "all", 1), (100, "1", 16)], records={1024: 20_000, 100: 100_000},
             consume_bytes=32 * MIB, franz_records=20_000, e2e_records=300,
             disk_bytes=256 * MIB, fsyncs=200, loopback_bytes=256 * MIB, timeout_s=180)


class BenchError(Exception):
    pass


T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes

# Every child we start runs in its own process group so that one killpg stops
# it with whatever it started; this set is what cleanup() must stop.
LIVE = set()


def kill_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup():
    """Never leave a broker or a tool running, however we exit."""
    for proc in list(LIVE):
        kill_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in list(LIVE):
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(proc, signal.SIGKILL)
            proc.wait()
        LIVE.discard(proc)


def on_signal(signum, _frame):
    # Turn SIGTERM/SIGHUP into an exception so that finally blocks and
    # atexit run; SIGINT already raises KeyboardInterrupt.
    raise SystemExit(128 + signum)


def run_tool(cmd, log, timeout_s, commands=None):
    """Runs a client tool to completion and returns its stdout; stderr goes to log."""
    if commands is not None:
        commands.append(" ".join(cmd))
    with open(log, "ab") as err:
        err.write(("\n$ " + " ".join(cmd) + "\n").encode())
        err.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        LIVE.add(proc)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{os.path.basename(cmd[0])} took over {timeout_s}s (log: {log})")
        finally:
            if proc.poll() is None:
                kill_group(proc, signal.SIGKILL)
                proc.wait()
            LIVE.discard(proc)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd[:3])}... exited {proc.returncode}; stderr in {log}\n{tail(log)}")
    return text


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# ------------------------------------------------------------------ /proc

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime+stime of the process and of its waited-for children."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def proc_field(pid, name, fname):
    with open(f"/proc/{pid}/{fname}") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {name} in /proc/{pid}/{fname}")


def write_bytes(pid):
    return proc_field(pid, "write_bytes", "io")


def peak_rss_bytes(pid):
    return proc_field(pid, "VmHWM", "status") * 1024


def descendants(pid):
    """pid and every process below it, from /proc's parent links."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ------------------------------------------------------------------ brokers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def api_versions(port, timeout_s):
    """One ApiVersions v0 round trip: the first request every Kafka client sends."""
    client = b"skein-bench"
    body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", recv_exact(s, 4))
        correlation, error = struct.unpack(">ih", recv_exact(s, size)[:6])
    return correlation == 7 and error == 0


class Broker:
    """One broker process; started, measured from /proc, stopped cleanly."""

    def __init__(self, key, cfg, work):
        self.key, self.cfg, self.work = key, cfg, work
        self.port = free_port()
        self.http_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log = os.path.join(work, f"{key}.log")
        self.proc, self.pid = None, None

    def command(self, data):
        if self.key == "kafka":
            return ["bash", os.path.join(REPO, "scripts", "start-apache-kafka.sh"), str(self.port), data]
        cmd = [self.cfg["skein_bin"], f"--log.dirs={data}",
               f"--listeners=PLAINTEXT://127.0.0.1:{self.port}",
               f"--skein.http.listener=127.0.0.1:{self.http_port}"]
        return cmd + (["--fsync=interval"] if self.key == "skein-interval" else [])

    def start(self, data):
        """Starts the broker; returns ms from launch to the first ApiVersions answer."""
        cmd = self.command(data)
        self.cfg["broker_commands"][self.key] = " ".join(cmd)
        with open(self.log, "ab") as log:
            t0 = time.monotonic()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        LIVE.add(self.proc)
        ms = self.wait_ready(t0, deadline=t0 + 120)
        self.pid = self.find_broker_pid()
        return ms

    def wait_ready(self, t0, deadline):
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.key} exited with {self.proc.returncode} before answering:\n{tail(self.log)}")
            try:
                if api_versions(self.port, max(0.1, deadline - time.monotonic())):
                    return (time.monotonic() - t0) * 1000
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{self.key} did not answer ApiVersions within 120 s:\n{tail(self.log)}")
            time.sleep(0.005)

    def find_broker_pid(self):
        # start-apache-kafka.sh execs java, so the pid is usually the script's;
        # look below it too, in case the script ever runs java as a child.
        if self.key != "kafka":
            return self.proc.pid
        for pid in descendants(self.proc.pid):
            if "kafka.Kafka" in cmdline(pid):
                return pid
        raise BenchError("no kafka.Kafka java process under start-apache-kafka.sh")

    def sample(self):
        sample = {"cpu_s": cpu_seconds(self.pid), "write_bytes": write_bytes(self.pid)}
        if self.key != "kafka":
            sample.update(skein_counters(self.http_port))
        return sample

    def stop(self):
        """SIGTERM, SIGKILL after STOP_TIMEOUT_S; returns (write_bytes at
        exit, killed). write_bytes is read from the exited but unreaped
        process (WNOWAIT) so that the shutdown's own flush is counted."""
        last = write_bytes(self.pid)
        kill_group(self.proc, signal.SIGTERM)
        deadline, killed = time.monotonic() + STOP_TIMEOUT_S, False
        while os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
            if not killed and time.monotonic() > deadline:
                kill_group(self.proc, signal.SIGKILL)
                killed = True
            time.sleep(0.02)
        if self.pid == self.proc.pid:
            try:
                last = write_bytes(self.pid)
            except (OSError, BenchError):
                pass
        self.proc.wait()
        LIVE.discard(self.proc)
        return last, killed


COUNTER_RE = re.compile(r'^skein_(allocations_total|allocated_bytes_total|requests_total)(?:\{api="(\w+)".*\})? (\S+)$',
                        re.M)


def skein_counters(http_port):
    """Skein's allocation totals and its Produce and Fetch request counts,
    from its Prometheus endpoint."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError as e:
        raise BenchError(f"cannot read Skein's metrics: {e}") from e
    out = {"allocations": 0, "allocated_bytes": 0, "produce_requests": 0, "fetch_requests": 0}
    for name, api, value in COUNTER_RE.findall(text):
        if name == "allocations_total":
            out["allocations"] = float(value)
        elif name == "allocated_bytes_total":
            out["allocated_bytes"] = float(value)
        elif api in ("Produce", "Fetch"):
            out[f"{api.lower()}_requests"] += float(value)
    for name, value in FSYNC_RE.findall(text):
        out[FSYNC_FIELDS[name]] = float(value)
    return out


FSYNC_RE = re.compile(r"^skein_(journal_fsync_seconds_count|journal_fsync_seconds_sum|"
                      r"journal_fsync_waiting_writes_total) (\S+)$", re.M)
FSYNC_FIELDS = {"journal_fsync_seconds_count": "fsyncs", "journal_fsync_seconds_sum": "fsync_seconds",
                "journal_fsync_waiting_writes_total": "fsync_waiting_writes"}


# ------------------------------------------------------------------ workloads

PRODUCE_RE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th")


def parse_produce(out):
    matches = PRODUCE_RE.findall(out)
    if not matches:
        raise BenchError(f"no summary line from kafka-producer-perf-test:\n{out[-500:]}")
    sent, rec_s, mb_s, avg, mx, p50, p95, p99, p999 = matches[-1]
    return {"records": int(sent), "rec_s": float(rec_s), "mb_s": float(mb_s), "avg_ms": float(avg),
            "max_ms": float(mx), "p50": int(p50), "p95": int(p95), "p99": int(p99), "p999": int(p999)}


def parse_consume(out):
    """The consumer perf tool prints a CSV header and one line of values."""
    lines = [line for line in out.splitlines() if line.strip()]
    for i, line in enumerate(lines[:-1]):
        if line.startswith("start.time"):
            row = dict(zip([h.strip() for h in line.split(",")], [v.strip() for v in lines[i + 1].split(",")]))
            # fetch.* exclude the group join: Skein keeps Kafka's default 3 s
            # group.initial.rebalance.delay.ms, the Kafka start script sets 0.
            return {"records": int(row["data.consumed.in.nMsg"]), "rec_s": float(row["fetch.nMsg.sec"]),
                    "mb_s": float(row["fetch.MB.sec"]), "rebalance_ms": int(row["rebalance.time.ms"])}
    raise BenchError(f"no CSV summary from kafka-consumer-perf-test:\n{out[-500:]}")


def parse_e2e(out):
    avg = re.search(r"Avg latency: ([\d.]+) ms", out)
    pct = re.search(r"Percentiles: 50th = (\d+), 99th = (\d+), 99\.9th = (\d+)", out)
    if not (avg and pct):
        raise BenchError(f"no summary from kafka-e2e-latency:\n{out[-500:]}")
    return {"avg_ms": float(avg.group(1)), "p50": int(pct.group(1)), "p99": int(pct.group(2)),
            "p999": int(pct.group(3))}


def parse_franz(out):
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"no JSON summary from franz-client:\n{out[-500:]}")
    return json.loads(lines[-1])


class Runner:
    """Runs the workloads against one broker, measuring the broker across each."""

    def __init__(self, cfg, broker, tool_log, commands):
        self.cfg, self.broker, self.tool_log, self.commands = cfg, broker, tool_log, commands

    def tool(self, name, *args):
        cmd = [os.path.join(self.cfg["tools"], "bin", name)] + [str(a) for a in args]
        return run_tool(cmd, self.tool_log, self.cfg["plan"]["timeout_s"], self.commands)

    def measured(self, label, fn):
        say(f"   {self.broker.key}: {label}")
        before = self.broker.sample()
        result = fn()
        after = self.broker.sample()
        for field in ("cpu_s", "write_bytes", "allocations", "allocated_bytes", "produce_requests",
                      "fetch_requests", "fsyncs", "fsync_seconds", "fsync_waiting_writes"):
            if field in after:
                result[field] = after[field] - before[field]
        return result

    def create_topic(self, topic, partitions):
        self.tool("kafka-topics", "--bootstrap-server", self.broker.bootstrap, "--create", "--topic", topic,
                  "--partitions", partitions, "--replication-factor", 1)

    def produce(self, topic, records, size, acks, rate):
        out = self.tool("kafka-producer-perf-test", "--bootstrap-server", self.broker.bootstrap,
                        "--topic", topic, "--num-records", records, "--record-size", size,
                        "--throughput", rate, "--command-property", f"acks={acks}", f"linger.ms={LINGER_MS}")
        result = parse_produce(out)
        result["produced_bytes"] = result["records"] * size
        return result

    def consume(self, topic, records):
        out = self.tool("kafka-consumer-perf-test", "--bootstrap-server", self.broker.bootstrap,
                        "--topic", topic, "--num-records", records, "--timeout", 30000)
        result = parse_consume(out)
        if result["records"] < records:
            raise BenchError(f"kafka-consumer-perf-test read {result['records']} of {records} records")
        return result

    def e2e(self, topic, records):
        return parse_e2e(self.tool("kafka-e2e-latency", "--bootstrap-server", self.broker.bootstrap,
                                   "--topic", topic, "--num-records", records, "--producer-acks", "all",
                                   "--record-size", 1024))

    def franz(self, topic, records):
        s = parse_franz(self.tool("franz-client", "--bootstrap", self.broker.bootstrap, "--topic", topic,
                                  "--mode", "bench", "--count", records, "--size", 1024, "--acks", "all",
                                  "--partitions", 16, "--timeout", self.cfg["plan"]["timeout_s"]))
        if not s.get("ok"):
            raise BenchError(f"franz-client: {s.get('error')}")
        return s


def produce_cell(r, plan, cell, kafka_max, rows):
    """One cell unthrottled, then at half of Kafka's maximum for the cell."""
    size, acks, partitions = cell
    key = f"produce-{size}-{acks}-{partitions}"
    topic = f"perf-{size}-{acks.replace('all', 'a')}-{partitions}"
    records = plan["records"][size]
    r.create_topic(topic, partitions)
    rows[key + "-max"] = r.measured(f"produce {cell_name(*cell)} max",
                                    lambda: r.produce(topic, records, size, acks, -1))
    if r.broker.key == "kafka":
        kafka_max[key] = rows[key + "-max"]["rec_s"]
    if key in kafka_max:
        rate = max(1, int(kafka_max[key] / 2))
        rows[key + "-half"] = r.measured(f"produce {cell_name(*cell)} at {rate:,}/s",
                                         lambda: r.produce(topic, records // 2, size, acks, rate))
        rows[key + "-half"]["target_rec_s"] = rate


def consume_workload(r, plan, rows):
    # Fill a topic with 1 KiB records first (acks=1: the fill is not what is
    # measured), then read it all back; both brokers read recent data.
    n = plan["consume_bytes"] // 1024
    r.create_topic("consume-1k", 1)
    rows["consume-fill"] = r.measured("fill consume-1k", lambda: r.produce("consume-1k", n, 1024, "1", -1))
    rows["consume"] = r.measured("consume", lambda: r.consume("consume-1k", n))


def franz_workload(r, plan, rows):
    franz = r.measured("franz-go", lambda: r.franz("franz-1k", plan["franz_records"]))
    franz["produced_bytes"] = plan["franz_records"] * 1024
    rows["franz-produce"] = dict(franz, rec_s=franz["produce_records_per_sec"], mb_s=franz["produce_mb_per_sec"])
    rows["franz-consume"] = dict(franz, rec_s=franz["consume_records_per_sec"], mb_s=franz["consume_mb_per_sec"],
                                 cpu_s=None, produced_bytes=0)


def e2e_workload(r, plan, rows):
    r.create_topic("e2e", 1)
    rows["e2e"] = r.measured("end-to-end latency", lambda: r.e2e("e2e", plan["e2e_records"]))
    rows["e2e"]["produced_bytes"] = plan["e2e_records"] * 1024


def workloads(r, plan, kafka_max, rows):
    """Each step separately, so that one failure costs one row, not the series."""
    steps = [lambda c=c: produce_cell(r, plan, c, kafka_max, rows) for c in plan["cells"]]
    return steps + [lambda w=w: w(r, plan, rows) for w in (consume_workload, franz_workload, e2e_workload)]


def note(res, key, error):
    """A failure that leaves the rest of the series worth running."""
    res["errors"].append(error)
    say(f"!! {key}: {error}")


def run_series(key, cfg, kafka_max):
    """Starts one broker on a fresh data dir, runs every workload, stops it,
    then restarts it on the same data to time a restart."""
    work = cfg["work"]
    data = os.path.join(work, f"{key}-data")
    broker = Broker(key, cfg, work)
    commands = []
    r = Runner(cfg, broker, os.path.join(work, f"{key}-tools.log"), commands)
    res = {"rows": {}, "broker": {}, "commands": commands, "errors": []}
    say(f"== {key}: starting on {broker.bootstrap}, data in {data}")
    # The previous broker's writes still being flushed by the kernel would
    # slow this one's first fsyncs (and its start-up figure).
    os.sync()
    try:
        res["broker"]["startup_ms"] = broker.start(data)
        base = broker.sample()["write_bytes"]
        for step in workloads(r, cfg["plan"], kafka_max, res["rows"]):
            try:
                step()
            except BenchError as e:
                note(res, key, str(e))
        say(f"   {key}: stop, then restart on the same data")
        res["broker"]["peak_rss"] = peak_rss_bytes(broker.pid)
        end, killed = broker.stop()
        res["broker"]["write_bytes"] = end - base
        if killed:
            note(res, key, f"did not exit within {STOP_TIMEOUT_S} s of SIGTERM (killed), so the "
                 "restart figure is a recovery after a crash")
        res["broker"]["restart_ms"] = broker.start(data)
        if broker.stop()[1]:
            note(res, key, f"did not exit within {STOP_TIMEOUT_S} s of SIGTERM after the restart (killed)")
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            kill_group(broker.proc, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)
    produced = sum(v.get("produced_bytes", 0) for v in res["rows"].values())
    res["broker"]["produced_bytes"] = produced
    say(f"== {key}: done, startup {res['broker']['startup_ms']:.0f} ms, "
        f"peak RSS {res['broker']['peak_rss'] / MIB:.0f} MiB")
    return res


# ------------------------------------------------------------------ machine limits

def disk_write(directory, total, sync_every):
    """Sequential 1 MiB writes; fdatasync every sync_every bytes and at the end."""
    path = os.path.join(directory, "disk-write.tmp")
    block = os.urandom(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.monotonic()
        for i in range(total // MIB):
            os.write(fd, block)
            if sync_every and (i + 1) * MIB % sync_every == 0:
                os.fdatasync(fd)
        os.fdatasync(fd)
        return total / (time.monotonic() - t0) / MIB
    finally:
        os.close(fd)
        os.unlink(path)


def fsync_latency(directory, n):
    """4 KiB appends, each followed by fdatasync, like a write-ahead log."""
    path = os.path.join(directory, "fsync.tmp")
    block, times = os.urandom(4096), []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(n):
            t0 = time.monotonic()
            os.write(fd, block)
            os.fdatasync(fd)
            times.append((time.monotonic() - t0) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    return {"p50_ms": times[len(times) // 2], "p99_ms": times[int(len(times) * 0.99)]}


SINK = """
import socket, struct, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept(); buf = bytearray(1 << 20); view = memoryview(buf); n = 0
while True:
    k = conn.recv_into(view)
    if not k: break
    n += k
conn.sendall(struct.pack(">q", n))
"""


def loopback_bandwidth(total):
    """One TCP stream over loopback between two Python processes."""
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, start_new_session=True)
    LIVE.add(sink)
    try:
        port = int(sink.stdout.readline())
        block = b"\0" * MIB
        with socket.create_connection(("127.0.0.1", port)) as s:
            t0 = time.monotonic()
            for _ in range(total // MIB):
                s.sendall(block)
            s.shutdown(socket.SHUT_WR)
            (got,) = struct.unpack(">q", recv_exact(s, 8))
            elapsed = time.monotonic() - t0
        if got != total:
            raise BenchError(f"loopback sink got {got} of {total} bytes")
        return total / elapsed / MIB
    finally:
        sink.wait(10)
        LIVE.discard(sink)


def machine_limits(cfg):
    plan, work = cfg["plan"], cfg["work"]
    say("== machine limits: disk, fdatasync, loopback")
    return {"disk_mb_s_sync_1m": disk_write(work, plan["disk_bytes"], MIB),
            "disk_mb_s_sync_end": disk_write(work, plan["disk_bytes"], 0),
            "fsync": fsync_latency(work, plan["fsyncs"]), "fsyncs": plan["fsyncs"],
            "loopback_mb_s": loopback_bandwidth(plan["loopback_bytes"])}


# ------------------------------------------------------------------ main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
                    help="smoke run with tiny record counts (< 3 min); also BENCH_QUICK=1")
    ap.add_argument("--only", choices=["kafka", "skein"], help="one broker only (skein: both fsync rows; "
                    "without Kafka there are no runs at ½ Kafka max)")
    ap.add_argument("--keep-work", action="store_true", help="keep the scratch dir (logs) afterwards")
    ap.add_argument("--output", help="report path (default benches/results/<date>-<machine>[-quick].md)")
    return ap.parse_args()


def scratch_parent():
    """Data dirs must be on a real disk: /tmp if it shares the repo's
    filesystem, else a cache dir (a tmpfs /tmp would make fsync free)."""
    if os.environ.get("SKEIN_BENCH_WORK"):
        return os.environ["SKEIN_BENCH_WORK"]
    tmp = tempfile.gettempdir()
    if os.stat(tmp).st_dev == os.stat(REPO).st_dev:
        return tmp
    return os.path.join(os.path.expanduser("~"), ".cache", "skein", "bench-work")


def config(args):
    tools = os.path.abspath(os.environ.get("SKEIN_TOOLS_DIR") or os.path.join(REPO, ".tools"))
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    cfg = {"tools": tools, "skein_bin": os.path.join(target, "release", "skein"), "quick": args.quick,
           "plan": QUICK if args.quick else FULL, "broker_commands": {},
           "machine": os.environ.get("SKEIN_BENCH_MACHINE") or socket.gethostname().split(".")[0],
           "date": datetime.date.today().isoformat()}
    need = [os.path.join(tools, "bin", t) for t in ("kafka-topics", "kafka-producer-perf-test",
                                                    "kafka-consumer-perf-test", "kafka-e2e-latency", "franz-client")]
    if args.only != "kafka":
        need.append(cfg["skein_bin"])
    missing = [p for p in need if not os.access(p, os.X_OK)]
    if args.only != "skein" and not os.path.isdir(os.path.join(tools, "kafka-broker", "libs")):
        missing.append(os.path.join(tools, "kafka-broker", "libs"))
    if missing or not shutil.which("java"):
        raise BenchError("missing: " + ", ".join(missing or ["java"]) + "\nrun: bash scripts/install-test-tools.sh "
                         "--with-kafka-broker; cargo build --release -p skein-broker --bin skein (or `make bench`)")
    os.makedirs(scratch_parent(), exist_ok=True)
    cfg["work"] = tempfile.mkdtemp(prefix="skein-bench-", dir=scratch_parent())
    return cfg


def run_all(cfg, only):
    t0 = time.monotonic()
    info = machine_info(cfg["work"], REPO, cfg["skein_bin"])
    say(f"bench: scratch dir {cfg['work']}; load average {info['load'][0]:.2f}"
        + (" (quick run)" if cfg["quick"] else ""))
    if info["load"][0] > 0.5 * info["nproc"]:
        say(f"bench: WARNING: the machine is busy; the figures will be distorted. Busiest:\n{info['top']}")
    limits = machine_limits(cfg)
    results, kafka_max = {}, {}
    for key, _, _ in SERIES:
        if not only or key.startswith(only):
            results[key] = run_series(key, cfg, kafka_max)
    text = report(cfg, info, limits, results, time.monotonic() - t0)
    return text, {"limits": limits, "results": results, "info": info}


def write_outputs(cfg, path, text, raw):
    quick = "-quick" if cfg["quick"] else ""
    path = path or os.path.join(REPO, "benches", "results", f"{cfg['date']}-{cfg['machine']}{quick}.md")
    with open(path, "w") as f:
        f.write(text)
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(raw, f, indent=1, default=str)
    say(f"bench: wrote {path} (and the raw figures in .json beside it)")


def main():
    args = parse_args()
    # Explicitly, because a shell starting us in the background ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    atexit.register(cleanup)
    try:
        cfg = config(args)
    except BenchError as e:
        say(f"bench: {e}")
        return 2
    os.environ["SKEIN_TOOLS_DIR"] = cfg["tools"]  # read by start-apache-kafka.sh
    try:
        text, raw = run_all(cfg, args.only)
    except BenchError as e:
        say(f"bench: FAILED: {e}\nlogs kept in {cfg['work']}")
        return 1
    except (KeyboardInterrupt, SystemExit):
        say(f"bench: interrupted; every broker stopped; logs kept in {cfg['work']}")
        return 130
    finally:
        cleanup()
    print(text)
    write_outputs(cfg, args.output, text, raw)
    if any(r["errors"] for r in raw["results"].values()):
        say(f"bench: some runs failed; their logs are kept in {cfg['work']}")
    elif not args.keep_work:
        shutil.rmtree(cfg["work"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
