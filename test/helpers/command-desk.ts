import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { AgentCommands } from "../../src/commands/agent-commands.ts";
import { type CommandFeed, machineSubjects } from "../../src/contracts/index.ts";
import type { OutgoingEvent } from "../../src/events/event-sink.ts";
import { encodeEvent } from "../../src/events/outbox-event-sink.ts";
import { type Outbox, openOutbox } from "../../src/outbox/index.ts";
import { type Clock, systemClock } from "../../src/runtime/clock.ts";
import { type Logger, silentLogger } from "../../src/runtime/logger.ts";
import { readNewest } from "../../src/transport/stream-reads.ts";

/**
 * The command side of one agent for tests that drive a capability on its own (a tool manager, a
 * remote configuration): a real inbox in a real outbox database (in a temp dir, never drained: the
 * results stay in it), a real feed reader on the test's nats-server, and the runner. Every result
 * stored with a command is also handed to `onResult` (tests collect them beside what the capability
 * emits itself).
 */
export interface TestCommands {
  readonly commands: AgentCommands;
  readonly outbox: Outbox;
  readonly dataDir: string;
  /**
   * Starts the runner and attaches the reader to `connection`, and again at each of its reconnects
   * (as the agent's link does).
   */
  attach(connection: NatsConnection): void;
  /** Commands stored and not settled yet (pending, running, or cut short and not reported). */
  unsettled(): number;
  /**
   * Whether the feed has read everything its stream holds for its subject, and nothing taken is
   * left unsettled: what a test waits for after publishing a command that reports nothing.
   */
  caughtUp(connection: NatsConnection, feed: CommandFeed): Promise<boolean>;
  /** Stops reader and runner, closes the outbox and removes the temp dir (unless `keepDataDir`). */
  stop(options?: { keepDataDir?: boolean }): Promise<void>;
}

export async function startTestCommands(options: {
  readonly machineId: string;
  readonly onResult?: (event: OutgoingEvent) => void;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Reuse a data dir (a restart); default a fresh temp dir. */
  readonly dataDir?: string;
  /** How often every feed is checked besides hints (default 10 min). */
  readonly checkEveryMs?: number;
  /** Waits between tries when commands cannot be read (default 2 s doubling to 60 s). */
  readonly retry?: { readonly baseMs: number; readonly maxMs: number };
}): Promise<TestCommands> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "edge-agent-commands-")));
  const outbox = openOutbox({ dataDir, clock, logger });
  const subjects = machineSubjects(options.machineId);
  const commands = new AgentCommands({
    machineId: options.machineId,
    inbox: outbox.commands,
    encode: (event) => {
      const { eventId: _eventId, ...entry } = encodeEvent(event, { machineId: options.machineId, subjects, clock });
      return entry;
    },
    stored: (event) => options.onResult?.(event),
    clock,
    logger,
    ...(options.checkEveryMs === undefined ? {} : { checkEveryMs: options.checkEveryMs }),
    ...(options.retry ? { retry: options.retry } : {}),
  });
  let started = false;
  const unsettled = (): number => {
    const counts = outbox.commands.counts();
    return counts.pending + counts.running + counts.interrupted;
  };
  return {
    commands,
    outbox,
    dataDir,
    attach(connection) {
      if (!started) commands.start();
      started = true;
      commands.attach(connection);
      void (async () => {
        for await (const status of connection.status()) {
          if (status.type === "disconnect") commands.detach();
          if (status.type === "reconnect") commands.attach(connection);
        }
      })();
    },
    unsettled,
    async caughtUp(connection, feed) {
      const newest = await readNewest(connection, feed.stream, feed.subject);
      const position = outbox.commands.position(feed.key);
      return (newest === null || (position !== null && position >= newest.streamSequence)) && unsettled() === 0;
    },
    async stop(stopOptions) {
      await commands.stop();
      await outbox.stop();
      if (!stopOptions?.keepDataDir && options.dataDir === undefined)
        await rm(dataDir, { recursive: true, force: true });
    },
  };
}
