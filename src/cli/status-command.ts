import { constants } from "node:fs";
import { access, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import { type AgentStatus, readStatusFile, STATUS_FILE, STATUS_FILE_INTERVAL_MS } from "../agent/index.ts";
import { CommandError, connectOnce, ExitCode, type ProcessHost, processAlive } from "../cli-kit/index.ts";
import { type DownloadRecord, machineSubjects } from "../contracts/index.ts";
import { inboxPrefixOf, MACHINE_ID_FILE } from "../identity/index.ts";
import { readLockHolder } from "../runtime/index.ts";
import { defaultDirectories, type Settings } from "../settings/index.ts";
import { NO_STREAM_REASON } from "../transport/index.ts";
import { knownMachineId } from "./running-agent.ts";

export interface StatusReport {
  readonly source: "live" | "local-file";
  /** False when no agent runs on the data dir: what follows is what it knew when it stopped. */
  readonly running: boolean;
  /** When the agent that is not running last wrote its status (the file's modification time). */
  readonly stoppedSince: string | null;
  readonly dataDir: string;
  /** Why this data dir and not the one the settings name (the system agent's, read by an ordinary user). */
  readonly note?: string;
  /** Set when the running agent uses another machine id than these settings name: it is the one asked. */
  readonly machineIdNote?: string;
  readonly status: AgentStatus;
  readonly liveError?: string;
  /** With the local file: what tells whether it is current. */
  readonly localFile?: LocalFileFacts;
}

export interface LocalFileFacts {
  /** Seconds since the file was last written (its modification time). */
  readonly ageSeconds: number;
  /** The running agent that holds the data dir, if any. */
  readonly agentPid: number | null;
  /** Whether the process that wrote the file (its `pid`) still exists. */
  readonly writerAlive: boolean;
  /** Bytes free for the agent on the data dir's file system (null when unknown). */
  readonly freeBytes: number | null;
}

/** Below this, the data dir's file system counts as full. */
const NEARLY_FULL_BYTES = 1024 * 1024;
/** A status file older than this many rewrite intervals is not being kept. */
const STALE_INTERVALS = 3;

async function localFileFacts(dataDir: string, writerPid: number): Promise<LocalFileFacts & { modifiedMs: number }> {
  const modifiedMs = (await stat(join(dataDir, STATUS_FILE))).mtimeMs;
  const holder = readLockHolder(dataDir);
  const space = await statfs(dataDir).catch(() => null);
  return {
    modifiedMs,
    ageSeconds: Math.max(0, Math.round((Date.now() - modifiedMs) / 1000)),
    agentPid: holder !== null && processAlive(holder) ? holder : null,
    writerAlive: Number.isSafeInteger(writerPid) && writerPid > 0 && processAlive(writerPid),
    freeBytes: space ? space.bavail * space.bsize : null,
  };
}

/**
 * Whether the agent that wrote the file is gone: nobody holds the data dir, and either the file
 * is no longer kept (older than a few rewrites) or the process that wrote it has ended (a clean
 * stop a moment ago). A live pid with a stale file is a reused pid, not the agent.
 */
export function agentStopped(facts: LocalFileFacts, intervalMs = STATUS_FILE_INTERVAL_MS): boolean {
  if (facts.agentPid !== null) return false;
  return facts.ageSeconds * 1000 > STALE_INTERVALS * intervalMs || !facts.writerAlive;
}

/**
 * Says why the local status file is old, when it is: the agent is not running, or it runs and
 * cannot write the file (a full disk, most often). Null while the file is current.
 */
export function staleFileWarning(
  facts: Pick<LocalFileFacts, "ageSeconds" | "agentPid" | "freeBytes">,
  intervalMs = STATUS_FILE_INTERVAL_MS,
): string | null {
  if (facts.ageSeconds * 1000 <= STALE_INTERVALS * intervalMs) return null;
  const age = `the status file is ${formatDuration(facts.ageSeconds)} old (the agent rewrites it every ${formatDuration(intervalMs / 1000)})`;
  if (facts.agentPid === null) return `${age}: no agent runs on this data dir; this is what it knew when it stopped`;
  const why =
    facts.freeBytes !== null && facts.freeBytes < NEARLY_FULL_BYTES
      ? `: the data dir's file system is full (ENOSPC, ${formatBytes(facts.freeBytes)} free)`
      : ' (see its log: "cannot write the status file")';
  return `${age}: the agent (pid ${facts.agentPid}) runs but cannot write it${why}; what follows is stale`;
}

export type Presence = "readable" | "unreadable" | "absent";

async function presenceOf(path: string): Promise<Presence> {
  try {
    await access(path, constants.R_OK);
    return "readable";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "EACCES" || code === "EPERM" ? "unreadable" : "absent";
  }
}

export interface DataDirChoice {
  readonly dataDir: string;
  readonly note?: string;
}

/**
 * Which data dir `status` reads. An ordinary user's default data dir is their own, empty unless
 * they ran an agent by hand; the packaged service keeps its state in the system data dir. With
 * the default data dir and no agent state in it, the system agent's is the one meant: read it if
 * this user may, else say that sudo is needed.
 */
export async function chooseStatusDataDir(
  ownDataDir: string,
  options: {
    readonly dataDirGiven: boolean;
    readonly systemDataDir: string;
    readonly probe?: (path: string) => Promise<Presence>;
  },
): Promise<DataDirChoice> {
  const probe = options.probe ?? presenceOf;
  if (options.dataDirGiven || ownDataDir === options.systemDataDir) return { dataDir: ownDataDir };
  const ownState = await Promise.all([STATUS_FILE, MACHINE_ID_FILE].map((name) => probe(join(ownDataDir, name))));
  if (ownState.some((presence) => presence !== "absent")) return { dataDir: ownDataDir };
  const system = await probe(join(options.systemDataDir, STATUS_FILE));
  const systemDir = await probe(options.systemDataDir);
  if (system === "readable") {
    return {
      dataDir: options.systemDataDir,
      note: `the system agent's (your own data dir ${ownDataDir} has no agent state)`,
    };
  }
  if (system === "unreadable" || (system === "absent" && systemDir === "unreadable")) {
    throw new CommandError(
      `the system agent's state in ${options.systemDataDir} is readable by its own user only: run sudo edge-agent status (your own data dir ${ownDataDir} has no agent state)`,
      ExitCode.failure,
    );
  }
  return { dataDir: ownDataDir };
}

/** Asks the running agent over NATS; falls back to the status file the daemon keeps. */
export async function fetchStatus(
  settings: Settings,
  choice: DataDirChoice = { dataDir: settings.dataDir },
): Promise<StatusReport> {
  const { dataDir } = choice;
  const located = { dataDir, ...(choice.note ? { note: choice.note } : {}) };
  const known = await knownMachineId({ ...settings, dataDir }, { includeLastRun: true });
  if (!known) {
    throw new CommandError(
      `no machine id: the agent has never run with data dir ${dataDir} (set EDGE_AGENT_MACHINE_ID or run the agent once; the packaged service's: sudo edge-agent status)`,
      ExitCode.failure,
    );
  }
  const { machineId } = known;
  const noted = known.note ? { machineIdNote: known.note } : {};
  let liveError: string;
  try {
    // Under the machine's own identity the reply can only land in its own inbox prefix. That
    // identity may not publish to its rpc subjects (see permissions.ts): then the file answers.
    const connection = await connectOnce(settings, `${machineId}-status`, 2_000, {
      inboxPrefix: inboxPrefixOf(machineId, settings.inboxPrefix),
    });
    try {
      const reply = await connection.request(machineSubjects(machineId).rpcStatus, "", { timeout: 2_000 });
      return {
        source: "live",
        running: true,
        stoppedSince: null,
        ...located,
        ...noted,
        status: reply.json<AgentStatus>(),
      };
    } finally {
      await connection.close();
    }
  } catch (error) {
    liveError = (error as Error).message;
  }
  const local = await readStatusFile(dataDir);
  if (!local)
    throw new CommandError(
      `agent not reachable (${liveError}) and no local status file in ${dataDir}`,
      ExitCode.failure,
    );
  const { modifiedMs, ...facts } = await localFileFacts(dataDir, local.pid);
  const stopped = agentStopped(facts);
  return {
    source: "local-file",
    running: !stopped,
    stoppedSince: stopped ? new Date(modifiedMs).toISOString() : null,
    ...located,
    ...noted,
    status: local,
    liveError,
    localFile: facts,
  };
}

/** `edge-agent status`: prints the report; 0 while an agent runs, 1 when none does. */
export async function statusCommand(
  settings: Settings,
  options: {
    readonly json: boolean;
    readonly dataDirGiven: boolean;
    readonly host: ProcessHost;
    readonly env: NodeJS.ProcessEnv;
  },
  print: (text: string) => void,
): Promise<number> {
  // The system agent's data dir on this platform, whoever asks.
  const systemDataDir = defaultDirectories(options.host.platform, options.env, true).dataDir;
  const choice = await chooseStatusDataDir(settings.dataDir, { dataDirGiven: options.dataDirGiven, systemDataDir });
  const report = await fetchStatus(settings, choice);
  print(options.json ? JSON.stringify(report, null, 2) : formatStatus(report));
  return report.running ? ExitCode.ok : ExitCode.failure;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function formatDuration(seconds: number): string {
  const units: Array<[string, number]> = [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ];
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(seconds));
  for (const [unit, size] of units) {
    if (rest >= size || (unit === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.slice(0, 2).join(" ");
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** `key value, key value` for a capability nobody wrote a line for: readable, never raw JSON. */
function describeFields(detail: unknown, prefix = ""): string {
  if (!isRecord(detail))
    return Array.isArray(detail) ? detail.map((entry) => describeFields(entry)).join("; ") : String(detail);
  return Object.entries(detail)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([key, value]) =>
      isRecord(value)
        ? describeFields(value, `${prefix}${key}.`)
        : `${prefix}${key} ${Array.isArray(value) ? value.join(",") : String(value)}`,
    )
    .filter((part) => part !== "")
    .join(", ");
}

function configLines(detail: Record<string, unknown>): string[] {
  const lastStatus = isRecord(detail.lastStatus) ? detail.lastStatus : null;
  const last = lastStatus
    ? `; last change: revision ${String(lastStatus.revision)} ${String(lastStatus.status)} at ${String(lastStatus.timestamp)}${lastStatus.error ? `: ${String(lastStatus.error)}` : ""}`
    : "; no remote change yet";
  const lines = [`  config:     running revision ${String(detail.revision ?? 0)}${last}`];
  return lines;
}

/** How the agent takes commands: loud when it is anything but signed. */
export function commandLines(
  commands: AgentStatus["commands"] | undefined,
  platform: AgentStatus["platform"] = undefined,
): string[] {
  if (!commands) return [];
  const unsigned =
    platform?.platform === "openframe"
      ? "UNSIGNED ACCEPTED (platform openframe: OpenFrame signs no command; safe only in the account layout)"
      : "UNSIGNED ACCEPTED (allowUnsigned: development only; never run a production machine like this)";
  const trust =
    commands.trust === "signed"
      ? "signed only"
      : commands.trust === "unsigned"
        ? unsigned
        : "ALL REFUSED: no configSigningKey (give the agent the platform's key, or allowUnsigned for development)";
  const read = commands.lastCheckedAt === null ? "not read yet" : `read ${commands.lastCheckedAt}`;
  const lines = [
    `  commands:   ${trust}; ${commands.feeds} feeds ${read}; ${commands.pending} pending, ${commands.running} running`,
  ];
  if (commands.problem) lines.push(`              cannot read: ${commands.problem}`);
  return lines;
}

/** Whose conventions the agent follows, and what they make of downloads and the uninstall: loud where they loosen ours. */
export function platformLines(platform: AgentStatus["platform"]): string[] {
  if (!platform) return [];
  const { allowed, hosts } = platform.downloadsWithoutChecksum;
  const downloads = !allowed
    ? "every download needs a sha256"
    : hosts.length > 0
      ? `downloads without a sha256 taken over HTTPS from ${hosts.join(", ")} (their sha256 reported)`
      : "downloads without a sha256 allowed, but NO HOST may serve them: all refused (set allowedDownloadHosts)";
  const uninstall =
    platform.uninstall === "unsigned"
      ? "UNSIGNED UNINSTALL ACCEPTED (allowUnsignedUninstall: safe only in the account layout)"
      : "uninstall signed only";
  const name = platform.platform === "openframe" ? "openframe (OpenFrame's conventions)" : "edge";
  return [`  platform:   ${name}; ${downloads}; ${uninstall}`];
}

/** The files of an installed tool or update taken without a sha256: what arrived, for a person to compare. */
function uncheckedDownloadText(download: DownloadRecord): string {
  return `${download.file} taken without a sha256: ${download.size} bytes, sha256 ${download.sha256}`;
}

function telemetryLine(detail: Record<string, unknown>): string {
  const count = (key: string): number => (typeof detail[key] === "number" ? detail[key] : 0);
  const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
  // Taken into the outbox: whether they reached the platform is the outbox's "delivered".
  const parts = [
    `${plural(count("samples"), "sample", "samples")} and ${plural(count("inventoriesSent"), "inventory", "inventories")} taken into the outbox`,
  ];
  if (count("missedRuns") > 0)
    parts.push(`${plural(count("missedRuns"), "run", "runs")} missed (the event loop was busy at the time)`);
  if (count("skippedOverlaps") > 0)
    parts.push(`${plural(count("skippedOverlaps"), "run", "runs")} skipped (the one before had not finished)`);
  const line = `  telemetry:  ${parts.join("; ")}`;
  return detail.lastError ? `${line}; last error: ${String(detail.lastError)}` : line;
}

/** Remote tasks: how they are taken (loud when unsigned), what runs now (id, pid, since) and how many wait. */
export function taskLines(detail: Record<string, unknown>): string[] {
  const running = (detail.running as Array<{ taskId: string; pid: number | null; since: string | null }>) ?? [];
  const accepts =
    detail.enabled === false
      ? "turned off (tasks.enabled false): every task refused"
      : detail.accepts === "signed"
        ? "signed only"
        : detail.accepts === "unsigned"
          ? "UNSIGNED TASKS RUN (tasks.allowUnsigned: development only)"
          : "ALL REFUSED: no configSigningKey (tasks.allowUnsigned would take unsigned ones, for development)";
  const confine = detail.confine === "working-dir" ? "confined to their working dir" : "not confined";
  const lines = [
    `  tasks:      ${accepts}; ${confine}; ${running.length} running, ${String(detail.queued ?? 0)} queued (at most ${String(detail.maxConcurrent ?? "?")} at once)`,
  ];
  for (const task of running)
    lines.push(`    ${task.taskId} pid ${task.pid ?? "(starting)"}${task.since ? ` since ${task.since}` : ""}`);
  return lines;
}

/**
 * What waiting events wait for: the link while it is down (the last publish error is then only
 * how it went down), else the problem the outbox met, with what to do when it is missing streams.
 */
export function deliveryLine(problem: string, connectionState?: string): string {
  if (connectionState !== undefined && connectionState !== "connected") {
    return `  delivery:   events wait in the outbox until the NATS link is up (it is ${connectionState}; last publish error: ${problem})`;
  }
  if (problem === NO_STREAM_REASON) {
    return "  delivery:   events wait in the outbox: the server has no stream for them (or JetStream is off); create the streams with edge-agent dev-setup (development), or have the platform create them";
  }
  return `  delivery:   events wait in the outbox: ${problem}`;
}

/** How long the oldest waiting event has waited; "?" when events wait but the outbox could not say. */
function oldestLine(pendingCount: number, oldestPendingAgeMs: number | null): string {
  if (oldestPendingAgeMs !== null) return formatDuration(oldestPendingAgeMs / 1000);
  return pendingCount === 0 ? "-" : "? (the outbox could not be read)";
}

export function formatStatus(report: StatusReport): string {
  const { status } = report;
  const { outbox } = status;
  const staleWarning = report.running && report.localFile ? staleFileWarning(report.localFile) : null;
  const header = `edge-agent ${status.version}  machine ${status.machineId}`;
  const lines = report.running
    ? [
        `${header}  pid ${status.pid}`,
        report.source === "live"
          ? "  source:     live answer from the running agent"
          : `  source:     local status file written ${status.writtenAt} (agent not reachable: ${report.liveError ?? "unknown"})`,
        ...(report.note ? [`  data dir:   ${report.dataDir}, ${report.note}`] : []),
        ...(report.machineIdNote ? [`  machine id: ${report.machineIdNote}`] : []),
        ...(staleWarning ? [`  warning:    ${staleWarning}`] : []),
        `  connection: ${status.connection.state}${status.connection.server ? ` to ${status.connection.server}` : ""} (reconnects: ${status.connection.reconnects})`,
        ...(status.connection.lastError ? [`  link error: ${status.connection.lastError}`] : []),
        `  uptime:     ${formatDuration(status.uptimeSeconds)} since ${status.startedAt}`,
        `  heartbeat:  every ${status.heartbeatSeconds}s`,
      ]
    : [
        `${header}  not running since ${report.stoppedSince ?? status.writtenAt}`,
        `  source:     the status file it left in ${report.dataDir}${report.note ? `, ${report.note}` : ""}`,
        `  last run:   pid ${status.pid}, started ${status.startedAt}, up ${formatDuration(status.uptimeSeconds)}; its link was ${status.connection.state}${status.connection.server ? ` to ${status.connection.server}` : ""}`,
        ...(status.connection.lastError ? [`  link error: ${status.connection.lastError}`] : []),
      ];
  lines.push(
    `  outbox:     ${outbox.pendingCount} pending (${formatBytes(outbox.pendingBytes)}), oldest ${oldestLine(outbox.pendingCount, outbox.oldestPendingAgeMs)}, last sequence ${outbox.lastSequence}, delivered ${outbox.deliveredCount}`,
    `              evicted ${outbox.evictedTelemetry} telemetry / ${outbox.evictedState} state, dead letters ${outbox.deadLetters}${outbox.heldInMemory > 0 ? `, ${outbox.heldInMemory} held in memory` : ""}`,
  );
  if (outbox.deliveryProblem) lines.push(deliveryLine(outbox.deliveryProblem, status.connection.state));
  if (outbox.lastError) lines.push(`  outbox error: ${outbox.lastError}`);
  lines.push(...commandLines(status.commands, status.platform), ...platformLines(status.platform));
  if (outbox.sequenceSkip) {
    lines.push(
      `  sequence:   started after ${outbox.sequenceSkip.through}, past numbers ${outbox.sequenceSkip.after + 1}-${outbox.sequenceSkip.through} reserved by a run that crashed (events held only in memory then are lost)`,
    );
  }
  for (const [name, detail] of Object.entries(status.capabilities)) {
    if (name === "tools" && Array.isArray(detail)) {
      lines.push(`  tools:      ${detail.length === 0 ? "none" : ""}`);
      for (const tool of detail as Array<{
        toolAgentId: string;
        version: string | null;
        state: string;
        error: string | null;
        agentToolId: string | null;
        downloads?: DownloadRecord[];
      }>) {
        lines.push(
          `    ${tool.toolAgentId} ${tool.version ?? "?"} ${tool.state}${tool.agentToolId ? ` (id ${tool.agentToolId})` : ""}${tool.error ? `: ${tool.error}` : ""}`,
        );
        for (const download of tool.downloads ?? [])
          if (!download.verified) lines.push(`      ${uncheckedDownloadText(download)}`);
      }
      continue;
    }
    if (name === "update" && isRecord(detail) && "runningVersion" in detail) {
      const update = detail as {
        runningVersion: string;
        active: string | null;
        trial: { version: string; startedAt: string } | null;
        restartPending: boolean;
        runningFrom?: "executable" | "sources";
        download?: DownloadRecord | null;
      };
      const installed = update.active
        ? `installed update ${update.active}`
        : update.runningFrom === "sources"
          ? "from the sources, with Node: a checkout"
          : "the packaged binary";
      const trial = update.trial ? `; on trial: ${update.trial.version} since ${update.trial.startedAt}` : "";
      lines.push(
        `  update:     running ${update.runningVersion} (${installed})${trial}${update.restartPending ? "; restarting into it" : ""}`,
      );
      if (update.download && !update.download.verified)
        lines.push(`              ${uncheckedDownloadText(update.download)}`);
      continue;
    }
    if (name === "config" && isRecord(detail)) {
      lines.push(...configLines(detail));
      continue;
    }
    if (name === "telemetry" && isRecord(detail)) {
      lines.push(telemetryLine(detail));
      continue;
    }
    if (name === "tasks" && isRecord(detail) && Array.isArray(detail.running)) {
      lines.push(...taskLines(detail));
      continue;
    }
    lines.push(`  ${`${name}:`.padEnd(11)} ${describeFields(detail) || "-"}`);
  }
  if (status.lastErrors.length > 0) {
    lines.push("  recent errors:");
    for (const entry of status.lastErrors) lines.push(`    ${entry.at} [${entry.source}] ${entry.message}`);
  }
  return lines.join("\n");
}
