import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.HashMap;
import java.util.Map;
import org.apache.pinot.broker.broker.helix.HelixBrokerStarter;
import org.apache.pinot.controller.ControllerStarter;
import org.apache.pinot.server.starter.helix.HelixServerStarter;
import org.apache.pinot.spi.env.PinotConfiguration;
import org.apache.pinot.spi.services.ServiceStartable;
import org.apache.zookeeper.server.ServerConfig;
import org.apache.zookeeper.server.ZooKeeperServerMain;

/**
 * A whole Pinot cluster in one JVM, for the integration tests and `npm run platform`
 * (scripts/local-services/pinot-cluster-process.ts): ZooKeeper, then controller, broker and server. Run as a single-file program against the runtime's jars:
 * `java -cp 'libs/*' PinotCluster.java <args>`.
 *
 * Every listener binds 127.0.0.1 but one (test/integration/pinot/pinot-setup.test.ts checks): Pinot's
 * defaults bind all interfaces, so ZooKeeper is started here with its client address set, the HTTP
 * listeners are declared through `*.access.protocols.http.host`, the server's gRPC query endpoint
 * (unused by the tests) is off, and pinot-tools' service manager, whose admin API binds 0.0.0.0 with no
 * setting, is not used: the roles are started directly. The exception is the server's query port
 * (Netty), which Pinot 0.11 binds to every interface with no setting to change it.
 *
 * Arguments: dataDir zkPort controllerPort brokerPort serverNettyPort serverAdminPort.
 * Prints `PINOT_CLUSTER_STARTED` once every role has started, then runs until killed; exits 1 when a
 * role fails to start.
 */
public final class PinotCluster {
  private static final String CLUSTER = "EdgeTestCluster";
  private static final String HOST = "127.0.0.1";
  /** ZooKeeper comes up in about a second here; this only bounds one that never does. */
  private static final long ZOOKEEPER_START_TIMEOUT_MS = 60_000;

  /** A standalone ZooKeeper on loopback (ServerConfig.parse(String[]) would bind every interface). */
  private static final class LoopbackZooKeeperConfig extends ServerConfig {
    LoopbackZooKeeperConfig(int port, File dataDir) {
      clientPortAddress = new InetSocketAddress(HOST, port);
      this.dataDir = dataDir;
      dataLogDir = dataDir;
      // As Pinot's ZkStarter: no per-client connection limit (Helix opens several per role).
      maxClientCnxns = 0;
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: PinotCluster dataDir zkPort controllerPort brokerPort serverNettyPort serverAdminPort");
      System.exit(2);
    }
    String dataDir = args[0];
    int zkPort = Integer.parseInt(args[1]);
    String zkAddress = HOST + ":" + zkPort;
    startZooKeeper(zkPort, new File(dataDir, "zookeeper"));

    Map<String, Object> controller = new HashMap<>();
    controller.put("controller.zk.str", zkAddress);
    controller.put("controller.helix.cluster.name", CLUSTER);
    controller.put("controller.host", HOST);
    controller.put("controller.access.protocols", "http");
    controller.put("controller.access.protocols.http.host", HOST);
    controller.put("controller.access.protocols.http.port", args[2]);
    // Without `controller.port` the address servers upload segments to comes from the listener marked vip.
    controller.put("controller.access.protocols.http.vip", "true");
    controller.put("controller.data.dir", new File(dataDir, "controller").getPath());
    controller.put("controller.mode", "dual");

    Map<String, Object> broker = new HashMap<>();
    broker.put("pinot.zk.server", zkAddress);
    broker.put("pinot.cluster.name", CLUSTER);
    broker.put("pinot.broker.hostname", HOST);
    broker.put("pinot.broker.client.access.protocols", "http");
    broker.put("pinot.broker.client.access.protocols.http.host", HOST);
    broker.put("pinot.broker.client.access.protocols.http.port", args[3]);

    Map<String, Object> server = new HashMap<>();
    server.put("pinot.zk.server", zkAddress);
    server.put("pinot.cluster.name", CLUSTER);
    server.put("pinot.server.netty.host", HOST);
    server.put("pinot.server.netty.port", args[4]);
    server.put("pinot.server.adminapi.access.protocols", "http");
    server.put("pinot.server.adminapi.access.protocols.http.host", HOST);
    server.put("pinot.server.adminapi.access.protocols.http.port", args[5]);
    server.put("pinot.server.grpc.enable", "false");
    // One machine: its start is checked every second (Pinot's default, 10 s, adds up to 10 s to a start).
    server.put("pinot.server.startup.serviceStatusCheckIntervalMs", "1000");
    server.put("pinot.server.instance.dataDir", new File(dataDir, "server/index").getPath());
    server.put("pinot.server.instance.segmentTarDir", new File(dataDir, "server/segmentTar").getPath());

    try {
      start(new ControllerStarter(), controller);
      start(new HelixBrokerStarter(), broker);
      start(new HelixServerStarter(), server);
    } catch (Exception e) {
      e.printStackTrace();
      System.err.println("PINOT_CLUSTER_FAILED");
      System.exit(1);
    }
    System.out.println("PINOT_CLUSTER_STARTED");
    Thread.currentThread().join();
  }

  private static void start(ServiceStartable role, Map<String, Object> config) throws Exception {
    role.init(new PinotConfiguration(config));
    role.start();
  }

  /** Starts ZooKeeper on its own thread and returns once it accepts connections. */
  private static void startZooKeeper(int port, File dataDir) throws Exception {
    // As Pinot's ZkStarter: no admin HTTP server (Jetty on 8080, every interface), no log4j JMX beans.
    System.setProperty("zookeeper.admin.enableServer", "false");
    System.setProperty("zookeeper.jmx.log4j.disable", "true");
    ServerConfig config = new LoopbackZooKeeperConfig(port, dataDir);
    Thread zooKeeper = new Thread(() -> {
      try {
        new ZooKeeperServerMain().runFromConfig(config);
      } catch (Exception e) {
        e.printStackTrace();
        System.err.println("PINOT_CLUSTER_FAILED: ZooKeeper stopped");
        System.exit(1);
      }
    }, "zookeeper");
    zooKeeper.start();
    long until = System.currentTimeMillis() + ZOOKEEPER_START_TIMEOUT_MS;
    for (;;) {
      try (Socket probe = new Socket(HOST, port)) {
        return;
      } catch (IOException notYet) {
        if (System.currentTimeMillis() > until) throw new IllegalStateException("ZooKeeper did not listen on " + HOST + ":" + port);
        Thread.sleep(100);
      }
    }
  }
}
