import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Everything committed in one topic, read with Apache Kafka's own Java consumer, read_committed: the
 * exactly-once tests' oracle (test/helpers/kafka-oracle-reader.ts runs it). No consumer group: every
 * partition is assigned and read from its start, so no rebalance can hand a record out twice and no
 * group join can make a busy machine look like an empty topic. It stops when every partition's
 * position has reached the end a read_committed reader may see (its last stable offset, taken when
 * it starts), never on a quiet spell.
 *
 * Usage: CommittedTopicReader BOOTSTRAP TOPIC DEADLINE_MS. Prints one record per line: partition,
 * offset, headers (name:value pairs, hex), key (hex or "-"), value (hex or "-"), tab-separated.
 */
public class CommittedTopicReader {
  private static String hex(byte[] bytes) {
    if (bytes == null) return "-";
    StringBuilder out = new StringBuilder(bytes.length * 2);
    for (byte b : bytes) out.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
    return out.toString();
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String topic = args[1];
    long deadline = System.currentTimeMillis() + Long.parseLong(args[2]);
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    StringBuilder out = new StringBuilder();
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> partitions = new ArrayList<>();
      for (PartitionInfo info : consumer.partitionsFor(topic, Duration.ofMillis(Math.max(1, deadline - System.currentTimeMillis())))) {
        partitions.add(new TopicPartition(topic, info.partition()));
      }
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      // With read_committed, the end offsets are the last stable offsets: what a committed reader can reach.
      Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
      while (true) {
        boolean done = true;
        for (TopicPartition partition : partitions) {
          if (consumer.position(partition) < ends.get(partition)) done = false;
        }
        if (done) break;
        if (System.currentTimeMillis() > deadline) {
          StringBuilder where = new StringBuilder();
          for (TopicPartition partition : partitions) {
            where.append(' ').append(partition.partition()).append(':').append(consumer.position(partition)).append('/').append(ends.get(partition));
          }
          System.err.println("did not reach the end of " + topic + " in time (partition:position/end)" + where);
          System.exit(3);
        }
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(500))) {
          StringBuilder headers = new StringBuilder();
          for (Header header : record.headers()) {
            if (headers.length() > 0) headers.append(',');
            headers.append(hex(header.key().getBytes(StandardCharsets.UTF_8))).append(':').append(hex(header.value()));
          }
          out.append(record.partition()).append('\t').append(record.offset()).append('\t')
              .append(headers.length() == 0 ? "-" : headers).append('\t')
              .append(hex(record.key())).append('\t').append(hex(record.value())).append('\n');
        }
      }
    }
    System.out.print(out);
    System.out.flush();
  }
}
