"""Produces numbered records with acks=all (idempotent) until killed or done,
printing one line per acknowledged record: "<partition> <offset> <value>".

Used by integration-tests/tests/durability.rs, which kill -9s the broker while
this runs, restarts it and checks every acknowledged record is still there.
Output is flushed per line so nothing acknowledged is lost with this process.
"""
import argparse
import sys

from confluent_kafka import Producer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args()

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 2,
        "message.timeout.ms": 30000,
    })

    def acknowledged(err, msg):
        if err is None:
            sys.stdout.write(f"{msg.partition()} {msg.offset()} {msg.value().decode()}\n")
            sys.stdout.flush()

    for i in range(args.count):
        while True:
            try:
                producer.produce(args.topic, value=f"record-{i}".encode(), on_delivery=acknowledged)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
