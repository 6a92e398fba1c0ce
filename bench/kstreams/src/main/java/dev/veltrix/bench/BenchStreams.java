package dev.veltrix.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The Kafka Streams application of the benchmark: the same work as the
 * Veltrix scenarios, written as a Kafka Streams user would write it (the DSL,
 * Jackson for JSON, exactly_once_v2, default RocksDB stores).
 *
 * <pre>
 * BenchStreams stateless|aggregate BOOTSTRAP IN OUT APP_ID STATE_DIR [THREADS]
 * </pre>
 *
 * stateless: filter type == "order.created", add "bench":"yes", write to OUT.
 * aggregate: group by customer_id (through a repartition topic), count and sum
 * the totals per customer, write every update to OUT as {"count":N,"sum":S}.
 * It runs until SIGTERM and exits 1 if the application fails.
 */
public final class BenchStreams {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private BenchStreams() {}

  /** A customer's running totals, the aggregate's value and output. */
  public record Totals(long count, double sum) {}

  /** JSON values through Jackson, as a Serde of type T. */
  static final class JsonSerde<T> implements Serde<T> {
    private final Class<T> type;

    JsonSerde(Class<T> type) {
      this.type = type;
    }

    @Override
    public Serializer<T> serializer() {
      return (topic, value) -> {
        if (value == null) {
          return null;
        }
        try {
          return MAPPER.writeValueAsBytes(value);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      };
    }

    @Override
    public Deserializer<T> deserializer() {
      return (topic, data) -> {
        if (data == null) {
          return null;
        }
        try {
          return MAPPER.readValue(data, type);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      };
    }
  }

  static Topology stateless(String in, String out) {
    Serde<JsonNode> json = new JsonSerde<>(JsonNode.class);
    StreamsBuilder b = new StreamsBuilder();
    b.stream(in, Consumed.with(Serdes.String(), json))
        .filter((key, event) -> "order.created".equals(event.path("type").asText()))
        .mapValues(event -> (JsonNode) ((ObjectNode) event).put("bench", "yes"))
        .to(out, Produced.with(Serdes.String(), json));
    return b.build();
  }

  static Topology aggregate(String in, String out) {
    Serde<JsonNode> json = new JsonSerde<>(JsonNode.class);
    Serde<Totals> totals = new JsonSerde<>(Totals.class);
    StreamsBuilder b = new StreamsBuilder();
    KStream<String, JsonNode> orders = b.stream(in, Consumed.with(Serdes.String(), json));
    orders
        .groupBy((key, event) -> event.path("customer_id").asText(),
            Grouped.with("by-customer", Serdes.String(), json))
        .aggregate(() -> new Totals(0, 0),
            (customer, event, t) -> new Totals(t.count() + 1, t.sum() + event.path("total").asDouble()),
            Materialized.<String, Totals, KeyValueStore<Bytes, byte[]>>as("counts")
                .withKeySerde(Serdes.String())
                .withValueSerde(totals))
        .toStream()
        .to(out, Produced.with(Serdes.String(), totals));
    return b.build();
  }

  public static void main(String[] args) throws InterruptedException {
    if (args.length < 6 || args.length > 7) {
      System.err.println("usage: BenchStreams stateless|aggregate BOOTSTRAP IN OUT APP_ID STATE_DIR [THREADS]");
      System.exit(2);
    }
    String mode = args[0];
    Topology topology;
    switch (mode) {
      case "stateless" -> topology = stateless(args[2], args[3]);
      case "aggregate" -> topology = aggregate(args[2], args[3]);
      default -> {
        System.err.println("unknown mode " + mode);
        System.exit(2);
        return;
      }
    }
    int threads = args.length == 7 ? Integer.parseInt(args[6]) : Runtime.getRuntime().availableProcessors();

    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[4]);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
    p.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    // Every update of the aggregate goes downstream, as Veltrix's
    // emit: on_update does (the record cache would coalesce them per commit).
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);

    KafkaStreams streams = new KafkaStreams(topology, p);
    CountDownLatch done = new CountDownLatch(1);
    int[] exit = {0};
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING) {
        System.err.println("kstreams " + mode + ": running (" + threads + " stream threads)");
      }
      if (now == KafkaStreams.State.ERROR) {
        exit[0] = 1;
        done.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(8));
      done.countDown();
    }, "shutdown"));
    streams.start();
    done.await();
    if (exit[0] != 0) {
      System.err.println("kstreams " + mode + ": the application failed");
      streams.close(Duration.ofSeconds(5));
      System.exit(exit[0]);
    }
  }
}
