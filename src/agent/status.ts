import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { OutboxStats } from "../outbox/index.ts";
import type { Clock } from "../runtime/index.ts";
import { writeFileAtomic } from "../runtime/index.ts";
import type { PlatformConventions } from "../settings/index.ts";
import type { LinkState } from "../transport/index.ts";

/** What `rpc.status`, `edge-agent status` and the local status file report. */
export interface AgentStatus {
  readonly machineId: string;
  readonly version: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly connection: {
    readonly state: LinkState;
    readonly server: string | null;
    readonly reconnects: number;
    /** Why the last connect failed (e.g. refused credentials), until one succeeds. */
    readonly lastError?: string | null;
  };
  readonly heartbeatSeconds: number;
  readonly outbox: OutboxStats;
  /** How the agent reads and takes commands (src/commands/). */
  readonly commands: CommandsStatus;
  /** Whose conventions it follows (setting `platform`): commands, downloads, uninstalls. Older agents' files lack it. */
  readonly platform?: PlatformConventions;
  readonly lastErrors: ReadonlyArray<{ readonly at: string; readonly source: string; readonly message: string }>;
  readonly capabilities: Readonly<Record<string, unknown>>;
  readonly writtenAt: string;
}

export interface CommandsStatus {
  /** `signed`; `unsigned` (allowUnsigned, development); `refused` (no key: every command refused). */
  readonly trust: "signed" | "unsigned" | "refused";
  readonly feeds: number;
  /** When every feed due was last read, faults or not (`problem` says which cannot be read), null before. */
  readonly lastCheckedAt: string | null;
  /** Why commands cannot be read right now, null when they can. */
  readonly problem: string | null;
  /** Commands stored and waiting, and being worked on. */
  readonly pending: number;
  readonly running: number;
}

/**
 * The little of an agent's status that can be read at once, with no database query and no
 * capability asked: what a process polling thousands of agents (the fleet simulator) reads.
 */
export interface AgentProgress {
  readonly linkState: LinkState;
  /** `outbox.pendingCount` of the full status. */
  readonly outboxPending: number;
  /** When every command feed was last read (epoch ms), null before: `commands.lastCheckedAt`. */
  readonly commandsReadAtMs: number | null;
  /** `commands.problem`. */
  readonly commandsProblem: string | null;
}

export const STATUS_FILE = "status.json";
/** How often the daemon rewrites the status file (independently of the heartbeat). */
export const STATUS_FILE_INTERVAL_MS = 10_000;

/** The daemon leaves its status here every `STATUS_FILE_INTERVAL_MS`, so `status` works with no link. */
export async function writeStatusFile(dataDir: string, status: AgentStatus): Promise<void> {
  await writeFileAtomic(join(dataDir, STATUS_FILE), `${JSON.stringify(status, null, 2)}\n`);
}

export async function readStatusFile(dataDir: string): Promise<AgentStatus | null> {
  try {
    return JSON.parse(await readFile(join(dataDir, STATUS_FILE), "utf8")) as AgentStatus;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/** A small ring of recent errors, newest last, for operators. */
export function createErrorLog(capacity: number): {
  record(at: string, source: string, message: string): void;
  list(): AgentStatus["lastErrors"];
} {
  const entries: Array<{ at: string; source: string; message: string }> = [];
  return {
    record(at, source, message) {
      entries.push({ at, source, message });
      if (entries.length > capacity) entries.shift();
    },
    list: () => [...entries],
  };
}

/** Where the link is, as the link's events said: the server it is on and how often it came back. */
export class LinkRecord {
  server: string | null = null;
  reconnects = 0;

  up(server: string, reconnected: boolean): void {
    this.server = server;
    if (reconnected) this.reconnects += 1;
  }

  down(): void {
    this.server = null;
  }
}

/**
 * The agent's status, composed: its own facts (identity, link, outbox, recent errors) and each
 * capability's status under `capabilities.<name>`.
 */
export interface StatusAssembly {
  uptimeSeconds(): number;
  /** Waits for every capability's status. */
  current(): Promise<AgentStatus>;
  /** Without waiting: an asynchronous capability's last status. */
  snapshot(): AgentStatus;
}

export function createStatusAssembly(options: {
  machineId: string;
  version: string;
  pid: number;
  clock: Clock;
  startedAtMs: number;
  errors: { list(): AgentStatus["lastErrors"] };
  outboxStats: () => OutboxStats;
  link: { readonly state: LinkState; readonly lastError: string | null };
  linkRecord: LinkRecord;
  heartbeatSeconds: () => number;
  commands: () => CommandsStatus;
  conventions: PlatformConventions;
  capabilities: { statuses(): Promise<Record<string, unknown>>; statusesNow(): Record<string, unknown> };
}): StatusAssembly {
  const { clock, startedAtMs, linkRecord } = options;
  const uptimeSeconds = (): number => Math.round((clock.now() - startedAtMs) / 1000);
  const compose = (capabilities: Record<string, unknown>): AgentStatus => ({
    machineId: options.machineId,
    version: options.version,
    pid: options.pid,
    startedAt: new Date(startedAtMs).toISOString(),
    uptimeSeconds: uptimeSeconds(),
    connection: {
      state: options.link.state,
      server: linkRecord.server,
      reconnects: linkRecord.reconnects,
      lastError: options.link.lastError,
    },
    heartbeatSeconds: options.heartbeatSeconds(),
    outbox: options.outboxStats(),
    commands: options.commands(),
    platform: options.conventions,
    lastErrors: options.errors.list(),
    capabilities,
    writtenAt: new Date(clock.now()).toISOString(),
  });
  return {
    uptimeSeconds,
    current: async () => compose(await options.capabilities.statuses()),
    snapshot: () => compose(options.capabilities.statusesNow()),
  };
}
