#!/usr/bin/env node
import { parseArgs } from "node:util";
import { loadSettings, settingsFlagOptions, SettingsError, type FlagValues, type Settings } from "../settings/index.ts";
import { AGENT_VERSION } from "../runtime/version.ts";
import { MachineIdError } from "../identity/machine-id.ts";
import { ReservedMachineIdError, UnsafeSubjectTokenError } from "../contracts/index.ts";
import { InboxPrefixError } from "../identity/permissions.ts";
import { CommandError, ExitCode } from "./exit-codes.ts";

const USAGE = `usage: edge-agent <command> [options]

commands:
  run          run the agent (the daemon; the service manager starts this)
  status       show the agent's state (asks the running agent, else reads its status file); --json for scripts
  enroll       --server URL [--creds FILE | --token T | --user U --password P | --nkey-seed-file F]
               [--machine-id ID] [--tag k=v ...] [--skip-link-test]: write the settings file, test the link
  config       get|set|push|delete the remote configuration in the agent-config KV bucket (see README)
  install-service / uninstall-service   register or remove the systemd unit for this executable (no package)
  dev-setup    create the platform's JetStream streams and KV bucket on a server (development and tests)
  permissions  <machineId> [--inbox-prefix P] [--json]: the NATS permission set for that machine's identity
               (nats-server user block and JWT user claims; --json: nats-server's permissions object only)
  inventory    print this machine's hardware, OS and software inventory (JSON; --json for one line)
  simulate     --agents N --server URL --data-dir DIR: N agents in one process (a fleet simulator; --help)
  version      print the version

options (each also an environment variable; see README.md):
  --nats-url URL[,URL]   --machine-id ID   --inbox-prefix P   --data-dir DIR   --config-dir DIR   --log-level LEVEL
  --heartbeat-seconds N  --telemetry-schedule CRON         --inventory-schedule CRON
  --user U --password P  --token T  --nkey-seed-file F  --creds-file F
  --tls-ca F  --tls-cert F  --tls-key F  --tag key=value (repeatable)  --config-signing-key KEY`;

function settingsFrom(flags: Record<string, string | boolean | string[] | boolean[] | undefined>): Settings {
  return loadSettings({ env: process.env, flags }).settings;
}

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      ...settingsFlagOptions(),
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      server: { type: "string" },
      creds: { type: "string" },
      "skip-link-test": { type: "boolean" },
      machine: { type: "string" },
      "signing-seed-file": { type: "string" },
      agents: { type: "string" },
      "start-concurrency": { type: "string" },
      "stagger-ms": { type: "string" },
    },
  });
  const command = positionals[0] ?? (values.help ? "help" : undefined);
  switch (command) {
    // Commands load their modules on demand: `version` and `status` stay quick to start.
    case "run": {
      const { runDaemon } = await import("./run-command.ts");
      await runDaemon(settingsFrom(values), argv);
      return ExitCode.ok;
    }
    case "status": {
      const { fetchStatus, formatStatus } = await import("./status-command.ts");
      const report = await fetchStatus(settingsFrom(values));
      process.stdout.write((values.json ? JSON.stringify(report, null, 2) : formatStatus(report)) + "\n");
      return ExitCode.ok;
    }
    case "dev-setup": {
      const { devSetup } = await import("./dev-setup-command.ts");
      await devSetup(settingsFrom(values), (line) => process.stdout.write(`${line}\n`));
      return ExitCode.ok;
    }
    case "permissions": {
      const { permissionsCommand } = await import("./permissions-command.ts");
      const flags: FlagValues = values;
      const inboxPrefix = flags["inbox-prefix"];
      permissionsCommand(positionals.slice(1), { json: values.json === true, ...(typeof inboxPrefix === "string" ? { inboxPrefix } : {}) }, (text) => process.stdout.write(`${text}\n`));
      return ExitCode.ok;
    }
    case "enroll": {
      const { enroll } = await import("./enroll-command.ts");
      const { defaultDirectories } = await import("../settings/index.ts");
      const flags: FlagValues = values;
      const configFlag = flags["config-dir"];
      const configDir = typeof configFlag === "string" ? configFlag : (process.env.EDGE_AGENT_CONFIG_DIR ?? defaultDirectories(process.platform, process.env).configDir);
      await enroll(values, configDir, (line) => process.stdout.write(`${line}\n`));
      return ExitCode.ok;
    }
    case "config": {
      const { configCommand } = await import("./config-command.ts");
      const configFlags = {
        ...(typeof values.machine === "string" ? { machine: values.machine } : {}),
        ...(typeof values["signing-seed-file"] === "string" ? { signingSeedFile: values["signing-seed-file"] } : {}),
      };
      await configCommand(settingsFrom(values), positionals.slice(1), configFlags, (line) => process.stdout.write(`${line}\n`));
      return ExitCode.ok;
    }
    case "install-service":
    case "uninstall-service": {
      const service = await import("../service/install-service.ts");
      const { SYSTEMD_UNIT_TEMPLATE } = await import("../service/unit-template.ts");
      const settings = settingsFrom(values);
      // A single executable is its own program; from sources the service would start a bare node.
      const { isSea } = await import("node:sea");
      if (!isSea()) throw new CommandError(`${command} registers the single executable; build it with npm run package and run dist/edge-agent-linux-x64 ${command}`, ExitCode.badSettings);
      const executable = process.execPath;
      const layout = { ...service.defaultServiceLayout(executable), configDir: settings.configDir, dataDir: settings.dataDir };
      const print = (line: string): void => void process.stdout.write(`${line}\n`);
      if (command === "install-service") await service.installService(SYSTEMD_UNIT_TEMPLATE, layout, print);
      else await service.uninstallService(layout, print);
      return ExitCode.ok;
    }
    case "inventory": {
      // Also what the daemon runs as a child to take its inventory (--json: one line).
      const { collectMachineInventory } = await import("../telemetry/inventory.ts");
      const inventory = await collectMachineInventory();
      process.stdout.write(`${values.json ? JSON.stringify(inventory) : JSON.stringify(inventory, null, 2)}\n`);
      return ExitCode.ok;
    }
    case "simulate": {
      const { simulateCommand, SIMULATE_HELP } = await import("./simulate-command.ts");
      if (values.help) {
        process.stdout.write(`${SIMULATE_HELP}\n`);
        return ExitCode.ok;
      }
      const flags: FlagValues = values;
      const dataDir = flags["data-dir"];
      const servers = { ...values, ...(values.server !== undefined ? { "nats-url": values.server } : {}) };
      await simulateCommand(settingsFrom(servers), {
        agents: values.agents,
        dataDir: typeof dataDir === "string" ? dataDir : undefined,
        startConcurrency: values["start-concurrency"],
        staggerMs: values["stagger-ms"],
      });
      return ExitCode.ok;
    }
    case "version":
      process.stdout.write(`${AGENT_VERSION}\n`);
      return ExitCode.ok;
    case "help":
      process.stdout.write(`${USAGE}\n`);
      return ExitCode.ok;
    case undefined:
      throw new CommandError(`no command given\n${USAGE}`, ExitCode.badSettings);
    default:
      throw new CommandError(`unknown command ${JSON.stringify(command)}\n${USAGE}`, ExitCode.badSettings);
  }
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommandError) return error.exitCode;
  if (error instanceof SettingsError || error instanceof UnsafeSubjectTokenError || error instanceof ReservedMachineIdError || error instanceof InboxPrefixError) return ExitCode.badSettings;
  // parseArgs reports unknown or malformed flags this way.
  if (error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS")) return ExitCode.badSettings;
  if (error instanceof MachineIdError) return ExitCode.failure;
  return ExitCode.failure;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`edge-agent: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(exitCodeFor(error));
  },
);
