// Drives a Streambed node with kafkajs: admin (create, metadata, offsets,
// delete records), a producer (idempotent, gzip) and a consumer group
// member (the classic protocol; kafkajs has no assign). Exits non-zero on
// the first thing that is not as Kafka would have it.
'use strict';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const [bootstrap, topic] = process.argv.slice(2);
const RECORDS = 100;

function check(ok, what) {
  if (!ok) {
    console.error(`kafkajs interop: FAILED: ${what}`);
    process.exit(1);
  }
}

async function main() {
  const kafka = new Kafka({ clientId: 'interop', brokers: [bootstrap], logLevel: logLevel.WARN });
  const admin = kafka.admin();
  await admin.connect();
  check(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true }), 'create returned false');
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  check(md.topics[0].partitions.length === 2, `partitions: ${md.topics[0].partitions.length}`);

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < RECORDS; i++) {
    messages.push({ key: `k${i}`, value: `v${i}`, headers: { n: String(i) } });
  }
  for (const compression of [CompressionTypes.None, CompressionTypes.GZIP]) {
    const half = compression === CompressionTypes.None ? messages.slice(0, RECORDS / 2) : messages.slice(RECORDS / 2);
    const res = await producer.send({ topic, acks: -1, compression, messages: half });
    check(res.every((r) => r.errorCode === 0), `send: ${JSON.stringify(res)}`);
  }
  await producer.disconnect();

  // Read everything back as a group member, committing as it goes.
  const consumer = kafka.consumer({ groupId: `${topic}-group`, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Set();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`group member consumed ${seen.size} of ${RECORDS}`)), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        const key = message.key.toString();
        check(message.value.toString() === `v${key.slice(1)}`, `record ${key}`);
        seen.add(key);
        if (seen.size === RECORDS) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect(); // commits what was read, then leaves
  const committed = await admin.fetchOffsets({ groupId: `${topic}-group`, topics: [topic] });
  const sum = committed[0].partitions.reduce((n, p) => n + Math.max(Number(p.offset), 0), 0);
  check(sum === RECORDS, `committed offsets sum to ${sum}`);

  const offsets = await admin.fetchTopicOffsets(topic);
  const total = offsets.reduce((n, o) => n + Number(o.high), 0);
  check(total === RECORDS, `log ends sum to ${total}`);
  const busiest = offsets.reduce((a, b) => (Number(a.high) >= Number(b.high) ? a : b));
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: busiest.partition, offset: '1' }] });
  const after = await admin.fetchTopicOffsets(topic);
  const p = after.find((o) => o.partition === busiest.partition);
  check(p.low === '1', `log start after deleteTopicRecords: ${p.low}`);
  await admin.disconnect();
  console.log('kafkajs interop: OK');
}

main().catch((e) => {
  console.error(`kafkajs interop: FAILED: ${e.stack || e}`);
  process.exit(1);
});
