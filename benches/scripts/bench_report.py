"""The markdown report of benches/scripts/bench.py: one table of workloads
by broker with Skein ÷ Kafka ratios, the issue's targets, the machine's
limits, and the exact settings. Pure formatting apart from machine_info."""
import os
import subprocess

MIB = 1 << 20
LINGER_MS = 5  # Kafka 4.x's default linger.ms, set explicitly so a default change can't move the figures
STOP_TIMEOUT_S = 30
# (key, column title, short name for the ratio columns), in the order they run.
SERIES = [("kafka", "Apache Kafka 4.3.1", "Kafka"), ("skein-always", "Skein (fsync always)", "always"),
          ("skein-interval", "Skein (fsync interval)", "interval")]


def cell_name(size, acks, partitions):
    return f"{'1 KiB' if size == 1024 else f'{size} B'} acks={acks} {partitions}p"


def cell_of(row_key):
    """'produce-1024-all-16-half' -> '1 KiB acks=all 16p'."""
    _, size, acks, partitions, _ = row_key.split("-")
    return cell_name(int(size), acks, partitions)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(work, repo, skein_bin):
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    return {"nproc": os.cpu_count(), "memory": mem, "kernel": os.uname().release, "cpu": cpu,
            "disk": sh(f"df -h {work} | tail -n 1") + "\n" + sh("lsblk -d -o NAME,SIZE,ROTA,TYPE,MODEL"),
            "java": sh("java -version 2>&1 | head -n 1"), "load": os.getloadavg(),
            "top": sh(f"ps -eo pid=,pcpu=,comm= --sort=-pcpu | awk '$1 != {os.getpid()} {{print $1, $2, $3}}' "
                      "| head -n 3"),
            # No optional locks: another session may be committing in this repo.
            "commit": sh(f"GIT_OPTIONAL_LOCKS=0 git -C {repo} describe --always --dirty"),
            "binary": sh(f"date -r {skein_bin} '+%Y-%m-%d %H:%M %Z'")}


# ------------------------------------------------------------------ the table

def fmt_rate(m):
    return f"{m['rec_s']:,.0f} rec/s · {m['mb_s']:.1f} MB/s"


def fmt_cpu(m):
    return "" if m.get("cpu_s") is None else f" · {m['cpu_s']:.1f} CPU-s"


def fmt_lat(m):
    s = f"p50 {m['p50']} · p99 {m['p99']} · p99.9 {m['p999']} ms"
    return s + (f" @ {m['rec_s']:,.0f}/s" if "target_rec_s" in m else f" (avg {m['avg_ms']:.2f})")


def table_rows(plan):
    """(label, row key, formatter, the metric the ratio compares) in table order."""
    rows = []
    for size, acks, p in plan["cells"]:
        key = f"produce-{size}-{acks}-{p}"
        rows.append((f"produce {cell_name(size, acks, p)}, max", key + "-max", fmt_rate, "rec_s"))
        rows.append((f"produce {cell_name(size, acks, p)}, ½ Kafka max", key + "-half", fmt_lat, "p99"))
    mib = plan["consume_bytes"] // MIB
    rows += [(f"consume {mib:,} MiB of 1 KiB, 1p (consumer perf)", "consume", fmt_rate, "mb_s"),
             ("franz-go produce 1 KiB acks=all 16p", "franz-produce", fmt_rate, "rec_s"),
             ("franz-go consume it back", "franz-consume", fmt_rate, "rec_s"),
             (f"end-to-end latency 1 KiB acks=all, {plan['e2e_records']:,} msgs", "e2e", fmt_lat, "p99")]
    return rows


def ratio(a, b):
    return None if a is None or not b else a / b


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def broker_figures(b):
    if "peak_rss" not in b:
        return {}
    return {"startup_ms": b["startup_ms"], "restart_ms": b.get("restart_ms"),
            "peak_rss_mib": b["peak_rss"] / MIB,
            "written_per_produced": ratio(b["write_bytes"], b["produced_bytes"])}


BROKER_ROWS = [("startup, fresh data dir (ms)", "startup_ms", "{:,.0f}"),
               ("startup, restart on the run's data (ms)", "restart_ms", "{:,.0f}"),
               ("peak RSS over the whole series (MiB)", "peak_rss_mib", "{:,.0f}"),
               ("disk bytes written ÷ payload bytes produced", "written_per_produced", "{:.2f}")]


def table_line(label, keys, values, cells):
    """One row: the cells, then each Skein value ÷ Kafka's (when Kafka ran)."""
    ratios = [fmt_ratio(ratio(v, values[0])) for k, v in zip(keys, values) if k != "kafka" and keys[0] == "kafka"]
    return "| " + " | ".join([label] + cells + ratios) + " |"


def main_table(results, plan):
    keys = [k for k, _, _ in SERIES if k in results]
    head = ["workload"] + [title for k, title, _ in SERIES if k in results]
    if keys[0] == "kafka":
        head += [f"{short} ÷ Kafka" for k, _, short in SERIES if k in keys[1:]]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, rk, fmt, primary in table_rows(plan):
        ms = [results[k]["rows"].get(rk) for k in keys]
        cells = ["–" if m is None else fmt(m) + fmt_cpu(m) for m in ms]
        out.append(table_line(label, keys, [None if m is None else m[primary] for m in ms], cells))
    figs = [broker_figures(results[k]["broker"]) for k in keys]
    for label, fk, f in BROKER_ROWS:
        vals = [fg.get(fk) for fg in figs]
        out.append(table_line(label, keys, vals, ["–" if v is None else f.format(v) for v in vals]))
    return "\n".join(out)


# ------------------------------------------------------------------ targets

def check(name, value, ok, shown):
    mark = "–" if value is None else ("**met**" if ok(value) else "**not met**")
    return f"| {name} | {'–' if value is None else shown(value)} | {mark} |"


def get(rows, key, metric):
    return rows.get(key, {}).get(metric)


def latency_target(kr, sr):
    """The worst cell decides: every cell must meet it."""
    half = [(ratio(get(sr, c, "p99"), get(kr, c, "p99")), c) for c in sr if c.endswith("-half")]
    half = [h for h in half if h[0] is not None]
    value, cell = max(half) if half else (None, "")
    return check(f"p99 produce latency at ½ Kafka max ≤ 0.5× (worst cell{': ' + cell_of(cell) if cell else ''})",
                 value, lambda v: v <= 0.5, "{:.2f}×".format)


def targets(results, limits):
    """The issue's targets, for Skein with fsync=always (the durable setting)."""
    k, s = results.get("kafka"), results.get("skein-always")
    if not (k and s):
        return "(the targets need both the Kafka and the Skein fsync=always series)"
    kr, sr = k["rows"], s["rows"]
    lines = ["| target | Skein (fsync always) | |", "|---|---|---|"]
    times = "{:.2f}×".format
    for p in (1, 16):
        key = f"produce-1024-all-{p}-max"
        if key in sr or key in kr:
            lines.append(check(f"produce 1 KiB acks=all {p}p ÷ Kafka ≥ 1.5",
                               ratio(get(sr, key, "rec_s"), get(kr, key, "rec_s")), lambda v: v >= 1.5, times))
    lines.append(latency_target(kr, sr))
    lines.append(check("consume throughput (consumer perf MB/s) ≥ 1.2×",
                       ratio(get(sr, "consume", "mb_s"), get(kr, "consume", "mb_s")), lambda v: v >= 1.2, times))
    kf, sf = broker_figures(k["broker"]), broker_figures(s["broker"])
    lines.append(check("peak RSS ≤ 0.25× Kafka's", ratio(sf.get("peak_rss_mib"), kf.get("peak_rss_mib")),
                       lambda v: v <= 0.25, times))
    lines.append(check("startup ≤ 100 ms (the slower of fresh and restart)",
                       max(filter(None, [sf.get("startup_ms"), sf.get("restart_ms")]), default=None),
                       lambda v: v <= 100, "{:.0f} ms".format))
    lines.append(check("disk bytes written per byte produced ≤ 1.5", sf.get("written_per_produced"),
                       lambda v: v <= 1.5, "{:.2f}".format))
    lines.append(durable_target(sr, limits["disk_mb_s_sync_1m"]))
    return "\n".join(lines)


def durable_target(sr, disk_mb_s):
    """The broker's durable produce bandwidth: the best 1 KiB acks=all MB/s
    of either client, both shown (the Java perf producer tops out at ~100-130
    MB/s on this kind of machine whatever the broker, so it alone would
    measure the client)."""
    java = max(get(sr, f"produce-1024-all-{p}-max", "mb_s") or 0 for p in (1, 16)) or None
    franz = get(sr, "franz-produce", "mb_s")
    shares = {name: ratio(mb_s, disk_mb_s) for name, mb_s in (("Java perf producer", java), ("franz-go", franz))}
    shares = {name: share for name, share in shares.items() if share is not None}
    best = max(shares.values(), default=None)
    each = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    return check(f"durable produce (best 1 KiB acks=all MB/s of the two clients) ≥ 60% of the disk's "
                 f"{disk_mb_s:.0f} MB/s (fdatasync every 1 MiB)", best, lambda v: v >= 0.6,
                 lambda v: f"{v:.0%} ({each})")


# ------------------------------------------------------------------ allocations

def allocation_cell(m, requests_field):
    requests = (m or {}).get(requests_field)
    if not requests or m.get("allocations") is None:
        return "–", None
    per_request = m["allocations"] / requests
    return (f"{per_request:,.0f} · {m['allocated_bytes'] / requests / 1024:,.0f} KiB", per_request)


def allocations_section(results, plan):
    """Allocations per request for Skein's series: flat means they do not grow
    with the records (and batches) a request carries."""
    keys = [k for k, _, _ in SERIES if k != "kafka" and k in results]
    if not keys:
        return ""
    rows = [(f"produce {cell_name(size, acks, p)}, max", f"produce-{size}-{acks}-{p}-max", "produce_requests")
            for size, acks, p in plan["cells"]]
    rows.append((f"consume {plan['consume_bytes'] // MIB:,} MiB of 1 KiB, 1p", "consume", "fetch_requests"))
    head = ["workload", "requests", "records per request"] + [title for k, title, _ in SERIES if k in keys]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, row_key, requests_field in rows:
        first = results[keys[0]]["rows"].get(row_key) or {}
        requests = first.get(requests_field)
        if not requests:
            continue
        per = f"{first['records'] / requests:,.0f}" if first.get("records") else "–"
        cells = [allocation_cell(results[k]["rows"].get(row_key), requests_field)[0] for k in keys]
        out.append("| " + " | ".join([label, f"{requests:,.0f}", per] + cells) + " |")
    return "\n".join([
        "Every heap allocation of the broker's Rust code during the run (all threads: connections, Raft, "
        "the storage writer; RocksDB's own C++ allocations are not counted), divided by the Produce "
        "(or Fetch) requests it served, from `skein_allocations_total` and `skein_allocated_bytes_total`. "
        "Cells: allocations per request · bytes allocated per request; requests and records per request "
        "are the first Skein series'. A per-record cost would show as allocations growing with the "
        "records per request (the 100 B cells carry ~10× the records of the 1 KiB cells).", "", *out])


def fsync_cell(m):
    m = m or {}
    requests, fsyncs = m.get("produce_requests"), m.get("fsyncs")
    if not requests or not fsyncs:
        return "–"
    waiting = m.get("fsync_waiting_writes") or 0
    return (f"{fsyncs / requests:.2f} · {m['fsync_seconds'] / fsyncs * 1000:.2f} ms · "
            f"{waiting / fsyncs:.1f}")


def fsync_section(results, plan):
    """What the durable setting costs per request: the journal's fsyncs."""
    keys = [k for k, _, _ in SERIES if k != "kafka" and k in results]
    if not keys:
        return ""
    head = ["workload"] + [title for k, title, _ in SERIES if k in keys]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size, acks, p in plan["cells"]:
        row_key = f"produce-{size}-{acks}-{p}-max"
        cells = [fsync_cell(results[k]["rows"].get(row_key)) for k in keys]
        out.append("| " + " | ".join([f"produce {cell_name(size, acks, p)}, max"] + cells) + " |")
    return "\n".join([
        "The storage journal's fdatasyncs during each unthrottled produce run, from "
        "`skein_journal_fsync_seconds` and `skein_journal_fsync_waiting_writes_total`. Cells: fsyncs per "
        "Produce request · mean fsync time · writes (Raft log appends) whose acknowledgement waited for "
        "each fsync. With fsync always an acks=all request waits for one (acks=1 is answered before it); "
        "with fsync interval the syncs are the periodic ones.", "", *out])


# ------------------------------------------------------------------ the rest

def limits_section(limits):
    f = limits["fsync"]
    return "\n".join([
        f"- sequential write, 1 MiB blocks, fdatasync after every block: **{limits['disk_mb_s_sync_1m']:.0f} MB/s**",
        f"- sequential write, 1 MiB blocks, one fdatasync at the end: {limits['disk_mb_s_sync_end']:.0f} MB/s",
        f"- 4 KiB append + fdatasync ({limits['fsyncs']} times): p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms",
        f"- loopback TCP, one stream between two Python processes: {limits['loopback_mb_s']:,.0f} MB/s"])


SETTINGS = [
    "- consume: fetch.MB.sec and fetch.nMsg.sec of kafka-consumer-perf-test, which leave out the group join "
    "(Skein keeps Kafka's default 3 s group.initial.rebalance.delay.ms; the Kafka start script sets 0); "
    "the topic is filled first with the perf producer (acks=1), so both brokers read recently written data",
    "- franz-go: `franz-client --mode bench` (integration-tests/go/bench.go), franz-go's defaults, a topic created "
    "with 16 partitions; one process produces then consumes, so its CPU-s covers both",
    "- end-to-end latency: Kafka's EndToEndLatency (one record at a time: send, then poll until it is read); "
    "it reports whole milliseconds",
    "- CPU-s: the broker's utime+stime (+ its children's) across the run, from /proc/<pid>/stat; disk bytes "
    "written: /proc/<pid>/io write_bytes from ready to exit (the shutdown's flush included) ÷ record payload "
    "bytes produced by all workloads; peak RSS: VmHWM just before the broker is stopped (the first start's "
    "process, so the peak over the whole series)",
    "- startup: launch to the first answered ApiVersions v0 request (polled every 5 ms); Kafka's fresh start "
    "includes the storage format its start script runs; the restart follows a clean SIGTERM stop",
    "- MB = 2^20 bytes (as the Kafka tools count)"]


def settings_section(cfg, results):
    plan = cfg["plan"]
    lines = [f"- brokers one at a time, each on a fresh data dir under `{cfg['work']}` (removed afterwards); "
             "clients on the same machine over loopback",
             f"- producer perf: `linger.ms={LINGER_MS}` (the 4.x default, set explicitly), all else default "
             "(batch.size 16 KiB; idempotent with acks=all); unthrottled runs "
             + ", ".join(f"{n:,} × {s} B" for s, n in plan["records"].items())
             + "; the runs at ½ Kafka max send half as many at `--throughput` = Kafka's records/s ÷ 2",
             *SETTINGS, "", "Broker commands:", ""]
    lines += [f"    {c}" for c in cfg["broker_commands"].values()]
    first = next((results[k]["commands"] for k, _, _ in SERIES if k in results), [])
    lines += ["", "Client commands of the first series (the others ran the same against their own port):", ""]
    lines += [f"    {c.replace(cfg['tools'] + '/bin/', '')}" for c in first]
    return "\n".join(lines)


def header(cfg, info, elapsed_s):
    load = ", ".join(f"{x:.2f}" for x in info["load"])
    busy = " (**busy machine: figures suspect**)" if info["load"][0] > 0.5 * info["nproc"] else ""
    quick = " (QUICK smoke run: the figures mean nothing)" if cfg["quick"] else ""
    return [f"# Skein vs Apache Kafka 4.3.1, {cfg['date']} on {cfg['machine']}{quick}", "",
            f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, kernel {info['kernel']}, "
            f"{info['java']}. Repository at `{info['commit']}`, skein binary built {info['binary'] or '?'}. "
            f"Load average at start: {load}{busy}. "
            f"Whole run: {elapsed_s / 60:.1f} min.",
            "", "Disk of the data dirs:", "", *indent(info["disk"]),
            "", "Busiest processes at start (pid, %CPU over each one's life, command):", "", *indent(info["top"])]


def indent(text):
    return [f"    {line}" for line in text.splitlines()]


def report(cfg, info, limits, results, elapsed_s):
    errors = [f"- {k}: {e.splitlines()[0]}" for k, r in results.items() for e in r["errors"]]
    parts = header(cfg, info, elapsed_s) + [
        "", "## Results", "",
        "Cells: records/s · MB/s for throughput rows, milliseconds for latency rows, then the broker's CPU "
        "seconds for that run. Ratios compare the first figure of the cells, Skein ÷ Kafka (throughput: "
        "higher is better; latency, RSS, startup, bytes written: lower is better).", "",
        main_table(results, cfg["plan"]), "",
        "## Targets (from the performance issue)", "", targets(results, limits), "",
        "## Allocations per request (Skein)", "", allocations_section(results, cfg["plan"]), "",
        "## Journal fsyncs (Skein)", "", fsync_section(results, cfg["plan"]), "",
        "## Machine limits (same run)", "", limits_section(limits), "",
        "## Settings and commands", "", settings_section(cfg, results), ""]
    if errors:
        parts += ["## Errors", "", *errors, ""]
    return "\n".join(parts)
