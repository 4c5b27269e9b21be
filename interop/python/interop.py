"""Drives a Streambed node with confluent-kafka (librdkafka): AdminClient,
an idempotent producer and a consumer with assign (no group). Exits
non-zero on the first thing that is not as Kafka would have it."""

import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions,
                                   NewTopic, OffsetSpec)

RECORDS = 100


def check(ok, what):
    if not ok:
        print(f"python interop: FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                       config={"retention.ms": "86400000"})])
    fs[topic].result(15)
    # A second create is refused with TOPIC_ALREADY_EXISTS.
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2)])[topic].result(15)
        check(False, "a topic was created twice")
    except Exception as e:  # KafkaException wrapping the error
        check(e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, f"second create: {e}")
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    cfg = admin.describe_configs([res])[res].result(15)
    check(cfg["retention.ms"].value == "86400000", f"retention.ms: {cfg['retention.ms'].value}")
    # Shrinking is refused; growing works.
    try:
        admin.create_partitions([NewPartitions(topic, 1)])[topic].result(15)
        check(False, "partitions shrank")
    except Exception as e:
        check(e.args[0].code() == KafkaError.INVALID_PARTITIONS, f"shrink: {e}")
    admin.create_partitions([NewPartitions(topic, 3)])[topic].result(15)
    md = admin.list_topics(topic, timeout=15)
    check(len(md.topics[topic].partitions) == 3, f"partitions: {len(md.topics[topic].partitions)}")

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "compression.type": "zstd", "linger.ms": 5})
    delivered = {}

    def on_delivery(err, msg):
        check(err is None, f"delivery: {err}")
        delivered[msg.key().decode()] = (msg.partition(), msg.offset())

    for i in range(RECORDS):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", headers={"n": str(i)}, on_delivery=on_delivery)
    check(producer.flush(30) == 0, "records left unflushed")
    check(len(delivered) == RECORDS, f"delivered {len(delivered)}")

    tps = [TopicPartition(topic, p) for p in range(3)]
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps})
    total = sum(f.result(15).offset for f in ends.values())
    check(total == RECORDS, f"log ends sum to {total}")

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop-unused",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    seen = {}
    deadline = time.time() + 30
    while len(seen) < RECORDS:
        check(time.time() < deadline, f"consumed {len(seen)} of {RECORDS}")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        check(msg.error() is None, f"consume: {msg.error()}")
        key = msg.key().decode()
        check(msg.value().decode() == "v" + key[1:], f"record {key}")
        check(dict(msg.headers())["n"].decode() == key[1:], f"headers {msg.headers()}")
        check((msg.partition(), msg.offset()) == delivered[key], f"{key} at {msg.partition()}/{msg.offset()}, delivered at {delivered[key]}")
        seen[key] = True
    consumer.close()

    # Group members with the consumer protocol (KIP-848: the broker
    # assigns) and the classic one, committing what they read.
    for protocol in ("consumer", "classic"):
        member = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-{protocol}", "group.protocol": protocol,
                           "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        member.subscribe([topic])
        got = set()
        deadline = time.time() + 60
        while len(got) < RECORDS:
            check(time.time() < deadline, f"{protocol} group member consumed {len(got)} of {RECORDS}")
            msg = member.poll(0.5)
            if msg is None:
                continue
            check(msg.error() is None, f"group consume: {msg.error()}")
            got.add(msg.key().decode())
        member.commit(asynchronous=False)
        committed = member.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        check(sum(max(tp.offset, 0) for tp in committed) == RECORDS, f"{protocol}: committed {committed}")
        member.close()

    admin.delete_topics([topic])[topic].result(15)
    print("python interop: OK")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
