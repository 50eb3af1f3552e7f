import { CommandError, ExitCode } from "../cli-kit/index.ts";
import { AGENT_VERSION } from "../runtime/index.ts";
import type { FlagValues } from "../settings/index.ts";
import type { CommandContext, CommandSpec } from "./command-spec.ts";
import { TASK_CONNECTION_FLAGS } from "./task/task-flags.ts";

/**
 * Every `edge-agent` command. Adding one is adding an entry here: `--help`, the command list,
 * option checking and "did you mean" come from the entry. Its `run` imports its module when
 * called, so `version` and `status` start without loading the daemon.
 */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "run",
    summary: "run the agent (the daemon; the service manager starts this)",
    usage: "[settings options]",
    description:
      "Runs until SIGTERM or SIGINT. Works offline: events wait in the outbox of the data dir until the server takes them.",
    flags: {},
    settingsFlags: "all",
    maxPositionals: 0,
    examples: [
      "edge-agent run --nats-url nats://127.0.0.1:4222 --log-level debug",
      "EDGE_AGENT_NATS_URL=tls://nats.example:4222 edge-agent run",
    ],
    exitCodes: [
      ExitCode.ok,
      ExitCode.failure,
      ExitCode.badSettings,
      ExitCode.dataDirInUse,
      ExitCode.restart,
      ExitCode.uninstalled,
    ],
    async run(context) {
      const { runDaemon } = await import("./run-command.ts");
      await runDaemon(context.settings(), context.args);
      return ExitCode.ok;
    },
  },
  {
    name: "status",
    summary: "show the agent's state: asks the running agent, else reads its status file",
    usage: "[--json] [settings options]",
    description: [
      "Run as the agent's user (sudo for the packaged service): the status file is readable by it only.",
      "With no agent state in your own data dir, the system agent's (/var/lib/edge-agent) is read.",
    ].join("\n"),
    flags: { json: { type: "boolean", help: "one JSON object, for scripts" } },
    settingsFlags: "all",
    maxPositionals: 0,
    examples: ["sudo edge-agent status", "edge-agent status --json --data-dir /tmp/agent/data"],
    exitCodes: [ExitCode.ok, ExitCode.failure, ExitCode.badSettings],
    async run(context) {
      const { statusCommand } = await import("./status-command.ts");
      return statusCommand(
        context.settings(),
        {
          json: context.flags.json === true,
          dataDirGiven: dataDirGiven(context),
          host: context.host,
          env: context.env,
        },
        context.print,
      );
    },
  },
  {
    name: "enroll",
    summary: "write the settings file for a server and test the link",
    usage:
      "--server URL [--creds FILE | --token T | --user U --password P | --nkey-seed-file F] (--config-signing-key KEY | --allow-unsigned | --platform openframe ...) [--machine-id ID] [--tag k=v ...]",
    description: [
      "Checks everything first, then tests the link with the new settings, and writes the settings file",
      "(0600; secret files copied beside it) only when the link works: a failed test leaves the old file as it was.",
    ].join("\n"),
    flags: {
      server: { type: "string", valueName: "URL", help: "NATS server URL(s), comma-separated (required)" },
      creds: {
        type: "string",
        valueName: "FILE",
        help: "NATS .creds file to copy into the config dir (same as --creds-file)",
      },
      "skip-link-test": {
        type: "boolean",
        help: "write the settings without testing the link (e.g. the server is not up yet)",
      },
      "allow-unsigned": {
        type: "boolean",
        help: "DEVELOPMENT ONLY: enroll without a signing key; the agent then takes unsigned commands",
      },
    },
    settingsFlags: [
      "machine-id",
      "token",
      "user",
      "password",
      "creds-file",
      "nkey-seed-file",
      "tls-ca",
      "tls-cert",
      "tls-key",
      "tag",
      "platform",
      "allowed-download-hosts",
      "openframe-secret-file",
      "openframe-token-path",
      "config-dir",
      "config-signing-key",
    ],
    maxPositionals: 0,
    examples: [
      "sudo edge-agent enroll --server tls://nats.example:4222 --creds ./machine.creds --config-signing-key UD...",
      "sudo edge-agent enroll --server tls://openframe.example:443 --creds ./m.creds --platform openframe --allowed-download-hosts github.com,release-assets.githubusercontent.com --openframe-secret-file ./openframe.secret",
      "edge-agent enroll --server nats://127.0.0.1:4222 --token s3cret --allow-unsigned --config-dir /tmp/agent/config",
    ],
    exitCodes: [ExitCode.ok, ExitCode.failure, ExitCode.badSettings],
    async run(context) {
      const { enroll } = await import("./enroll-command.ts");
      const { defaultDirectories } = await import("../settings/index.ts");
      const configFlag = context.flags["config-dir"];
      const configDir =
        typeof configFlag === "string"
          ? configFlag
          : (context.env.EDGE_AGENT_CONFIG_DIR ??
            defaultDirectories(context.host.platform, context.env, context.host.privileged).configDir);
      await enroll(context.flags, configDir, context.host, context.print);
      return ExitCode.ok;
    },
  },
  {
    name: "config",
    summary: "get, set, unset, push or delete the remote configuration (agent-config KV bucket)",
    usage: "get | set KEY VALUE | unset KEY | push FILE.json | delete  [--machine ID] [--signing-seed-file F]",
    description: [
      'No --machine: the fleet-wide "defaults" key. KEY is a setting a remote document may change (dotted for nested ones):',
      "heartbeatSeconds, telemetrySchedule, inventorySchedule, logLevel, tags, outbox.maxBytes, outbox.maxAgeSeconds,",
      'toolPolicy.allowMissingChecksum. VALUE is JSON when it parses (2, true, {"a":"b"}), else text; tags take k=v[,k=v].',
      "An unknown key is refused (exit 2), as every agent would refuse it.",
    ].join("\n"),
    flags: {
      machine: { type: "string", valueName: "ID", help: "the machine's own key instead of the fleet-wide defaults" },
      "signing-seed-file": {
        type: "string",
        valueName: "FILE",
        help: "NKey seed to sign the document with (agents with configSigningKey need it)",
      },
    },
    settingsFlags: "all",
    maxPositionals: 3,
    examples: [
      "edge-agent config set --machine m1 heartbeatSeconds 30",
      "edge-agent config set tags site=lab,rack=4",
      "edge-agent config unset --machine m1 logLevel",
      "edge-agent config get --machine m1",
    ],
    exitCodes: [ExitCode.ok, ExitCode.failure, ExitCode.badSettings],
    async run(context) {
      const { configCommand } = await import("./config-command.ts");
      const { flags } = context;
      const options = {
        ...(typeof flags.machine === "string" ? { machine: flags.machine } : {}),
        ...(typeof flags["signing-seed-file"] === "string" ? { signingSeedFile: flags["signing-seed-file"] } : {}),
      };
      await configCommand(context.settings(), context.positionals, options, context.print);
      return ExitCode.ok;
    },
  },
  {
    name: "task",
    summary: "run a program or script on machines and follow its output live; cancel or list tasks",
    usage:
      "run (--machine ID | --tag k=v ... | --all) [options] -- PROGRAM [ARGS...] | run ... --script FILE | cancel TASK_ID (--machine ID | --fleet) | list [--machine ID] [--since 24h]",
    description: [
      "run: sends the task (signed with --signing-seed-file: scope = its subject, serial = now in ms, expiresAt = now + --ttl;",
      "Nats-TTL = --ttl) and follows it: the output as the machine sends it (stdout to stdout, stderr to stderr; with several",
      "machines each line is prefixed [machine]), a gap in it said as such, then each machine's end on stderr. Ctrl-C stops",
      "following, not the task. One machine: exits with the task's own exit code (1 for an end without one: REJECTED,",
      "TIMED_OUT, CANCELLED, a signal), 124 when no end came while following. --tag/--all: follows until Ctrl-C or --wait,",
      "then a summary (SUCCEEDED / FAILED / ... / silent: sent output, no end); exit 0 only when every end was SUCCEEDED.",
      "Without --wait it follows until no machine could still end the task (its ttl and timeout passed, plus 60 s).",
      "cancel: stops the task (its whole process tree); one not started yet ends CANCELLED when it comes.",
      "list: the tasks sent in the window (TASKS, FLEET_TASKS) with each machine's end (TASK_RESULTS).",
      "Needs the task streams (edge-agent dev-setup) and an identity that may publish machine.*.task and create",
      "consumers on TASK_OUTPUT and TASK_RESULTS (the platform's, not a machine's).",
    ].join("\n"),
    flags: {
      machine: {
        type: "string",
        valueName: "ID",
        help: "one machine (run, cancel); list: its tasks and the fleet tasks it ended",
      },
      tag: {
        type: "string",
        multiple: true,
        valueName: "k=v",
        help: "run: every machine whose tags match (repeatable: all must match); the machines decide",
      },
      all: { type: "boolean", help: "run: every machine" },
      fleet: { type: "boolean", help: "cancel: a task sent with --tag or --all" },
      timeout: {
        type: "string",
        valueName: "DURATION",
        help: "run: stop the task after this (seconds, or 90s, 10m, 2h; at most 24h)",
        default: "300",
      },
      ttl: {
        type: "string",
        valueName: "DURATION",
        help: "run, cancel: how long it may wait for an offline machine",
        default: "1h",
      },
      wait: { type: "string", valueName: "DURATION", help: "run: follow this long at most" },
      "max-output": {
        type: "string",
        valueName: "BYTES",
        help: "run: output kept and sent, the rest counted (64KiB, 1MiB; at most 16MiB)",
        default: "1MiB",
      },
      env: {
        type: "string",
        multiple: true,
        valueName: "K=V",
        help: "run: an environment variable for the task (repeatable)",
      },
      workdir: {
        type: "string",
        valueName: "DIR",
        help: "run: where it runs (absolute; the agent's policy must allow it)",
      },
      script: { type: "string", valueName: "FILE", help: "run: a script to send instead of a program after --" },
      interpreter: {
        type: "string",
        valueName: "NAME",
        help: "run: sh, bash, powershell or cmd (default: the script's #! line or extension, else sh)",
      },
      "task-id": { type: "string", valueName: "ID", help: "run: the task's id (default: a fresh one, printed)" },
      "requested-by": {
        type: "string",
        valueName: "NAME",
        help: "run: who asked, for the record (default: user@host)",
      },
      reason: { type: "string", valueName: "TEXT", help: "cancel: why, for the record" },
      since: { type: "string", valueName: "DURATION", help: "list: tasks sent this long ago at most", default: "24h" },
      "signing-seed-file": {
        type: "string",
        valueName: "FILE",
        help: "NKey seed to sign with (agents with configSigningKey take only signed tasks)",
      },
      "no-follow": { type: "boolean", help: "run: send it, print its id, and return" },
      json: { type: "boolean", help: "one JSON object a line (run: sent, output, gap, result, summary)" },
    },
    settingsFlags: TASK_CONNECTION_FLAGS,
    maxPositionals: Number.POSITIVE_INFINITY,
    examples: [
      "edge-agent task run --machine m1 -- uptime",
      "edge-agent task run --tag site=lab --wait 2m --signing-seed-file ./ops.seed --script ./check.sh",
      "edge-agent task cancel 20261207-101500-3f9a1c2e --machine m1",
      "edge-agent task list --since 2h",
    ],
    exitCodes: [ExitCode.ok, ExitCode.failure, ExitCode.badSettings, ExitCode.noResult, ExitCode.interrupted],
    async run(context) {
      const { taskCommand } = await import("./task/task-command.ts");
      const { userInfo, hostname } = await import("node:os");
      const { systemClock } = await import("../runtime/index.ts");
      const dash = context.args.indexOf("--");
      const argv = dash === -1 ? [] : context.args.slice(dash + 1);
      const words = context.positionals.slice(0, context.positionals.length - argv.length);
      let user: string;
      try {
        user = userInfo().username;
      } catch {
        user = context.env.USER ?? "unknown";
      }
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      // --tag is this command's selector, not the agent's own tags setting of the same flag.
      const { tag: _selector, ...settingsFlags } = context.flags;
      const { loadSettings } = await import("../settings/index.ts");
      try {
        return await taskCommand(
          () => loadSettings({ env: context.env, flags: settingsFlags, ...context.host }).settings,
          { words, argv, flags: context.flags },
          {
            out: {
              stdout: (text) => void process.stdout.write(text),
              stderr: (text) => void process.stderr.write(text),
            },
            clock: systemClock,
            stop: stop.signal,
            operator: `${user}@${hostname()}`,
          },
        );
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    },
  },
  ...(["install-service", "uninstall-service"] as const).map(
    (name): CommandSpec => ({
      name,
      summary:
        name === "install-service"
          ? "register this single executable as a systemd service"
          : "remove the systemd service this executable registered",
      usage: name === "install-service" ? "[--copy-to DIR] [settings options]" : "[settings options]",
      description: [
        "For the single executable without a package (dist/edge-agent-linux-x64); the .deb and .rpm do this themselves. Needs root.",
        ...(name === "install-service"
          ? [
              "Refuses (exit 2), before changing anything, an executable the service user cannot start (a directory it cannot",
              "enter, a file it cannot execute, a path the unit hides: /root, /home, /tmp); --copy-to installs a copy there first.",
            ]
          : []),
      ].join("\n"),
      flags:
        name === "install-service"
          ? {
              "copy-to": {
                type: "string",
                valueName: "DIR",
                help: "copy the executable to DIR/edge-agent (e.g. /usr/local/bin) and register the copy",
              },
            }
          : {},
      settingsFlags: "all",
      maxPositionals: 0,
      examples:
        name === "install-service"
          ? [`sudo ./edge-agent-linux-x64 ${name} --copy-to /usr/local/bin`]
          : [`sudo ./edge-agent-linux-x64 ${name}`],
      exitCodes: [ExitCode.ok, ExitCode.failure, ExitCode.badSettings],
      async run(context) {
        const service = await import("../service/index.ts");
        const settings = context.settings();
        // A single executable is its own program; from sources the service would start a bare node.
        const { isSea } = await import("node:sea");
        if (!isSea())
          throw new CommandError(
            `${name} registers the single executable; build it with npm run package and run dist/edge-agent-linux-x64 ${name}`,
            ExitCode.badSettings,
          );
        const layout = {
          ...service.defaultServiceLayout(process.execPath),
          configDir: settings.configDir,
          dataDir: settings.dataDir,
        };
        if (name === "install-service") {
          const copyTo = context.flags["copy-to"];
          // An unreachable executable is a usage error: the cure is a copy (--copy-to), exit 2.
          await service
            .installService(service.SYSTEMD_UNIT_TEMPLATE, layout, context.print, {
              platform: context.host.platform,
              ...(typeof copyTo === "string" ? { copyTo } : {}),
            })
            .catch((error: unknown) => {
              throw error instanceof service.ExecutableUnreachableError
                ? new CommandError(error.message, ExitCode.badSettings)
                : error;
            });
        } else await service.uninstallService(layout, context.print);
        return ExitCode.ok;
      },
    }),
  ),
  {
    name: "dev-setup",
    summary: "create the platform's JetStream streams and KV bucket on a server (development and tests)",
    usage: "[settings options]",
    description: [
      "Only ever adds: an existing stream keeps its subjects, limits and data, and gains the subjects it lacks; no limit is",
      "lowered; each line printed says what changed. Production platforms create these themselves.",
      "With --device-view-user (the account layout of `edge-agent accounts`), it also makes the device view's",
      "mirrors, connected as that user of the DEVICE_VIEW account.",
      "--telemetry-partitions N partitions TELEMETRY so several bridge instances share it (default 0: unpartitioned);",
      "an existing unpartitioned TELEMETRY is partitioned (its stored messages are bridged first), an existing",
      'partition count is never changed (docs/bridge.md, "Partitioned telemetry").',
    ].join("\n"),
    flags: {
      "telemetry-partitions": {
        type: "string",
        valueName: "N",
        help: "partitions of the TELEMETRY stream (0: none; at most 64)",
        default: "0",
      },
      "device-view-user": { type: "string", help: "user of the DEVICE_VIEW account that makes its mirrors" },
      "device-view-password": { type: "string", help: "that user's password" },
    },
    settingsFlags: "all",
    maxPositionals: 0,
    examples: [
      "edge-agent dev-setup --nats-url nats://127.0.0.1:4222",
      "edge-agent dev-setup --nats-url nats://127.0.0.1:4222 --telemetry-partitions 8",
      "edge-agent dev-setup --nats-user admin --nats-password pw --device-view-user view --device-view-password pw2",
    ],
    exitCodes: [ExitCode.ok, ExitCode.failure, ExitCode.badSettings],
    async run(context) {
      const { devSetup, parseTelemetryPartitions } = await import("./dev-setup-command.ts");
      const settings = context.settings();
      const partitionsFlag = context.flags["telemetry-partitions"];
      await devSetup(settings, context.print, {
        telemetryPartitions: parseTelemetryPartitions(typeof partitionsFlag === "string" ? partitionsFlag : undefined),
      });
      const user = context.flags["device-view-user"];
      if (typeof user === "string") {
        const { connectOnce } = await import("../cli-kit/index.ts");
        const { setUpDeviceView } = await import("./device-view-setup.ts");
        const password = context.flags["device-view-password"];
        const asViewer = {
          ...settings,
          auth: { user, ...(typeof password === "string" ? { password } : {}) },
        };
        const connection = await connectOnce(asViewer, "edge-agent-dev-setup-device-view");
        try {
          await setUpDeviceView(connection, context.print);
        } finally {
          await connection.close();
        }
      }
      return ExitCode.ok;
    },
  },
  {
    name: "events",
    summary: "what the agent has sent and what waits in its outbox, one line per event",
    usage: "[--follow] [--subject PATTERN ...] [--json] [--data-dir DIR]",
    description: [
      "Each line: the event's time, its state, #sequence, event type, subject, body size, the start of the body.",
      "  sent         acknowledged by JetStream (the outbox remembers the last 1,000 sent events)",
      "  dead-letter  refused by JetStream for good (kept on the device, never sent again), with the reason",
      "  pending      stored on the device, waiting for the link or the stream",
      "Reads the data dir's outbox read-only: safe while the agent runs (run it as the agent's user, or sudo).",
    ].join("\n"),
    flags: {
      follow: {
        type: "boolean",
        help: "keep printing events as they are stored and sent, until Ctrl-C (SIGINT) or SIGTERM",
      },
      subject: {
        type: "string",
        multiple: true,
        valueName: "PATTERN",
        help: "only events whose subject matches (NATS wildcards: * one token, > the rest); repeatable",
      },
      json: {
        type: "boolean",
        help: "one JSON object per line: time, state, sequence, type, subject, bytes, eventId, settledAt, reason, summary",
      },
    },
    settingsFlags: "all",
    maxPositionals: 0,
    examples: [
      "sudo edge-agent events",
      "edge-agent events --follow --subject 'machine.*.telemetry'",
      "edge-agent events --json --subject 'machine.*.config.status' | jq .",
    ],
    exitCodes: [ExitCode.ok, ExitCode.failure, ExitCode.badSettings],
    async run(context) {
      const { eventsCommand } = await import("./events-command.ts");
      const subjects = context.flags.subject;
      return eventsCommand(
        context.settings(),
        {
          follow: context.flags.follow === true,
          json: context.flags.json === true,
          subjects: Array.isArray(subjects) ? subjects.map(String) : [],
        },
        context.print,
      );
    },
  },
  {
    name: "doctor",
    summary: "preflight checks: settings, data dir, server, auth, streams, permissions, clock (PASS / WARN / FAIL)",
    usage: "[--json] [settings options]",
    description: [
      "One verdict a line, with the reason and what to do:",
      "  settings            the settings file, environment and flags resolve to valid settings",
      "  machine id          the id the agent runs under (settings, or the one it generated)",
      "  data dir            exists or can be created, writable by this user, private (0700)",
      "  free space          room for the outbox (its limit, EDGE_AGENT_OUTBOX_MAX_BYTES)",
      "  server reachable    a TCP connection opens to each NATS server URL",
      "  auth                the server accepts the configured credentials; JetStream is on",
      "  streams             every stream and the agent-config bucket the agent uses exist",
      "  permissions: ...    as this identity: publish each event (refused by its stream, so nothing is stored),",
      "                      the JetStream API calls for its consumers and config keys, and its subscriptions",
      "  clock skew          this clock against the server's time (from a JetStream API answer; nats-server 2.10+)",
      "Checks that need the server stop at the first that fails. Nothing is sent, created or changed, and it is",
      "safe while the agent runs. Run it as the agent's user (or sudo) with the agent's settings.",
    ].join("\n"),
    flags: { json: { type: "boolean", help: "one JSON object per check: {check, verdict, reason, action}" } },
    settingsFlags: "all",
    maxPositionals: 0,
    examples: [
      "sudo edge-agent doctor",
      "edge-agent doctor --nats-url nats://nats.example:4222 --creds-file ./machine.creds",
    ],
    exitCodes: [ExitCode.ok, ExitCode.failure],
    async run(context) {
      const { doctorCommand } = await import("./doctor-command.ts");
      return doctorCommand(() => context.settings(), { json: context.flags.json === true }, context.print);
    },
  },
  {
    name: "simulate",
    summary: "run N simulated agents in this one process against one NATS server (scale tests)",
    usage: "--agents N --server URL --data-dir DIR [--start-concurrency N] [--stagger-ms N] [settings options]",
    description: [
      "Each agent is made by createAgent with its own identity (machine id sim-000000, sim-000001, ...: the same on every",
      "start), its own data dir DIR/<machineId> and its own connection; telemetry and status files are off. Credentials",
      "and TLS as for run: every agent uses the same. Runs until SIGTERM or SIGINT, which stops every agent cleanly (exit 0).",
      "One simulator per DIR (locked); it never writes into the default (a real agent's) data dir.",
    ].join("\n"),
    flags: {
      agents: { type: "string", valueName: "N", help: "how many agents (required)" },
      server: {
        type: "string",
        valueName: "URL[,URL]",
        help: "the NATS server(s) (or --nats-url / EDGE_AGENT_NATS_URL)",
      },
      "start-concurrency": {
        type: "string",
        valueName: "N",
        help: "agents connecting at once: bounds the connect storm",
        default: "50",
      },
      "stagger-ms": { type: "string", valueName: "N", help: "pause after each agent's start in a slot", default: "0" },
    },
    settingsFlags: "all",
    maxPositionals: 0,
    examples: ["edge-agent simulate --agents 1000 --server nats://127.0.0.1:4222 --data-dir /tmp/fleet"],
    exitCodes: [ExitCode.ok, ExitCode.failure, ExitCode.badSettings],
    async run(context) {
      const { simulateCommand } = await import("./simulate-command.ts");
      const { loadSettings } = await import("../settings/index.ts");
      const {
        server,
        agents,
        "data-dir": dataDir,
        "start-concurrency": startConcurrency,
        "stagger-ms": staggerMs,
      } = context.flags;
      // --server is the fleet's server: the same as --nats-url for every agent.
      const flags = { ...context.flags, ...(typeof server === "string" ? { "nats-url": server } : {}) };
      await simulateCommand(loadSettings({ env: context.env, flags, ...context.host }).settings, {
        agents: typeof agents === "string" ? agents : undefined,
        dataDir: typeof dataDir === "string" ? dataDir : undefined,
        startConcurrency: typeof startConcurrency === "string" ? startConcurrency : undefined,
        staggerMs: typeof staggerMs === "string" ? staggerMs : undefined,
      });
      return ExitCode.ok;
    },
  },
  {
    name: "accounts",
    summary: "print the nats-server accounts of the account layout, with these machines' users",
    usage: "MACHINE_ID [MACHINE_ID ...]",
    description: [
      "The layout that keeps every answer a machine's request gets out of every stream: the platform in one",
      "account, read-only mirrors of the commands in a second, the machines in a third (docs/DESIGN.md, Accounts).",
    ].join("\n"),
    flags: {},
    settingsFlags: [],
    maxPositionals: Number.POSITIVE_INFINITY,
    examples: ["edge-agent accounts m1 m2"],
    exitCodes: [ExitCode.ok, ExitCode.badSettings],
    async run(context) {
      const { accountsCommand } = await import("./accounts-command.ts");
      accountsCommand(context.positionals, context.print);
      return ExitCode.ok;
    },
  },
  {
    name: "permissions",
    summary: "print the NATS permission set for a machine's identity",
    usage: "MACHINE_ID [--inbox-prefix P] [--json]",
    description:
      "Prints the nats-server user block and the JWT user claims; --json prints nats-server's permissions object only.",
    flags: { json: { type: "boolean", help: "nats-server's permissions object only, as JSON" } },
    settingsFlags: ["inbox-prefix"],
    maxPositionals: 1,
    examples: ["edge-agent permissions 3f1c2a7e-0000-4000-8000-000000000001", "edge-agent permissions m1 --json"],
    exitCodes: [ExitCode.ok, ExitCode.badSettings],
    async run(context) {
      const { permissionsCommand } = await import("./permissions-command.ts");
      const inboxPrefix = context.flags["inbox-prefix"];
      permissionsCommand(
        context.positionals,
        { json: context.flags.json === true, ...(typeof inboxPrefix === "string" ? { inboxPrefix } : {}) },
        context.print,
      );
      return ExitCode.ok;
    },
  },
  {
    name: "inventory",
    summary: "print this machine's hardware, OS and software inventory (JSON)",
    usage: "[--json]",
    flags: { json: { type: "boolean", help: "on one line (the daemon runs this to take its inventory)" } },
    settingsFlags: [],
    maxPositionals: 0,
    examples: ["edge-agent inventory"],
    exitCodes: [ExitCode.ok, ExitCode.failure],
    async run(context) {
      const { collectMachineInventory } = await import("../telemetry/index.ts");
      const inventory = await collectMachineInventory(context.host.platform);
      context.print(context.flags.json === true ? JSON.stringify(inventory) : JSON.stringify(inventory, null, 2));
      return ExitCode.ok;
    },
  },
  {
    name: "version",
    summary: "print the version",
    usage: "",
    flags: {},
    settingsFlags: [],
    maxPositionals: 0,
    examples: ["edge-agent version"],
    exitCodes: [ExitCode.ok],
    async run(context) {
      context.print(AGENT_VERSION);
      return ExitCode.ok;
    },
  },
];

/** Whether the operator chose the data dir (a flag or the environment), rather than the default. */
function dataDirGiven(context: CommandContext): boolean {
  const flags: FlagValues = context.flags;
  return typeof flags["data-dir"] === "string" || (context.env.EDGE_AGENT_DATA_DIR ?? "") !== "";
}
