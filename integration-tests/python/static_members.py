"""Static group membership (KIP-345) with confluent-kafka (librdkafka).

    python static_members.py --bootstrap HOST:PORT --topic T --group G

Two static members (group.instance.id "a" and "b") share a 4-partition
topic. Member "a" is closed (a static member leaves no LeaveGroup) and
restarted with the same instance id within its session timeout. The script
checks that the restarted "a" gets exactly its old partitions back and that
"b" saw no rebalance: librdkafka reports every assignment change through
the assign/revoke callbacks, and b's are not called again. Prints one JSON line with "ok": true; exits non-zero on failure.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 4


class StaticMember:
    def __init__(self, args, instance_id):
        self.assigned_events = 0
        self.revoked_events = 0
        self.owned = set()
        self.consumer = Consumer({
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "group.instance.id": instance_id,
            "session.timeout.ms": 30000,
            "heartbeat.interval.ms": 1000,
            "auto.offset.reset": "earliest",
        })
        self.consumer.subscribe([args.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)

    def on_assign(self, consumer, partitions):
        self.assigned_events += 1
        self.owned = {p.partition for p in partitions}

    def on_revoke(self, consumer, partitions):
        self.revoked_events += 1
        self.owned = set()

    def poll(self):
        msg = self.consumer.poll(0.1)
        if msg is not None and msg.error():
            raise RuntimeError(f"consume error: {msg.error()}")


def wait_until(what, check, members, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        for member in members:
            member.poll()
        if check():
            return
    raise RuntimeError(f"timed out waiting for {what}")


def run(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(args.topic, PARTITIONS, 1)])[args.topic].result(30)
    a, b = StaticMember(args, "a"), StaticMember(args, "b")
    wait_until("both static members to own partitions",
               lambda: a.owned and b.owned and sorted(a.owned | b.owned) == list(range(PARTITIONS))
               and not a.owned & b.owned, [a, b])
    a_before, b_before = set(a.owned), set(b.owned)
    b_events = (b.assigned_events, b.revoked_events)
    a.consumer.close()
    restarted = time.time()
    a2 = StaticMember(args, "a")
    wait_until("the restarted member to get its partitions back", lambda: bool(a2.owned), [a2, b])
    latency = round(time.time() - restarted, 3)
    # Give a (wrong) rebalance time to show itself in b's callbacks.
    wait_until("a quiet moment", lambda: time.time() - restarted > latency + 3, [a2, b])
    if a2.owned != a_before:
        raise RuntimeError(f"restarted member got {sorted(a2.owned)}, had {sorted(a_before)}")
    if (b.assigned_events, b.revoked_events) != b_events or b.owned != b_before:
        raise RuntimeError(f"the other member rebalanced: events {b_events} -> "
                           f"{(b.assigned_events, b.revoked_events)}, owned {sorted(b_before)} -> {sorted(b.owned)}")
    a2.consumer.close()
    b.consumer.close()
    print(json.dumps({"ok": True, "restart_to_assigned_s": latency, "a": sorted(a_before), "b": sorted(b_before)}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()
    try:
        run(args)
    except Exception as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        sys.exit(1)


if __name__ == "__main__":
    main()
