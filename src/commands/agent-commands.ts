import type { NatsConnection } from "@nats-io/transport-node";
import type { CommandDesk, CommandRoute, CommandRouteHandle } from "../capability/index.ts";
import { catchUpConsumerName, hintSubjects } from "../contracts/index.ts";
import type { OutgoingEvent } from "../events/index.ts";
import type { CommandInbox, OutboxEntryInput } from "../outbox/index.ts";
import type { Logger } from "../runtime/index.ts";
import { type Clock, sleepOn } from "../runtime/index.ts";
import { CommandRunner } from "./command-desk.ts";
import { FeedReader, type FeedReaderStatus } from "./feed-reader.ts";
import { takeOverLegacyConsumers } from "./legacy-consumers.ts";

const TAKEOVER_WAITS_MS = [0, 2_000, 5_000] as const;

export interface AgentCommandsOptions {
  readonly machineId: string;
  readonly inbox: CommandInbox;
  readonly encode: (event: OutgoingEvent) => OutboxEntryInput;
  readonly stored?: (event: OutgoingEvent) => void;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Every feed is checked this often besides hints and reconnects (default 10 min). */
  readonly checkEveryMs?: number;
  /** Waits between tries when commands cannot be read (default 2 s doubling to 60 s). */
  readonly retry?: { readonly baseMs: number; readonly maxMs: number };
}

export interface AgentCommandsStatus extends FeedReaderStatus {
  /** Outcomes the disk could not take yet (they are tried again). */
  readonly unsettled: number;
}

/**
 * An agent's commands, end to end: the feeds read from the server into the inbox
 * (feed-reader.ts), and the inbox's commands run through the routes the capabilities register
 * (command-desk.ts). The agent starts it once the capabilities have started, attaches it to every
 * link before the capabilities, and stops it after them.
 */
export class AgentCommands implements CommandDesk {
  readonly #options: AgentCommandsOptions;
  readonly #reader: FeedReader;
  readonly #runner: CommandRunner;
  readonly #hints: string[];
  #takenOver = false;

  constructor(options: AgentCommandsOptions) {
    this.#options = options;
    const logger = options.logger;
    this.#reader = new FeedReader({
      inbox: options.inbox,
      consumerName: catchUpConsumerName(options.machineId),
      clock: options.clock,
      logger,
      onAccepted: () => this.#runner.wake(),
      ...(options.checkEveryMs === undefined ? {} : { checkEveryMs: options.checkEveryMs }),
      ...(options.retry ? { retry: options.retry } : {}),
    });
    this.#runner = new CommandRunner({
      inbox: options.inbox,
      reader: this.#reader,
      encode: options.encode,
      ...(options.stored ? { stored: options.stored } : {}),
      clock: options.clock,
      logger,
    });
    this.#hints = hintSubjects(options.machineId);
  }

  route<Command>(route: CommandRoute<Command>): CommandRouteHandle {
    return this.#runner.route(route);
  }

  /** Reports what a crash cut short last time, then runs what is pending (the capabilities have started). */
  start(): void {
    this.#runner.start();
  }

  /** The link is up: earlier versions' consumers taken over (once), then every feed checked. */
  attach(connection: NatsConnection): void {
    if (this.#takenOver) {
      this.#reader.attach(connection, this.#hints);
      return;
    }
    void this.#takeOver(connection).finally(() => this.#reader.attach(connection, this.#hints));
  }

  /**
   * Before any feed is read: a feed read first would start after what a consumer still held. A few
   * tries; then the feeds are read anyway (a link that cannot do this cannot read commands either),
   * and it is tried again at the next connection.
   */
  async #takeOver(connection: NatsConnection): Promise<void> {
    const { logger, clock } = this.#options;
    for (const waitMs of TAKEOVER_WAITS_MS) {
      await sleepOn(clock, waitMs);
      try {
        await takeOverLegacyConsumers({
          connection,
          machineId: this.#options.machineId,
          inbox: this.#options.inbox,
          logger,
        });
        this.#takenOver = true;
        return;
      } catch (error) {
        logger.warn({ err: error }, "cannot take over earlier versions' consumers yet");
      }
    }
    logger.error(
      "earlier versions' consumers not taken over: commands are read meanwhile; tried again at the next connection",
    );
  }

  detach(): void {
    this.#reader.detach();
  }

  async stop(): Promise<void> {
    await this.#reader.stop();
    await this.#runner.stop();
  }

  status(): AgentCommandsStatus {
    return { ...this.#reader.status(), ...this.#runner.status() };
  }
}
