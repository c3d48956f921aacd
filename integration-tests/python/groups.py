"""Consumer groups (classic protocol) with a real Python Kafka client.

    python groups.py --client confluent|kafka-python --bootstrap HOST:PORT
        --topic T --group G [--assignor range|roundrobin|cooperative-sticky]
        [--protocol classic|consumer]

With `--protocol consumer` (confluent-kafka only) the members use KIP-848:
the broker assigns (`--assignor uniform|range` names its assignor) and owns
the session timeout and heartbeat interval, so the broker under test must be
started with a short `group.consumer.session.timeout.ms` for step 3.

Three members (threads, one consumer each) share a 6-partition topic; each
commits after processing what it polled. The script checks, after every
change of membership, that every partition is owned by exactly one member
and that every produced record was consumed:

1. three members consume the first 600 records;
2. one member leaves (close): the other two take over, 600 more records;
3. a fourth member runs in a child process and is killed with SIGKILL once
   it owns partitions: its session times out and the survivors take its
   partitions over, 600 more records;
4. the committed offsets equal the end offsets.

Duplicates are allowed only as at-least-once redelivery (records consumed
after the last commit of a member that left or died). Prints one JSON line
with "ok": true, the counts, and the rebalance latencies measured (from a
member's subscribe to every member consuming again); exits non-zero on
failure.
"""
import argparse
import json
import multiprocessing
import os
import signal
import sys
import threading
import time

PARTITIONS = 6
PER_ROUND = 600
DEADLINE_S = 90


def consumer_config(args, session_timeout_ms):
    return {
        "bootstrap": args.bootstrap,
        "group": args.group,
        "assignor": args.assignor,
        "session_timeout_ms": session_timeout_ms,
        "client": args.client,
        "protocol": args.protocol,
    }


class Member:
    """One consumer in the group, behind a small client-neutral interface."""

    def __init__(self, config, name):
        self.name = name
        self.client = config["client"]
        if self.client == "confluent":
            from confluent_kafka import Consumer

            settings = {
                "bootstrap.servers": config["bootstrap"],
                "group.id": config["group"],
                "client.id": name,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
            if config["protocol"] == "consumer":
                # KIP-848: the broker assigns and owns session and heartbeats.
                settings.update({"group.protocol": "consumer", "group.remote.assignor": config["assignor"]})
            else:
                settings.update({
                    "partition.assignment.strategy": config["assignor"],
                    "session.timeout.ms": config["session_timeout_ms"],
                    "heartbeat.interval.ms": 1000,
                })
            self.consumer = Consumer(settings)
        else:
            from kafka import KafkaConsumer
            from kafka.coordinator.assignors.range import RangePartitionAssignor
            from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

            assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}
            self.consumer = KafkaConsumer(
                bootstrap_servers=config["bootstrap"],
                group_id=config["group"],
                client_id=name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                partition_assignment_strategy=[assignors[config["assignor"]]],
                session_timeout_ms=config["session_timeout_ms"],
                heartbeat_interval_ms=1000,
            )

    def subscribe(self, topic):
        self.consumer.subscribe([topic])

    def poll(self):
        """Records polled as (partition, offset, value)."""
        if self.client == "confluent":
            out = []
            for msg in self.consumer.consume(200, 0.2):
                if msg.error():
                    raise RuntimeError(f"{self.name}: consume error: {msg.error()}")
                out.append((msg.partition(), msg.offset(), msg.value()))
            return out
        batches = self.consumer.poll(timeout_ms=200, max_records=200)
        return [(r.partition, r.offset, r.value) for records in batches.values() for r in records]

    def commit(self):
        """Commits what was polled. A commit refused because a rebalance moved
        the partitions is normal at-least-once behaviour: the next owner
        reads from the last commit. The final committed offsets are checked."""
        if self.client == "confluent":
            from confluent_kafka import KafkaError, KafkaException

            tolerated = {
                KafkaError._NO_OFFSET, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                KafkaError.UNKNOWN_MEMBER_ID, KafkaError._ASSIGNMENT_LOST, KafkaError._STATE,
            }
            try:
                self.consumer.commit(asynchronous=False)
            except KafkaException as error:
                if error.args[0].code() not in tolerated:
                    raise
        else:
            from kafka.errors import (CommitFailedError, IllegalGenerationError, RebalanceInProgressError,
                                      UnknownMemberIdError)

            try:
                self.consumer.commit()
            except (CommitFailedError, IllegalGenerationError, RebalanceInProgressError, UnknownMemberIdError):
                pass

    def assignment(self):
        return {tp.partition for tp in self.consumer.assignment()}

    def close(self):
        self.consumer.close()


class MemberThread(threading.Thread):
    def __init__(self, config, name, topic, sink):
        super().__init__(daemon=True)
        self.member, self.topic, self.sink = Member(config, name), topic, sink
        self.stop_flag = threading.Event()
        self.owned = set()
        self.error = None

    def run(self):
        try:
            self.member.subscribe(self.topic)
            while not self.stop_flag.is_set():
                records = self.member.poll()
                if records:
                    self.sink(self.member.name, records)
                    self.member.commit()
                self.owned = self.member.assignment()
            self.member.close()
        except Exception as error:  # reported by the main thread
            self.error = f"{self.member.name}: {error!r}"


def child_member(config, topic, queue):
    """A member in its own process, reporting what it polls before committing."""
    member = Member(config, "doomed")
    member.subscribe(topic)
    while True:
        records = member.poll()
        owned = sorted(member.assignment())
        queue.put(("state", owned, [(p, o) for p, o, _ in records]))
        if records:
            member.commit()


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.seen = {}

    def add(self, name, records):
        with self.lock:
            for partition, offset, _ in records:
                self.seen[(partition, offset)] = self.seen.get((partition, offset), 0) + 1

    def add_offsets(self, pairs):
        self.add("child", [(p, o, None) for p, o in pairs])

    def count(self):
        with self.lock:
            return len(self.seen)

    def duplicates(self):
        with self.lock:
            return sum(n - 1 for n in self.seen.values())


def produce(args, start):
    if args.client == "confluent":
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": args.bootstrap, "acks": "all"})
        for i in range(start, start + PER_ROUND):
            producer.produce(args.topic, key=str(i).encode(), value=f"record-{i}".encode(), partition=i % PARTITIONS)
        if producer.flush(30):
            raise RuntimeError("produce did not complete")
    else:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks="all")
        for i in range(start, start + PER_ROUND):
            producer.send(args.topic, key=str(i).encode(), value=f"record-{i}".encode(), partition=i % PARTITIONS)
        producer.flush(30)
        producer.close()


def create_topic(args):
    if args.client == "confluent":
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        admin.create_topics([NewTopic(args.topic, PARTITIONS, 1)])[args.topic].result(30)
    else:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
        admin.create_topics([NewTopic(args.topic, PARTITIONS, 1)])
        admin.close()


def wait_until(what, check, threads, deadline_s=DEADLINE_S):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        for thread in threads:
            if thread.error:
                raise RuntimeError(thread.error)
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def exclusive_cover(owned_sets):
    """Every partition owned by exactly one member."""
    union = [p for owned in owned_sets for p in owned]
    return sorted(union) == list(range(PARTITIONS))


def committed_offsets(args):
    if args.client == "confluent":
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group})
        parts = consumer.committed([TopicPartition(args.topic, p) for p in range(PARTITIONS)], timeout=30)
        consumer.close()
        return {tp.partition: tp.offset for tp in parts}
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False)
    offsets = {p: consumer.committed(TopicPartition(args.topic, p)) for p in range(PARTITIONS)}
    consumer.close()
    return offsets


def run(args):
    create_topic(args)
    ledger = Ledger()
    latencies = {}
    config = consumer_config(args, 10_000)
    members = [MemberThread(config, f"member-{i}", args.topic, ledger.add) for i in range(3)]
    produce(args, 0)
    started = time.time()
    for member in members:
        member.start()
    wait_until("three members to share and consume round 1",
               lambda: ledger.count() >= PER_ROUND and exclusive_cover(m.owned for m in members), members)
    latencies["three_members_join_s"] = round(time.time() - started, 3)

    leaving = members.pop()
    left = time.time()
    leaving.stop_flag.set()
    leaving.join(30)
    produce(args, PER_ROUND)
    wait_until("two members to take over after a leave",
               lambda: ledger.count() >= 2 * PER_ROUND and exclusive_cover(m.owned for m in members), members)
    latencies["leave_to_consuming_s"] = round(time.time() - left, 3)

    # spawn, not fork: forking a process whose client library runs threads
    # is undefined behaviour for librdkafka.
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    child_config = consumer_config(args, 6_000)
    child = spawn.Process(target=child_member, args=(child_config, args.topic, queue), daemon=True)
    joined = time.time()
    child.start()
    child_owned = []

    def child_owns_partitions():
        nonlocal child_owned
        while not queue.empty():
            _, owned, consumed = queue.get()
            child_owned = owned
            ledger.add_offsets(consumed)
        return bool(child_owned) and exclusive_cover([set(child_owned)] + [m.owned for m in members])

    wait_until("a member in a child process to get partitions", child_owns_partitions, members)
    latencies["join_to_consuming_s"] = round(time.time() - joined, 3)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    killed = time.time()
    while not queue.empty():
        _, _, consumed = queue.get()
        ledger.add_offsets(consumed)
    produce(args, 2 * PER_ROUND)
    wait_until("survivors to take over the killed member's partitions",
               lambda: ledger.count() >= 3 * PER_ROUND and exclusive_cover(m.owned for m in members), members)
    latencies["kill_to_consuming_s"] = round(time.time() - killed, 3)

    for member in members:
        member.stop_flag.set()
    for member in members:
        member.join(30)
    committed = committed_offsets(args)
    expected = {p: 3 * PER_ROUND // PARTITIONS for p in range(PARTITIONS)}
    if committed != expected:
        raise RuntimeError(f"committed offsets {committed} != end offsets {expected}")
    missing = [(p, o) for p in range(PARTITIONS) for o in range(expected[p]) if (p, o) not in ledger.seen]
    if missing:
        raise RuntimeError(f"records never consumed: {missing[:10]} ({len(missing)} in all)")
    print(json.dumps({
        "ok": True,
        "client": args.client,
        "assignor": args.assignor,
        "protocol": args.protocol,
        "consumed": ledger.count(),
        "redelivered": ledger.duplicates(),
        "latency": latencies,
    }))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=["confluent", "kafka-python"], required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--assignor", default="range")
    parser.add_argument("--protocol", choices=["classic", "consumer"], default="classic")
    args = parser.parse_args()
    if args.protocol == "consumer" and args.client != "confluent":
        parser.error("--protocol consumer needs --client confluent")
    try:
        run(args)
    except Exception as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        sys.exit(1)


if __name__ == "__main__":
    main()
