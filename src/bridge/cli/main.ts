#!/usr/bin/env node
import { parseArgs } from "node:util";
import { CommandError, ExitCode, exitWhenWritten, processHost } from "../../cli-kit/index.ts";
import { AGENT_VERSION } from "../../runtime/index.ts";
import { SettingsError } from "../../settings-kit/index.ts";
import type { BridgeSettings } from "../settings/index.ts";
import { bridgeFlagOptions, loadBridgeSettings } from "../settings/index.ts";

const USAGE = `usage: edge-bridge [command] [options]

The companion bridge: every agent event from NATS JetStream into Kafka, exactly once, and the
fleet's devices as OpenFrame MachinePinotMessage rows on devices-topic.

commands:
  run       run the bridge (the default; the service manager starts this)
  pinot-setup --controller URL [--pinot-kafka-brokers HOST:PORT,...]
            create or update the Pinot schemas and REALTIME tables of pinot/ (idempotent); exit 1,
            nothing changed, when Pinot cannot make a change in place (primary key, column type,
            upsert/dedup, topic, partitions) or a topic's partition count differs from kafka.partitions
  status    every running instance of this group and its shards (asks over NATS; else reads the
            local status file); --json for scripts
  tail TOPIC [--follow | --from-end]
            what the bridge wrote to a Kafka topic, as read_committed readers see it: one JSON line
            per record (key, partition, offset, timestamp, headers, value), from the beginning to
            the end; --follow keeps reading new ones, --from-end prints only new ones (Ctrl-C stops)
  version   print the version

options (each also EDGE_BRIDGE_* in the environment, or a key of settings.json; see README.md):
  --nats-url URL[,URL]  --user U --password P --token T --nkey-seed-file F --creds-file F
  --tls-ca F --tls-cert F --tls-key F   --system-nats-url URL --system-creds-file F
  --kafka-brokers HOST:PORT[,...]  --kafka-client-id ID  --kafka-sasl-mechanism PLAIN|SCRAM-SHA-256|SCRAM-SHA-512
  --kafka-sasl-username U  --kafka-sasl-password-file F  --kafka-tls-ca F --kafka-tls-cert F --kafka-tls-key F
  --kafka-partitions N  --platform edge|openframe  --tenant-id ID  --organization-id ID  --group NAME
  --instance-id ID  --metrics-listen 127.0.0.1:PORT|off (default 127.0.0.1:9465)
  --data-dir DIR  --config-dir DIR  --log-level LEVEL

exit codes: 0 stopped cleanly, 1 a runtime failure (Kafka refuses the bridge for good), 2 a bad setting`;

function settingsFrom(flags: Record<string, string | boolean | string[] | boolean[] | undefined>): BridgeSettings {
  return loadBridgeSettings({ env: process.env, flags, privileged: processHost.privileged }).settings;
}

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      ...bridgeFlagOptions(),
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      controller: { type: "string" },
      "pinot-kafka-brokers": { type: "string" },
      follow: { type: "boolean", short: "f" },
      "from-end": { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return ExitCode.ok;
  }
  const command = positionals[0] ?? "run";
  switch (command) {
    case "run": {
      const { runBridge } = await import("./run-bridge.ts");
      return runBridge(settingsFrom(values));
    }
    case "status": {
      const { fetchBridgeStatus, formatBridgeStatus } = await import("./status-command.ts");
      const report = await fetchBridgeStatus(settingsFrom(values));
      process.stdout.write(`${values.json ? JSON.stringify(report, null, 2) : formatBridgeStatus(report)}\n`);
      // As the agent's status: 0 while an instance runs, 1 when none does.
      return report.running ? ExitCode.ok : ExitCode.failure;
    }
    case "pinot-setup": {
      const { controller, "pinot-kafka-brokers": pinotKafkaBrokers, ...settingFlags } = values;
      if (!controller)
        throw new CommandError("pinot-setup needs --controller URL (the Pinot controller)", ExitCode.badSettings);
      const { runPinotSetup } = await import("../pinot/index.ts");
      const actions = await runPinotSetup(settingsFrom(settingFlags), {
        controllerUrl: controller,
        ...(pinotKafkaBrokers ? { kafkaBrokersForPinot: pinotKafkaBrokers } : {}),
      });
      for (const action of actions) {
        const line =
          action.kind === "unchanged"
            ? `unchanged ${action.what} ${action.name}`
            : action.kind === "update-table"
              ? `update-table ${action.name} (${action.because} differs)`
              : `${action.kind} ${action.name}`;
        process.stdout.write(`${line}\n`);
      }
      return ExitCode.ok;
    }
    case "tail": {
      const { tailCommand } = await import("./tail-command.ts");
      const { follow, "from-end": fromEnd, ...settingFlags } = values;
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      // A reader that went away (`| head`) ends the command, quietly.
      process.stdout.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code === "EPIPE") process.exit(ExitCode.ok);
      });
      await tailCommand(
        settingsFrom(settingFlags),
        positionals[1],
        { follow: follow === true, fromEnd: fromEnd === true, signal: stop.signal },
        (line) => process.stdout.write(`${line}\n`),
      );
      return ExitCode.ok;
    }
    case "version":
      process.stdout.write(`${AGENT_VERSION}\n`);
      return ExitCode.ok;
    case "help":
      process.stdout.write(`${USAGE}\n`);
      return ExitCode.ok;
    default:
      throw new CommandError(`unknown command ${JSON.stringify(command)}\n${USAGE}`, ExitCode.badSettings);
  }
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommandError) return error.exitCode;
  if (error instanceof SettingsError) return ExitCode.badSettings;
  if (error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS"))
    return ExitCode.badSettings;
  return ExitCode.failure;
}

main(process.argv.slice(2)).then(
  (code) => exitWhenWritten(code),
  (error: unknown) => {
    process.stderr.write(`edge-bridge: ${error instanceof Error ? error.message : String(error)}\n`);
    exitWhenWritten(exitCodeFor(error));
  },
);
