"""Spark Structured Streaming and batch queries against a Streambed node
through Spark's own Kafka source and sink (spark-sql-kafka-0-10): a batch
read with startingOffsets/endingOffsets, a streaming read into a memory
sink while records are produced, and a write back into Streambed. Exits
non-zero on the first thing that is not as Kafka would have it.

Usage: interop_spark.py BOOTSTRAP IN_TOPIC OUT_TOPIC JARS_DIR
IN_TOPIC holds 100 records (k0=v0 ... k99=v99) over 3 partitions;
OUT_TOPIC exists and is empty.
"""

import glob
import json
import os
import sys
import time

from confluent_kafka import Producer
from pyspark.sql import SparkSession


def check(ok, what):
    if not ok:
        print(f"spark interop: FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main(bootstrap, topic, out_topic, jars_dir):
    jars = ",".join(sorted(glob.glob(os.path.join(jars_dir, "*.jar"))))
    spark = (SparkSession.builder.master("local[2]").appName("streambed-interop")
             .config("spark.jars", jars)
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")

    # Batch: everything, then a range given by offsets per partition.
    batch = (spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap)
             .option("subscribe", topic)
             .option("startingOffsets", "earliest").option("endingOffsets", "latest").load())
    rows = batch.selectExpr("CAST(key AS STRING) k", "CAST(value AS STRING) v", "partition", "offset").collect()
    check(len(rows) == 100, f"batch read {len(rows)} records")
    check(all(r.v == "v" + r.k[1:] for r in rows), "batch records")
    ends = {}
    for r in rows:
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    start = {topic: {str(p): 1 for p in ends}}
    end = {topic: {str(p): e for p, e in ends.items()}}
    ranged = (spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap)
              .option("subscribe", topic)
              .option("startingOffsets", json.dumps(start)).option("endingOffsets", json.dumps(end)).load())
    check(ranged.count() == 100 - len(ends), f"a ranged read gave {ranged.count()} records")

    # Streaming: the query reads what is there and what arrives.
    query = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
             .option("subscribe", topic).option("startingOffsets", "earliest").load()
             .selectExpr("CAST(key AS STRING) k", "CAST(value AS STRING) v")
             .writeStream.format("memory").queryName("seen").start())
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(100, 150):
        producer.produce(topic, key=f"k{i}", value=f"v{i}")
        if i % 10 == 0:
            producer.flush(10)
            time.sleep(0.2)
    check(producer.flush(30) == 0, "records left unflushed")
    deadline = time.time() + 120
    while True:
        n = spark.sql("SELECT count(DISTINCT k) FROM seen").first()[0]
        if n == 150:
            break
        check(time.time() < deadline and query.exception() is None, f"the stream saw {n} of 150 records: {query.exception()}")
        time.sleep(0.5)
    query.stop()

    # Write back into Streambed with the Kafka sink.
    (spark.sql("SELECT k AS key, upper(v) AS value FROM seen")
     .write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("topic", out_topic).save())
    back = (spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", out_topic).load()
            .selectExpr("CAST(key AS STRING) k", "CAST(value AS STRING) v").collect())
    check(len({r.k for r in back}) == 150 and all(r.v == "V" + r.k[1:] for r in back), f"wrote back {len(back)} records")
    spark.stop()
    print("spark interop: OK")


if __name__ == "__main__":
    main(*sys.argv[1:5])
