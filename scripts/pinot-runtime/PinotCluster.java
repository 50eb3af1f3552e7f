import java.io.File;
import java.util.HashMap;
import java.util.Map;
import org.apache.pinot.common.utils.ZkStarter;
import org.apache.pinot.spi.services.ServiceRole;
import org.apache.pinot.tools.admin.command.StartServiceManagerCommand;

/**
 * A whole Pinot cluster in one JVM, on loopback, for the integration tests (test/helpers/pinot-cluster.ts):
 * ZooKeeper, then controller, broker and server through pinot-tools' service manager. Run as a
 * single-file program against the runtime's jars: `java -cp 'libs/*' PinotCluster.java <args>`.
 *
 * Arguments: dataDir zkPort controllerPort brokerPort serverNettyPort serverAdminPort serverGrpcPort managerPort.
 * Prints `PINOT_CLUSTER_STARTED` once every role has started, then runs until killed; exits 1 when a
 * role fails to start.
 */
public final class PinotCluster {
  private static final String CLUSTER = "EdgeTestCluster";
  private static final String HOST = "127.0.0.1";

  public static void main(String[] args) throws Exception {
    if (args.length != 8) {
      System.err.println("usage: PinotCluster dataDir zkPort controllerPort brokerPort serverNettyPort serverAdminPort serverGrpcPort managerPort");
      System.exit(2);
    }
    String dataDir = args[0];
    int zkPort = Integer.parseInt(args[1]);
    String zkAddress = HOST + ":" + zkPort;
    ZkStarter.startLocalZkServer(zkPort, new File(dataDir, "zookeeper").getPath());

    Map<String, Object> controller = new HashMap<>();
    controller.put("controller.zk.str", zkAddress);
    controller.put("controller.helix.cluster.name", CLUSTER);
    controller.put("controller.host", HOST);
    controller.put("controller.port", args[2]);
    controller.put("controller.data.dir", new File(dataDir, "controller").getPath());
    controller.put("controller.mode", "dual");

    Map<String, Object> broker = new HashMap<>();
    broker.put("pinot.zk.server", zkAddress);
    broker.put("pinot.cluster.name", CLUSTER);
    broker.put("pinot.broker.hostname", HOST);
    broker.put("pinot.broker.client.queryPort", args[3]);

    Map<String, Object> server = new HashMap<>();
    server.put("pinot.zk.server", zkAddress);
    server.put("pinot.cluster.name", CLUSTER);
    server.put("pinot.server.netty.host", HOST);
    server.put("pinot.server.netty.port", args[4]);
    server.put("pinot.server.adminapi.port", args[5]);
    server.put("pinot.server.grpc.port", args[6]);
    server.put("pinot.server.instance.dataDir", new File(dataDir, "server/index").getPath());
    server.put("pinot.server.instance.segmentTarDir", new File(dataDir, "server/segmentTar").getPath());

    StartServiceManagerCommand command = new StartServiceManagerCommand()
        .setZkAddress(zkAddress)
        .setClusterName(CLUSTER)
        .setPort(Integer.parseInt(args[7]))
        // Without this the command adds a default CONTROLLER, BROKER and SERVER on fixed ports.
        .setBootstrapServices(new String[0]);
    command.addBootstrapService(ServiceRole.CONTROLLER, controller);
    command.addBootstrapService(ServiceRole.BROKER, broker);
    command.addBootstrapService(ServiceRole.SERVER, server);
    if (!command.execute()) {
      System.err.println("PINOT_CLUSTER_FAILED");
      System.exit(1);
    }
    System.out.println("PINOT_CLUSTER_STARTED");
    Thread.currentThread().join();
  }
}
