// ClusterTool is kafka.sh's client: it checks that a cluster is ready for
// exactly-once work and creates topics. It uses only kafka-clients, so the
// broker's own classpath runs it; kafka.sh compiles it once per cluster dir.
//
//   probe BOOTSTRAP NODES TIMEOUT_SECONDS
//       waits until NODES brokers are registered and a transactional producer
//       can commit a record (to __veltrix_probe); exits 1 at the deadline
//   create-topic BOOTSTRAP NAME PARTITIONS REPLICATION [key=value ...]
//       creates a topic; an existing topic with the same partition count is
//       success, one with another count an error
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringSerializer;

public final class ClusterTool {
    private static final String PROBE_TOPIC = "__veltrix_probe";

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            usage();
        }
        switch (args[0]) {
            case "probe" -> {
                if (args.length != 4) usage();
                System.exit(probe(args[1], Integer.parseInt(args[2]), Integer.parseInt(args[3])));
            }
            case "create-topic" -> {
                if (args.length < 5) usage();
                Map<String, String> configs = new HashMap<>();
                for (int i = 5; i < args.length; i++) {
                    int eq = args[i].indexOf('=');
                    if (eq <= 0) {
                        System.err.println("create-topic: topic config " + args[i] + " is not key=value");
                        System.exit(2);
                    }
                    configs.put(args[i].substring(0, eq), args[i].substring(eq + 1));
                }
                System.exit(createTopic(args[1], args[2], Integer.parseInt(args[3]),
                        Short.parseShort(args[4]), configs));
            }
            default -> usage();
        }
    }

    private static void usage() {
        System.err.println("usage: ClusterTool probe BOOTSTRAP NODES TIMEOUT_SECONDS");
        System.err.println("       ClusterTool create-topic BOOTSTRAP NAME PARTITIONS REPLICATION [key=value ...]");
        System.exit(2);
    }

    private static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000");
        return Admin.create(p);
    }

    // probe retries each stage until it passes or the deadline comes, and
    // says which stage it was stuck in.
    private static int probe(String bootstrap, int nodes, int timeoutSeconds) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(timeoutSeconds).toNanos();
        String stage = "connect";
        String last = "";
        while (System.nanoTime() < deadline) {
            try (Admin admin = admin(bootstrap)) {
                stage = "brokers registered";
                int registered = admin.describeCluster().nodes().get().size();
                if (registered < nodes) {
                    last = registered + " of " + nodes + " brokers registered";
                    Thread.sleep(250);
                    continue;
                }
                stage = "probe topic";
                try {
                    admin.createTopics(List.of(new NewTopic(PROBE_TOPIC, 1, (short) Math.min(3, nodes)))).all().get();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) throw e;
                }
                stage = "transactional commit";
                commitOne(bootstrap);
                return 0;
            } catch (Exception e) {
                Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
                last = c.getClass().getSimpleName() + ": " + c.getMessage();
                Thread.sleep(250);
            }
        }
        System.err.println("probe: not ready at stage \"" + stage + "\": " + last);
        return 1;
    }

    private static void commitOne(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "veltrix-probe");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "10000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        try (KafkaProducer<String, String> producer =
                     new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(PROBE_TOPIC, "probe", "ready"));
            producer.commitTransaction();
        }
    }

    private static int createTopic(String bootstrap, String name, int partitions, short replication,
                                   Map<String, String> configs) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            try {
                admin.createTopics(List.of(new NewTopic(name, partitions, replication).configs(configs))).all().get();
                System.out.println("created " + name + " (" + partitions + " partitions, replication " + replication + ")");
                return 0;
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    System.err.println("create-topic " + name + ": " + e.getCause().getMessage());
                    return 1;
                }
            }
            TopicDescription d = admin.describeTopics(List.of(name)).allTopicNames().get().get(name);
            if (d.partitions().size() != partitions) {
                System.err.println("create-topic " + name + ": exists with " + d.partitions().size()
                        + " partitions, not " + partitions);
                return 1;
            }
            System.out.println("exists " + name + " (" + partitions + " partitions)");
            return 0;
        }
    }
}
