import { AgentCommands } from "../commands/index.ts";
import type { MachineSubjects } from "../contracts/index.ts";
import { createOutboxEventSink, type EventSink, encodeEvent, type OutgoingEvent } from "../events/index.ts";
import { type Outbox, openOutbox } from "../outbox/index.ts";
import type { Clock, LoggerFamily } from "../runtime/index.ts";
import type { Settings } from "../settings/index.ts";
import { type CommandTrust, createCommandTrust } from "../trust/index.ts";
import type { CommandsStatus } from "./status.ts";

/** What one agent's capabilities share: the outbox, the one way into it, the trust gate and the command desk. */
export interface AgentPlumbing {
  readonly outbox: Outbox;
  readonly sink: EventSink;
  readonly trust: CommandTrust;
  readonly commands: AgentCommands;
}

/** Opens the outbox in the data dir, and builds on it what the capabilities share. */
export function openPlumbing(options: {
  readonly settings: Pick<Settings, "dataDir" | "outbox" | "configSigningKey" | "allowUnsigned">;
  readonly machineId: string;
  readonly subjects: MachineSubjects;
  readonly clock: Clock;
  readonly loggers: LoggerFamily;
  readonly onEventStored?: ((event: OutgoingEvent) => void) | undefined;
  readonly commandCheckEveryMs?: number | undefined;
}): AgentPlumbing {
  const { settings, machineId, subjects, clock, loggers, onEventStored } = options;
  const outbox = openOutbox({
    dataDir: settings.dataDir,
    clock,
    logger: loggers.child({ component: "outbox" }),
    maxBytes: settings.outbox.maxBytes,
    maxAgeMs: settings.outbox.maxAgeSeconds * 1000,
    durability: settings.outbox.durability,
  });
  const sink = createOutboxEventSink({
    machineId,
    subjects,
    clock,
    outbox,
    ...(onEventStored ? { afterAppend: onEventStored } : {}),
  });
  // One gate for everything signed, with one set of accepted-serial marks in the data dir.
  const trust = createCommandTrust({
    publicKey: settings.configSigningKey,
    allowUnsigned: settings.allowUnsigned,
    dataDir: settings.dataDir,
    clock,
    logger: loggers.root,
  });
  const commands = new AgentCommands({
    machineId,
    inbox: outbox.commands,
    encode: (event) => {
      const { eventId: _eventId, ...entry } = encodeEvent(event, { machineId, subjects, clock });
      return entry;
    },
    ...(onEventStored ? { stored: onEventStored } : {}),
    clock,
    logger: loggers.child({ component: "commands" }),
    ...(options.commandCheckEveryMs === undefined ? {} : { checkEveryMs: options.commandCheckEveryMs }),
  });
  return { outbox, sink, trust, commands };
}

/** What `status.commands` says: how commands are taken and read, and how many wait. */
export function commandsStatusOf({ commands, outbox, trust }: AgentPlumbing): CommandsStatus {
  const reading = commands.status();
  let counts = { pending: 0, running: 0 };
  try {
    counts = outbox.commands.counts();
  } catch {
    // The database cannot be read now: the outbox's own status says why.
  }
  return {
    trust: trust.mode,
    feeds: reading.feeds,
    lastCheckedAt: reading.lastCheckedAtMs === null ? null : new Date(reading.lastCheckedAtMs).toISOString(),
    problem: reading.problem,
    pending: counts.pending,
    running: counts.running,
  };
}
