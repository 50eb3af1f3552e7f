import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.pinot.segment.local.utils.TableConfigUtils;
import org.apache.pinot.spi.config.table.TableConfig;
import org.apache.pinot.spi.data.Schema;
import org.apache.pinot.spi.utils.JsonUtils;

/**
 * Checks Pinot schemas and table configs with Pinot's own parsers and validator (pinot-spi's JsonUtils,
 * pinot-segment-local's TableConfigUtils.validate), the checks the controller runs on POST /tables.
 * Run as a single-file program against the runtime's jars:
 * `java -cp 'libs/*' ValidatePinotConfigs.java <schema.json> <table.json> [<schema.json> <table.json> ...]`.
 *
 * Prints one line per pair, `VALID <table>` or `INVALID <table>: <reason>`; exits 0 when every pair is
 * valid, 1 otherwise, 2 on bad usage.
 */
public final class ValidatePinotConfigs {
  public static void main(String[] args) throws Exception {
    if (args.length == 0 || args.length % 2 != 0) {
      System.err.println("usage: ValidatePinotConfigs <schema.json> <table.json> [...]");
      System.exit(2);
    }
    boolean allValid = true;
    for (int i = 0; i < args.length; i += 2) {
      String label = args[i + 1];
      try {
        Schema schema = JsonUtils.stringToObject(Files.readString(Path.of(args[i])), Schema.class);
        TableConfig tableConfig = JsonUtils.stringToObject(Files.readString(Path.of(args[i + 1])), TableConfig.class);
        label = tableConfig.getTableName();
        schema.validate();
        TableConfigUtils.validate(tableConfig, schema);
        System.out.println("VALID " + label);
      } catch (Exception e) {
        allValid = false;
        String reason = String.valueOf(e.getMessage()).replace('\n', ' ');
        System.out.println("INVALID " + label + ": " + e.getClass().getSimpleName() + ": " + reason);
      }
    }
    System.exit(allValid ? 0 : 1);
  }
}
