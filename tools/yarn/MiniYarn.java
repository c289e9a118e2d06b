// A local multi-node YARN for rehearsing the EMR step: Hadoop's MiniYARNCluster, one
// ResourceManager and N NodeManagers (each its own container host), bound to 127.0.0.1.
//
//   java -cp '.jars/yarn/*' <--add-opens ...> tools/yarn/MiniYarn.java <conf dir> <node managers>
//
// Writes yarn-site.xml and core-site.xml into <conf dir> (a HADOOP_CONF_DIR for spark-submit),
// prints "READY <resource manager address>" and runs until its standard input closes (or it is
// terminated), then stops the cluster. Started and stopped by tests/yarn/conftest.py and by
// `make yarn-cluster`. Runs as a single-file Java program: nothing to compile.

import java.io.File;
import java.io.FileOutputStream;
import java.io.OutputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.apache.hadoop.yarn.server.resourcemanager.scheduler.fifo.FifoScheduler;

public class MiniYarn {
  private static final String LOOPBACK = "127.0.0.1";

  public static void main(String[] args) throws Exception {
    File confDir = new File(args[0]);
    int nodeManagers = Integer.parseInt(args[1]);
    YarnConfiguration conf = new YarnConfiguration();
    // FIFO: no capacity-scheduler queues to declare.
    conf.set(YarnConfiguration.RM_SCHEDULER, FifoScheduler.class.getName());
    // Every server listens on the loopback interface only.
    for (String bindHost : new String[] {
        YarnConfiguration.RM_BIND_HOST, YarnConfiguration.NM_BIND_HOST,
        YarnConfiguration.TIMELINE_SERVICE_BIND_HOST}) {
      conf.set(bindHost, LOOPBACK);
    }
    // Room for a driver and an executor per NodeManager on a 2-core, 24 GB machine; YARN's
    // memory and core accounting only (the machine is shared, as on a laptop).
    conf.setInt(YarnConfiguration.NM_PMEM_MB, 6144);
    conf.setInt(YarnConfiguration.NM_VCORES, 2);
    conf.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 256);
    conf.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, false);
    conf.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
    // A nearly full disk must not mark the NodeManagers unhealthy (silent hangs otherwise).
    conf.setFloat(YarnConfiguration.NM_MAX_PER_DISK_UTILIZATION_PERCENTAGE, 100.0f);
    // NodeManagers report to the ResourceManager every 200 ms (not 1 s): containers are
    // allocated and their ends noticed sooner, which is most of a short job's wait.
    conf.setLong(YarnConfiguration.RM_NM_HEARTBEAT_INTERVAL_MS, 200);
    // Keep the containers' logs after the application, for the tests to read.
    conf.setInt(YarnConfiguration.DEBUG_NM_DELETE_DELAY_SEC, 600);

    MiniYARNCluster cluster = new MiniYARNCluster("fruits", nodeManagers, 1, 1);
    cluster.init(conf);
    cluster.start();
    Runtime.getRuntime().addShutdownHook(new Thread(cluster::stop));

    Configuration started = cluster.getConfig();
    String resourceManager = started.get(YarnConfiguration.RM_ADDRESS);
    while (resourceManager.endsWith(":0")) { // the port is known once the RM listens
      Thread.sleep(100);
      resourceManager = started.get(YarnConfiguration.RM_ADDRESS);
    }
    confDir.mkdirs();
    write(started, new File(confDir, "yarn-site.xml"));
    Configuration core = new Configuration(false);
    core.set("fs.defaultFS", "file:///");
    write(core, new File(confDir, "core-site.xml"));
    System.out.println("READY " + resourceManager);
    System.out.flush();

    while (System.in.read() != -1) {
      // runs until the parent closes our standard input
    }
    cluster.stop();
    System.exit(0);
  }

  private static void write(Configuration conf, File file) throws Exception {
    File staged = new File(file.getPath() + ".tmp");
    try (OutputStream out = new FileOutputStream(staged)) {
      conf.writeXml(out);
    }
    if (!staged.renameTo(file)) {
      throw new IllegalStateException("cannot write " + file);
    }
  }
}
