package dev.streambed.interop;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Drives a Streambed node with Apache Kafka's Java client: AdminClient
 * (create, describe, alter configs, grow, list offsets, delete records,
 * delete), an idempotent producer, and a consumer with assign and seek
 * (no group). Exits non-zero on the first thing that is not as Kafka
 * would have it.
 */
public final class Interop {
    private static final int RECORDS = 100;

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Interop BOOTSTRAP TOPIC");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1)
                    .configs(Map.of("retention.ms", "86400000", "cleanup.policy", "delete")))).all().get();
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            check(d.partitions().size() == 3, "partitions after create: " + d.partitions().size());
            check(d.topicId() != null, "no topic id");

            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            check("86400000".equals(config(admin, res, "retention.ms")), "retention.ms after create");
            admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                    new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET)))).all().get();
            check("3600000".equals(config(admin, res, "retention.ms")), "retention.ms after alter");
            check(admin.listTopics().names().get().contains(topic), "topic not listed");
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
            d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            check(d.partitions().size() == 4, "partitions after growing: " + d.partitions().size());

            long before = System.currentTimeMillis();
            Map<Integer, Integer> perPartition = produce(bootstrap, topic);
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < 4; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
            for (TopicPartition tp : tps) {
                latest.put(tp, OffsetSpec.latest());
                earliest.put(tp, OffsetSpec.earliest());
            }
            var ends = admin.listOffsets(latest).all().get();
            var starts = admin.listOffsets(earliest).all().get();
            long total = 0;
            for (TopicPartition tp : tps) {
                long end = ends.get(tp).offset();
                check(end == perPartition.getOrDefault(tp.partition(), 0), tp + ": end " + end);
                check(starts.get(tp).offset() == 0, tp + ": start " + starts.get(tp).offset());
                total += end;
            }
            check(total == RECORDS, "records in all partitions: " + total);
            var byTime = admin.listOffsets(Map.of(tps.get(0), OffsetSpec.forTimestamp(before))).all().get();
            check(byTime.get(tps.get(0)).offset() == 0, "offset for a time before the first record");

            consume(bootstrap, topic, tps);
            groupConsume(admin, bootstrap, topic, ends, "consumer");
            groupConsume(admin, bootstrap, topic, ends, "classic");
            staticRestart(admin, bootstrap, topic, "classic");
            staticRestart(admin, bootstrap, topic, "consumer");

            TopicPartition busiest = tps.get(0);
            for (TopicPartition tp : tps) {
                if (ends.get(tp).offset() > ends.get(busiest).offset()) {
                    busiest = tp;
                }
            }
            admin.deleteRecords(Map.of(busiest, RecordsToDelete.beforeOffset(2))).all().get();
            long start = admin.listOffsets(Map.of(busiest, OffsetSpec.earliest())).all().get().get(busiest).offset();
            check(start == 2, "log start after deleteRecords: " + start);

            admin.deleteTopics(List.of(topic)).all().get();
            check(!admin.listTopics().names().get().contains(topic), "deleted topic still listed");
        }
        System.out.println("java interop: OK");
    }

    private static String config(Admin admin, ConfigResource res, String name) throws Exception {
        Config c = admin.describeConfigs(List.of(res)).all().get().get(res);
        ConfigEntry e = c.get(name);
        return e == null ? null : e.value();
    }

    /** Produces RECORDS keyed records idempotently; returns the count per partition. */
    private static Map<Integer, Integer> produce(String bootstrap, String topic) throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        Map<Integer, Integer> counts = new HashMap<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<java.util.concurrent.Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = 0; i < RECORDS; i++) {
                acks.add(producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i)));
            }
            producer.flush();
            for (var f : acks) {
                RecordMetadata m = f.get();
                counts.merge(m.partition(), 1, Integer::sum);
            }
        }
        return counts;
    }

    /** Reads everything with assign + seekToBeginning, then re-reads from a seek. */
    private static void consume(String bootstrap, String topic, List<TopicPartition> tps) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Set<String> seen = new HashSet<>();
            Map<Integer, Long> next = new HashMap<>();
            long deadline = System.currentTimeMillis() + 30_000;
            TopicPartition some = null;
            while (seen.size() < RECORDS) {
                check(System.currentTimeMillis() < deadline, "consumed " + seen.size() + " of " + RECORDS);
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    long want = next.getOrDefault(r.partition(), 0L);
                    check(r.offset() == want, "partition " + r.partition() + ": offset " + r.offset() + ", expected " + want);
                    next.put(r.partition(), want + 1);
                    check(("v" + r.key().substring(1)).equals(r.value()), "record " + r.key() + "=" + r.value());
                    check(seen.add(r.key()), "read twice: " + r.key());
                    if (r.offset() >= 3) {
                        some = new TopicPartition(r.topic(), r.partition());
                    }
                }
            }
            check(some != null, "no partition with 4 records");
            consumer.seek(some, 2);
            long first = -1;
            while (first < 0) {
                check(System.currentTimeMillis() < deadline, "nothing read after a seek");
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    if (r.partition() == some.partition()) {
                        first = r.offset();
                        break;
                    }
                }
            }
            check(first == 2, "first offset after seek to 2: " + first);
        }
    }

    /**
     * Reads everything as a member of a group with the given protocol
     * (consumer: KIP-848; classic: JoinGroup/SyncGroup), commits, and checks
     * the group's committed offsets through the AdminClient.
     */
    private static void groupConsume(Admin admin, String bootstrap, String topic,
            Map<TopicPartition, org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo> ends,
            String protocol) throws Exception {
        String group = topic + "-" + protocol;
        Properties cp = memberProps(bootstrap, group, protocol);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.subscribe(List.of(topic));
            Set<String> seen = new HashSet<>();
            long deadline = System.currentTimeMillis() + 60_000;
            while (seen.size() < RECORDS) {
                check(System.currentTimeMillis() < deadline, protocol + " group member consumed " + seen.size() + " of " + RECORDS);
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    seen.add(r.key());
                }
            }
            consumer.commitSync();
        }
        var committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        for (var e : ends.entrySet()) {
            long end = e.getValue().offset();
            var c = committed.get(e.getKey());
            check(end == 0 ? c == null || c.offset() == 0 : c != null && c.offset() == end,
                    e.getKey() + ": committed " + c + ", log end " + end);
        }
        var described = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        check(described != null, "group not described");
    }

    /**
     * A static member (group.instance.id) closes and a new process of the
     * same instance starts within the session timeout: it is given the
     * member's partitions back at the same generation (no rebalance), and
     * the group shows one member with that instance id.
     */
    private static void staticRestart(Admin admin, String bootstrap, String topic, String protocol) throws Exception {
        String group = topic + "-static-" + protocol;
        Properties cp = memberProps(bootstrap, group, protocol);
        cp.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "java-static-1");
        if (protocol.equals("classic")) {
            cp.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
        }
        Set<TopicPartition> first;
        int generation;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.subscribe(List.of(topic));
            first = assigned(consumer, protocol + " static member");
            generation = consumer.groupMetadata().generationId();
        }
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            consumer.subscribe(List.of(topic));
            Set<TopicPartition> again = assigned(consumer, protocol + " restarted static member");
            check(again.equals(first), protocol + ": the restarted instance got " + again + ", its first process had " + first);
            check(consumer.groupMetadata().generationId() == generation, protocol + ": generation " + generation
                    + " became " + consumer.groupMetadata().generationId() + " (a rebalance)");
            check(consumer.groupMetadata().groupInstanceId().orElse("").equals("java-static-1"), "instance id lost");
            var described = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            check(described.members().size() == 1, protocol + ": " + described.members().size() + " members after a static restart");
            var m = described.members().iterator().next();
            check(m.groupInstanceId().orElse("").equals("java-static-1"), protocol + ": described member has instance id " + m.groupInstanceId());
        }
    }

    /** A group member's settings: string records, from the earliest offset. */
    private static Properties memberProps(String bootstrap, String group, String protocol) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return cp;
    }

    /** Polls until the consumer has an assignment covering every partition of the topic. */
    private static Set<TopicPartition> assigned(KafkaConsumer<String, String> consumer, String who) {
        long deadline = System.currentTimeMillis() + 60_000;
        while (consumer.assignment().isEmpty() || consumer.groupMetadata().generationId() <= 0) {
            check(System.currentTimeMillis() < deadline, who + " got no assignment");
            consumer.poll(Duration.ofMillis(200));
        }
        return new HashSet<>(consumer.assignment());
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("java interop: FAILED: " + what);
            System.exit(1);
        }
    }
}
