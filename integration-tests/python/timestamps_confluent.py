"""Timestamp lookups with confluent-kafka (librdkafka): offsets_for_times.

    venv/bin/python timestamps_confluent.py --bootstrap HOST:PORT --topic T
        [--count N] [--partition P] [--timeout SECONDS]

Produces N records (idempotent, acks=all) to one partition of the topic
(default 0; the topic is auto-created or made by the caller) with explicit,
non-monotonic CreateTime timestamps:

    ts(i) = base + ((i * 7919) % N) * 1000      (a permutation of N seconds)

where base is a whole second two days ago. It then reads the records back and
checks each one's timestamp, and asks offsets_for_times for a set of targets
(before the first, every record's own timestamp for small N or a sample for
large N, values between two timestamps, the maximum, past the maximum, and
the special targets -2 = earliest and -1 = latest), checking each answer
against the first offset whose timestamp is >= the target, computed locally
(-1 when no record qualifies). Prints one JSON line on stdout; exits 1 with a
message on stderr if anything fails.
"""
import argparse
import bisect
import json
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, KafkaException, Producer,
                             TopicPartition)

STEP = 7919  # prime, so i -> (i * STEP) % N permutes 0..N-1 unless N is a multiple of it


class Failure(Exception):
    pass


_logged_errors = set()


def log_error(err):
    if err.fatal():
        raise KafkaException(err)
    if str(err) not in _logged_errors and len(_logged_errors) < 20:
        _logged_errors.add(str(err))
        print(f"timestamps: client error (retried): {err}", file=sys.stderr)


def produce(args, timestamps):
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        # Several batches, so that lookups cross batch boundaries.
        "batch.num.messages": max(1, min(100, args.count // 4)),
        "message.timeout.ms": int(args.timeout * 1000),
        "error_cb": log_error,
    })
    offsets = [None] * args.count
    errors = []

    def delivered(err, msg):
        i = int(msg.key()[1:])
        if err is not None:
            errors.append(f"record {i}: {err}")
        else:
            offsets[i] = msg.offset()

    for i, ts in enumerate(timestamps):
        while True:
            try:
                producer.produce(args.topic, key=b"k%d" % i, value=b"%d:ts=%d" % (i, ts),
                                 partition=args.partition, timestamp=ts, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    left = producer.flush(args.timeout)
    if left or errors:
        raise Failure(f"{left} records undelivered, {len(errors)} failed: {'; '.join(errors[:5])}")
    if any(o is None for o in offsets):
        raise Failure("some records had no delivery report")
    for i in range(1, len(offsets)):
        if offsets[i] <= offsets[i - 1]:
            raise Failure(f"record {i} got offset {offsets[i]}, not after record {i - 1}'s {offsets[i - 1]}")
    return offsets


def read_back(consumer, args, timestamps, offsets, end):
    """Reads the partition from the start and checks every record's timestamp."""
    by_offset = {o: i for i, o in enumerate(offsets)}
    consumer.assign([TopicPartition(args.topic, args.partition, OFFSET_BEGINNING)])
    deadline = time.monotonic() + args.timeout
    seen = 0
    next_offset = -1
    while next_offset < end:
        if time.monotonic() >= deadline:
            raise Failure(f"read only {seen} records (up to offset {next_offset}) in {args.timeout}s; end is {end}")
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error():
                raise Failure(f"consume error: {msg.error()}")
            next_offset = msg.offset() + 1
            i = by_offset.get(msg.offset())
            if i is None:
                raise Failure(f"unexpected record at offset {msg.offset()} (key {msg.key()!r}); "
                              "the topic must be empty at the start")
            kind, ts = msg.timestamp()
            if msg.key() != b"k%d" % i or (kind, ts) != (TIMESTAMP_CREATE_TIME, timestamps[i]):
                raise Failure(f"offset {msg.offset()}: key {msg.key()!r} timestamp {(kind, ts)}, "
                              f"want key k{i} CreateTime timestamp {timestamps[i]}")
            seen += 1
    consumer.unassign()
    return seen


def targets_for(timestamps):
    ordered = sorted(timestamps)
    lo, hi = ordered[0], ordered[-1]
    n = len(ordered)
    picks = ordered if n <= 200 else [ordered[k * (n - 1) // 100] for k in range(101)]
    targets = [lo - 86_400_000, lo - 1, 0]
    for ts in picks:
        targets += [ts, ts + 1, ts - 1]
    targets += [hi, hi + 1, hi + 86_400_000]
    return sorted(set(t for t in targets if t >= 0))


class Expected:
    """The first offset whose timestamp is >= a target, by binary search over
    the running maximum of the timestamps in offset order (it first reaches
    the target exactly at that record)."""

    def __init__(self, timestamps, offsets):
        order = sorted(range(len(offsets)), key=lambda i: offsets[i])
        self.offsets = [offsets[i] for i in order]
        self.running_max = []
        for i in order:
            self.running_max.append(max(timestamps[i], self.running_max[-1] if self.running_max else timestamps[i]))

    def __call__(self, target):
        k = bisect.bisect_left(self.running_max, target)
        return self.offsets[k] if k < len(self.offsets) else -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--partition", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    if args.count < 1 or args.count % STEP == 0:
        parser.error(f"--count must be positive and not a multiple of {STEP}")

    started = time.monotonic()
    summary = {"client": "confluent-kafka", "ok": False, "topic": args.topic, "count": args.count,
               "partition": args.partition, "produced": 0, "consumed": 0, "lookups": 0}
    base = (int(time.time()) - 2 * 86_400) * 1000
    timestamps = [base + ((i * STEP) % args.count) * 1000 for i in range(args.count)]
    consumer = None
    code = 0
    try:
        offsets = produce(args, timestamps)
        summary["produced"] = args.count
        consumer = Consumer({
            "bootstrap.servers": args.bootstrap,
            "group.id": "skein-timestamps-assign-only",  # required by the binding; never joined
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
            "error_cb": log_error,
        })
        tp = TopicPartition(args.topic, args.partition)
        low, high = consumer.get_watermark_offsets(tp, timeout=args.timeout, cached=False)
        if high != offsets[-1] + 1:
            raise Failure(f"high watermark {high}, want {offsets[-1] + 1} after producing")
        summary["consumed"] = read_back(consumer, args, timestamps, offsets, high)

        expected = Expected(timestamps, offsets)
        lookups = [(t, expected(t)) for t in targets_for(timestamps)]
        lookups += [(-2, low), (-1, high)]  # the special targets: earliest, latest
        wrong = []
        for target, want in lookups:  # one request each: one partition, many targets
            got = consumer.offsets_for_times([TopicPartition(args.topic, args.partition, target)],
                                             timeout=args.timeout)[0]
            if got.error is not None:
                wrong.append(f"target {target}: error {got.error}")
            elif got.offset != want:
                wrong.append(f"target {target}: offset {got.offset}, want {want}")
        summary["lookups"] = len(lookups)
        if wrong:
            raise Failure(f"{len(wrong)} of {len(lookups)} offsets_for_times answers wrong "
                          f"(base {base}): {'; '.join(wrong[:10])}")
        summary["ok"] = True
    except (Failure, KafkaException) as e:
        summary["error"] = str(e)
        print(f"timestamps: FAILED: {e}", file=sys.stderr)
        code = 1
    finally:
        if consumer is not None:
            consumer.close()
    summary["elapsed_seconds"] = round(time.monotonic() - started, 3)
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
