"""Timestamp lookups with confluent-kafka: produce records with chosen,
non-monotonic timestamps, then check offsets_for_times returns the first
offset whose timestamp is at least each target (-1 past the newest).

    python timestamps.py --bootstrap HOST:PORT --topic T [--count N]
"""
import argparse
import json
import sys

from confluent_kafka import Consumer, Producer, TopicPartition


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()

    base = 1_700_000_000_000
    # A permutation of 0..count-1 scaled to seconds: timestamps jump around.
    timestamps = [base + (i * 7919 % args.count) * 1000 for i in range(args.count)]
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 20, "compression.type": "zstd"})
    for i, ts in enumerate(timestamps):
        producer.produce(args.topic, value=str(i).encode(), partition=0, timestamp=ts)
    if producer.flush(60):
        raise RuntimeError("undelivered records")

    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "unused"})
    targets = [base - 1, base, base + 1, base + 1000 * (args.count // 2) + 1, base + 1000 * (args.count - 1), base + 1000 * args.count]
    checked = 0
    for target in targets:
        # One query per target: a request naming the same partition twice is
        # answered per partition, so the client would keep only one answer.
        [answer] = consumer.offsets_for_times([TopicPartition(args.topic, 0, target)], 30)
        expected = next((offset for offset, ts in enumerate(timestamps) if ts >= target), -1)
        if answer.error or answer.offset != expected:
            raise RuntimeError(f"target {target}: expected offset {expected}, got {answer.offset} ({answer.error})")
        checked += 1
    consumer.close()
    print(json.dumps({"checked": checked}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:
        print(f"timestamps failed: {error}", file=sys.stderr)
        sys.exit(1)
