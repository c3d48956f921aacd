"""Produce-then-consume round trip with a real Python Kafka client.

    python roundtrip.py --client confluent|kafka-python --bootstrap HOST:PORT
        --topic T [--count N] [--size BYTES] [--compression none|gzip|snappy|lz4|zstd]
        [--acks all|1] [--partitions P]

Creates the topic (P partitions) with the client's admin API, produces N keyed
records (the value embeds its index, padded to SIZE bytes), then reads every
partition from the beginning in assign mode (no consumer group) and checks
that each record arrived exactly once, intact, and in production order per
partition. Prints one JSON summary line on stdout; exits non-zero on failure.
"""
import argparse
import json
import sys
import time


def value_for(index: int, size: int) -> bytes:
    head = f"{index}:".encode()
    return head + bytes((index + j) % 251 for j in range(max(0, size - len(head))))


class Confluent:
    def __init__(self, args):
        from confluent_kafka import Consumer, Producer, TopicPartition
        from confluent_kafka.admin import AdminClient, NewTopic

        self.args, self.TopicPartition = args, TopicPartition
        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        futures = admin.create_topics([NewTopic(args.topic, args.partitions, 1)])
        futures[args.topic].result(30)
        self.producer = Producer({
            "bootstrap.servers": args.bootstrap,
            "acks": args.acks,
            "compression.type": args.compression,
            "enable.idempotence": args.acks == "all",
            "linger.ms": 5,
            "message.max.bytes": max(1_000_000, args.size * 2),
        })
        self.consumer = Consumer({
            "bootstrap.servers": args.bootstrap,
            "group.id": "unused-assign-mode",
            "enable.auto.commit": False,
            "fetch.message.max.bytes": max(1_048_576, args.size * 2),
        })

    def produce_all(self, records):
        errors = []

        def report(err, msg):
            if err is not None:
                errors.append(str(err))

        for key, value in records:
            while True:
                try:
                    self.producer.produce(self.args.topic, key=key, value=value, on_delivery=report)
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.producer.poll(0)
        remaining = self.producer.flush(60)
        if errors or remaining:
            raise RuntimeError(f"delivery failed: {errors[:3]} ({remaining} undelivered)")

    def consume(self, expected, deadline):
        from confluent_kafka import OFFSET_BEGINNING

        self.consumer.assign([self.TopicPartition(self.args.topic, p, OFFSET_BEGINNING) for p in range(self.args.partitions)])
        seen = []
        while len(seen) < expected and time.time() < deadline:
            for msg in self.consumer.consume(500, 1.0):
                if msg.error():
                    raise RuntimeError(f"consume error: {msg.error()}")
                seen.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
        self.consumer.close()
        return seen


class KafkaPython:
    def __init__(self, args):
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition
        from kafka.admin import KafkaAdminClient, NewTopic

        self.args, self.TopicPartition = args, TopicPartition
        admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
        admin.create_topics([NewTopic(args.topic, args.partitions, 1)])
        admin.close()
        codec = None if args.compression == "none" else args.compression
        self.producer = KafkaProducer(
            bootstrap_servers=args.bootstrap,
            acks=-1 if args.acks == "all" else int(args.acks),
            compression_type=codec,
            linger_ms=5,
            max_request_size=max(1_048_576, args.size * 2),
        )
        self.consumer = KafkaConsumer(
            bootstrap_servers=args.bootstrap,
            enable_auto_commit=False,
            max_partition_fetch_bytes=max(1_048_576, args.size * 2),
        )

    def produce_all(self, records):
        futures = [self.producer.send(self.args.topic, key=k, value=v) for k, v in records]
        self.producer.flush(60)
        for future in futures:
            future.get(timeout=30)
        self.producer.close()

    def consume(self, expected, deadline):
        partitions = [self.TopicPartition(self.args.topic, p) for p in range(self.args.partitions)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)
        seen = []
        while len(seen) < expected and time.time() < deadline:
            for tp, msgs in self.consumer.poll(timeout_ms=1000, max_records=1000).items():
                seen.extend((tp.partition, m.offset, m.key, m.value) for m in msgs)
        self.consumer.close()
        return seen


def check(seen, count, size):
    by_index = {}
    last_per_partition = {}
    for partition, offset, key, value in seen:
        index = int(key.decode()[1:])
        if index in by_index:
            raise RuntimeError(f"record {index} delivered twice")
        if value != value_for(index, size):
            raise RuntimeError(f"record {index} has a corrupt value")
        previous = last_per_partition.get(partition)
        if previous is not None and (offset <= previous[0] or index <= previous[1]):
            raise RuntimeError(f"partition {partition} out of order at offset {offset}")
        last_per_partition[partition] = (offset, index)
        by_index[index] = offset
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        raise RuntimeError(f"{len(missing)} records missing, first {missing[:5]}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=["confluent", "kafka-python"], required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--compression", default="none")
    parser.add_argument("--acks", default="all")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    started = time.time()
    client = Confluent(args) if args.client == "confluent" else KafkaPython(args)
    # Keys spread records over partitions; the key names the index.
    client.produce_all((f"k{i}".encode(), value_for(i, args.size)) for i in range(args.count))
    produced_at = time.time()
    seen = client.consume(args.count, started + args.timeout)
    check(seen, args.count, args.size)
    print(json.dumps({
        "client": args.client, "produced": args.count, "consumed": len(seen),
        "produce_seconds": round(produced_at - started, 3), "total_seconds": round(time.time() - started, 3),
    }))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:  # report any failure as a clear one-line message
        print(f"roundtrip failed: {error}", file=sys.stderr)
        sys.exit(1)
