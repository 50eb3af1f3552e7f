import { AuthorizationError } from "@nats-io/nats-core";
import type { NatsConnection } from "@nats-io/transport-node";
import { CommandError, connectOnce, ExitCode } from "../cli-kit/index.ts";
import { AGENT_CONFIG_BUCKET, AGENT_CONFIG_STREAM } from "../contracts/index.ts";
import { inboxPrefixOf } from "../identity/index.ts";
import { SETTING_SPECS, type Settings } from "../settings/index.ts";
import { CredentialFileError } from "../transport/index.ts";
import { type CheckResult, fail, formatCheck, pass, warn } from "./doctor/check-result.ts";
import { clockSkewUnmeasured, judgeClockSkew } from "./doctor/clock-skew.ts";
import {
  downloadsCheck,
  openframeArgumentChecks,
  platformCheck,
  programLocationCheck,
  uninstallCheck,
} from "./doctor/conventions-checks.ts";
import { dataDirChecks } from "./doctor/local-checks.ts";
import { hostAndPort, type Probe, probeAgentRights, tcpReachable } from "./doctor/server-probes.ts";
import { judgeServerVersion } from "./doctor/server-version.ts";
import { tasksCheck } from "./doctor/tasks-check.ts";
import { knownMachineId } from "./running-agent.ts";

function authKind(settings: Settings): string {
  const { auth } = settings;
  if (auth.credsFile) return `creds file ${auth.credsFile}`;
  if (auth.nkeySeedFile) return `NKey seed ${auth.nkeySeedFile}`;
  if (auth.token) return "token";
  if (auth.user) return `user ${auth.user}`;
  return "no credentials";
}

const grant = (machineId: string): string =>
  `grant the set \`edge-agent permissions ${machineId}\` prints (nats-server users block, or JWT claims with --json)`;

function describeProbe(probe: Probe): string {
  return `${probe.operation} ${probe.subject}`;
}

/** The streams line and one permissions line per feature, from what the probes met. */
function judgeProbes(probes: readonly Probe[], machineId: string): CheckResult[] {
  const results: CheckResult[] = [];
  const missing = new Set<string>();
  for (const probe of probes) {
    if (probe.outcome.kind !== "no-stream") continue;
    const stream = probe.outcome.stream;
    missing.add(
      stream === AGENT_CONFIG_STREAM
        ? `key-value bucket ${AGENT_CONFIG_BUCKET}`
        : (stream ?? `a stream for ${probe.subject}`),
    );
  }
  const present = new Set(
    probes.flatMap((probe) => (probe.outcome.kind === "allowed" && probe.outcome.stream ? [probe.outcome.stream] : [])),
  );
  results.push(
    missing.size > 0
      ? fail(
          "streams",
          `missing: ${[...missing].join(", ")} (events wait on the device, commands never come)`,
          "create them with `edge-agent dev-setup` (development and tests); in production the platform keeps them",
        )
      : pass(
          "streams",
          `${present.size} streams answer for this machine's subjects (${[...present].sort().join(", ")})`,
        ),
  );
  const features = [...new Set(probes.map((probe) => probe.feature))];
  for (const feature of features) {
    const mine = probes.filter((probe) => probe.feature === feature);
    const denied = mine.filter((probe) => probe.outcome.kind === "denied");
    const unanswered = mine.filter((probe) => probe.outcome.kind === "no-answer");
    const check = `permissions: ${feature}`;
    if (denied.length > 0) {
      results.push(fail(check, `denied: ${denied.map(describeProbe).join("; ")}`, grant(machineId)));
    } else if (unanswered.length > 0) {
      const details = unanswered.map(
        (probe) => `${describeProbe(probe)} (${probe.outcome.kind === "no-answer" ? probe.outcome.detail : ""})`,
      );
      results.push(
        warn(
          check,
          `no answer: ${details.join("; ")}`,
          "check the server's JetStream (and that the stream allows direct get), then run doctor again",
        ),
      );
    } else {
      const count = (operation: Probe["operation"]): number =>
        mine.filter((probe) => probe.operation === operation).length;
      results.push(pass(check, `allowed: ${count("publish")} to publish, ${count("subscribe")} to subscribe`));
    }
  }
  return results;
}

function describeConnectError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Where an operator sets an agent setting: its variable, its flag and its settings.json key. */
function whereToSet(settingPath: string): string {
  const spec = SETTING_SPECS.find((each) => each.path === settingPath);
  if (!spec) return `settings.json ${settingPath}`;
  return [spec.env[0], spec.flag ? `--${spec.flag}` : null, `settings.json ${settingPath}`]
    .filter((each) => each !== null)
    .join(", ");
}

/** The auth check when no connection could be made: what failed, decided on the errors' classes. */
function connectFailure(error: unknown, settings: Settings): CheckResult {
  const cause = error instanceof CommandError && error.cause !== undefined ? error.cause : error;
  if (cause instanceof CredentialFileError)
    return fail(
      "auth",
      `cannot read the file ${cause.settingPath} names, ${cause.file}: ${cause.reason}`,
      `put the file there (readable by the agent's user), or point the setting at it: ${whereToSet(cause.settingPath)}`,
    );
  const message = describeConnectError(error);
  if (cause instanceof AuthorizationError)
    return fail(
      "auth",
      `the server refused ${authKind(settings)}: ${message}`,
      "check the credentials (EDGE_AGENT_NATS_USER/PASSWORD, TOKEN, NKEY_FILE, CREDS_FILE), or enroll again",
    );
  return fail(
    "auth",
    `the NATS handshake failed: ${message}`,
    "check the TLS settings (EDGE_AGENT_TLS_CA_FILE, _TLS_CERT_FILE, _TLS_KEY_FILE) and the URL scheme (nats, tls, ws, wss)",
  );
}

/** Every check that needs the server, in order; stops at the first that leaves nothing to check. */
async function serverChecks(settings: Settings, machineId: string | null): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const reach = await Promise.all(
    settings.natsServers.map(async (server) => {
      const { host, port } = hostAndPort(server);
      return { server, problem: await tcpReachable(host, port) };
    }),
  );
  const unreachable = reach.filter((entry) => entry.problem !== null);
  const listing = unreachable.map((entry) => `${entry.server} (${entry.problem})`).join(", ");
  const fixReach =
    "check the server URL (EDGE_AGENT_NATS_URL / --nats-url), that nats-server runs there, and the firewall";
  if (unreachable.length === reach.length) {
    results.push(
      fail(
        "server reachable",
        `no server answers: ${listing}`,
        `${fixReach}; the checks that need the server did not run`,
      ),
    );
    return results;
  }
  results.push(
    unreachable.length > 0
      ? warn("server reachable", `some servers do not answer: ${listing}`, fixReach)
      : pass("server reachable", `a TCP connection opens to ${settings.natsServers.join(", ")}`),
  );

  let connection: NatsConnection;
  try {
    const inboxPrefix = machineId ? { inboxPrefix: inboxPrefixOf(machineId, settings.inboxPrefix) } : {};
    connection = await connectOnce(settings, `${machineId ?? "edge-agent"}-doctor`, 3_000, inboxPrefix);
  } catch (error) {
    results.push(connectFailure(error, settings));
    return results;
  }
  try {
    const info = connection.info;
    results.push(
      pass(
        "auth",
        `the server accepted ${authKind(settings)} (nats-server ${info?.version ?? "?"} at ${connection.getServer()})`,
      ),
    );
    // From the connection's INFO: the server says its version when a client connects.
    results.push(judgeServerVersion(info?.version));
    if (info && info.jetstream !== true) {
      results.push(
        fail(
          "jetstream",
          "JetStream is not enabled for this account on the server: events cannot be stored, commands never come",
          "start nats-server with -js (or enable JetStream for the account)",
        ),
      );
      return results;
    }
    if (!machineId) return results;
    const report = await probeAgentRights(connection, machineId, inboxPrefixOf(machineId, settings.inboxPrefix));
    results.push(...judgeProbes(report.probes, machineId));
    const sample = report.serverTimes[0];
    results.push(sample ? judgeClockSkew(sample) : clockSkewUnmeasured(info?.version));
  } finally {
    await connection.close();
  }
  return results;
}

/** Runs every check; `loadSettings` is called here so that bad settings are a verdict, not a crash. */
export async function runDoctor(loadSettings: () => Settings): Promise<CheckResult[]> {
  let settings: Settings;
  try {
    settings = loadSettings();
  } catch (error) {
    return [
      fail(
        "settings",
        describeConnectError(error),
        "fix that setting (settings.json, EDGE_AGENT_* or the flag; see README, Configuration); the other checks need valid settings",
      ),
    ];
  }
  const results: CheckResult[] = [
    pass("settings", `valid: servers ${settings.natsServers.join(", ")}, data dir ${settings.dataDir}`),
  ];
  const known = await knownMachineId(settings);
  const machineId = known?.machineId ?? null;
  results.push(
    known
      ? pass("machine id", known.note ? `${known.machineId}, ${known.note}` : known.machineId)
      : warn(
          "machine id",
          "none yet: the agent makes one on its first run, so streams and permissions were not checked",
          "set EDGE_AGENT_MACHINE_ID (or enroll --machine-id), or run the agent once, then doctor again",
        ),
  );
  results.push(platformCheck(settings), signingCheck(settings), downloadsCheck(settings), uninstallCheck(settings));
  results.push(...(await openframeArgumentChecks(settings)));
  results.push(...(await dataDirChecks(settings)));
  results.push(await programLocationCheck(settings));
  results.push(await tasksCheck(settings, process.env));
  results.push(...(await serverChecks(settings, machineId)));
  return results;
}

/** How the agent will take commands: a WARN in development mode, a FAIL when it will take none. */
export function signingCheck(settings: Pick<Settings, "configSigningKey" | "allowUnsigned" | "platform">): CheckResult {
  if (settings.configSigningKey) return pass("signing", "commands and configuration are taken signed only");
  if (settings.allowUnsigned && settings.platform === "openframe")
    return warn(
      "signing",
      "no configSigningKey: unsigned commands and configuration are taken, as OpenFrame sends them (platform openframe)",
      "keep this machine in the account layout (edge-agent accounts <id>; docs/openframe.md): in one account any machine can make the server store a copy of its own old command on another machine's subject",
    );
  if (settings.allowUnsigned)
    return warn(
      "signing",
      "DEVELOPMENT MODE: no configSigningKey and allowUnsigned set: unsigned commands and configuration are taken",
      "set configSigningKey (enroll --config-signing-key) before this machine is in production",
    );
  return fail(
    "signing",
    "no configSigningKey: every command and remote configuration is refused",
    "give the agent the platform's signing key (enroll --config-signing-key), or set allowUnsigned for development",
  );
}

/** `edge-agent doctor`: prints each verdict; 1 when any check failed. */
export async function doctorCommand(
  loadSettings: () => Settings,
  options: { json: boolean },
  write: (line: string) => void,
): Promise<number> {
  const results = await runDoctor(loadSettings);
  for (const result of results) write(options.json ? JSON.stringify(result) : formatCheck(result));
  return results.some((result) => result.verdict === "FAIL") ? ExitCode.failure : ExitCode.ok;
}
