import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { LinkUp } from "../capability/index.ts";
import { inboxPrefixOf } from "../identity/index.ts";
import type { Outbox } from "../outbox/index.ts";
import { type Clock, jitteredBackoff, type Logger, sleepOn } from "../runtime/index.ts";
import type { Settings } from "../settings/index.ts";
import {
  buildConnectionOptions,
  type ConnectionFactory,
  createJetStreamPublisher,
  createNatsLink,
  DEFAULT_LINK_TUNING,
  defaultConnectionFactory,
  type LinkState,
  type LinkTuning,
  type NatsLink,
} from "../transport/index.ts";
import { LinkRecord } from "./status.ts";

/** How long the outbox waits for the capabilities to take a new link before it sends (at most). */
const ATTACH_BEFORE_DRAIN_MS = 2_000;

export interface AgentLinkOptions {
  /** The server list, the credentials and TLS, and the inbox prefix: this is the one part that reads them. */
  readonly settings: Pick<Settings, "natsServers" | "auth" | "tls" | "inboxPrefix">;
  readonly machineId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly connectionFactory?: ConnectionFactory | undefined;
  readonly linkTuning?: LinkTuning | undefined;
  /** What ends a link closed for good: the agent started afresh (absent: it is only logged). */
  readonly requestRestart?: ((reason: string) => void) | undefined;
  readonly commands: { attach(connection: NatsConnection): void; detach(): void };
  readonly capabilities: { attachAll(link: LinkUp): Promise<void>; detachAll(server: string, reason: string): void };
  readonly outbox: Pick<Outbox, "start" | "hold" | "wake">;
  /** The link came up or went down (the status file says so at once). */
  readonly changed: () => void;
  readonly recordError: (source: string, error: unknown) => void;
}

/**
 * One agent's NATS link and what each of its changes sets going: the command feeds and every
 * capability take a new link first (briefly), then the outbox sends; a link down holds the outbox;
 * a link lost for good restarts the agent.
 */
export class AgentLink {
  readonly record = new LinkRecord();
  readonly #options: AgentLinkOptions;
  readonly #link: NatsLink;
  #drainStarted = false;

  constructor(options: AgentLinkOptions) {
    this.#options = options;
    const { settings, machineId, logger, clock } = options;
    const tuning = options.linkTuning ?? DEFAULT_LINK_TUNING;
    const backoff = jitteredBackoff({ baseMs: tuning.reconnectBaseMs, maxMs: tuning.reconnectMaxMs });
    // Every request, JetStream call and delivery of this agent is answered here, never on the shared _INBOX.
    const inboxPrefix = inboxPrefixOf(machineId, settings.inboxPrefix);
    this.#link = createNatsLink({
      connectionOptions: () => ({ ...buildConnectionOptions(settings, machineId, backoff), inboxPrefix }),
      factory: options.connectionFactory ?? defaultConnectionFactory,
      logger,
      clock,
      resetBackoff: () => backoff.reset(),
      nextRetryDelayMs: () => backoff.next(),
      observer: {
        connected: (server, connection) => void this.#up(server, connection, false),
        reconnected: (server, connection) => void this.#up(server, connection, true),
        disconnected: (server, reason) => this.#down(server, reason),
        lost: (reason) => this.#lost(reason),
      },
    });
  }

  get state(): LinkState {
    return this.#link.state;
  }

  get lastError(): string | null {
    return this.#link.lastError;
  }

  /** Connects in the background, and keeps the link up from then on. */
  start(): void {
    this.#link.start();
  }

  close(timeoutMs: number): Promise<void> {
    return this.#link.close(timeoutMs);
  }

  async #up(server: string, connection: NatsConnection, reconnected: boolean): Promise<void> {
    const { commands, capabilities, outbox, clock } = this.#options;
    this.record.up(server, reconnected);
    this.#options.changed();
    commands.attach(connection);
    // The endpoints first (briefly): whoever sees this agent's events can ask it at once.
    await Promise.race([
      capabilities.attachAll({ connection, server, reconnected }),
      sleepOn(clock, ATTACH_BEFORE_DRAIN_MS),
    ]);
    if (!this.#drainStarted) outbox.start(createJetStreamPublisher(jetstream(connection)));
    else outbox.wake();
    this.#drainStarted = true;
  }

  #down(server: string, reason: string): void {
    this.record.down();
    // Nothing published while the link is down would arrive (drainer.ts says why): wait for #up.
    this.#options.outbox.hold();
    this.#options.changed();
    this.#options.commands.detach();
    this.#options.recordError("link", `disconnected from ${server}: ${reason}`);
    this.#options.capabilities.detachAll(server, reason);
  }

  #lost(reason: string): void {
    this.#options.recordError("link", `connection closed for good: ${reason}`);
    // Everything bound to the old connection is gone: starting afresh is the simple, safe way.
    if (this.#options.requestRestart) this.#options.requestRestart(`NATS connection closed for good: ${reason}`);
    else this.#options.logger.error({ reason }, "NATS connection closed for good and nothing can restart the agent");
  }
}
