import { wsconnect } from "@nats-io/nats-core";
import { type ConnectionOptions, connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/index.ts";
import { type Cancel, type Clock, createLogThrottle, sleepOn, timersOf } from "../runtime/index.ts";
import { usesWebSocket } from "../settings-kit/index.ts";
import { serverUnreachable } from "./connect-failure.ts";

/** Opens a connection; injected so tests and a fleet simulator can wrap or count connections. */
export type ConnectionFactory = (options: ConnectionOptions) => Promise<NatsConnection>;

export const defaultConnectionFactory: ConnectionFactory = (options) => {
  const servers = Array.isArray(options.servers) ? options.servers : [options.servers ?? ""];
  // Node 22+ has a global WebSocket, which nats-core's wsconnect uses for ws:// and wss://.
  return usesWebSocket(servers) ? wsconnect(options) : connect(options);
};

export type LinkState = "connecting" | "connected" | "disconnected" | "closed";

export interface LinkObserver {
  connected(server: string, connection: NatsConnection): void;
  disconnected(server: string, reason: string): void;
  reconnected(server: string, connection: NatsConnection): void;
  /**
   * The connection closed for good without being asked to (nats.js gave up on it). The program
   * should start again: everything bound to the old connection is gone.
   */
  lost(reason: string): void;
}

export interface NatsLink {
  readonly state: LinkState;
  /** The connection once the first connect succeeded (it stays the same object across reconnects). */
  readonly connection: NatsConnection | null;
  /** Why the last connect or reconnect failed (refused credentials, unreachable server), until the next success. */
  readonly lastError: string | null;
  /** Connects in the background and keeps trying; never rejects. */
  start(): void;
  /** Flushes and closes; waits at most `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
}

export interface NatsLinkOptions {
  readonly connectionOptions: () => ConnectionOptions;
  readonly factory: ConnectionFactory;
  readonly observer: LinkObserver;
  readonly logger: Logger;
  /** Every wait of the link (retries, the drain's deadline) and the failure lines' rate limit run on it. */
  readonly clock: Clock;
  readonly onReconnectAttempt?: () => void;
  /** Called after each successful (re)connect so the backoff starts small again. */
  readonly resetBackoff: () => void;
  /** The wait before the next first-connect attempt (the same jittered backoff nats.js uses for reconnects). */
  readonly nextRetryDelayMs: () => number;
  /** At most one warn line per this many ms while the first connect keeps failing the same way (default 30 s). */
  readonly failureLogIntervalMs?: number;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function createNatsLink(options: NatsLinkOptions): NatsLink {
  const { logger, observer } = options;
  let state: LinkState = "connecting";
  let connection: NatsConnection | null = null;
  let started = false;
  let closing = false;
  let lastError: string | null = null;
  const closed = new AbortController();

  const watchStatus = async (nc: NatsConnection): Promise<void> => {
    for await (const status of nc.status()) {
      switch (status.type) {
        case "disconnect":
          state = "disconnected";
          logger.warn(
            { server: status.server },
            "disconnected from NATS; events are kept on the device until the link is back",
          );
          observer.disconnected(status.server, "connection lost");
          break;
        case "reconnect":
          state = "connected";
          lastError = null;
          options.resetBackoff();
          logger.info({ server: status.server }, "reconnected to NATS");
          observer.reconnected(status.server, nc);
          break;
        case "reconnecting":
          options.onReconnectAttempt?.();
          logger.debug("trying to reconnect to NATS");
          break;
        case "error":
          // A refused credential on a reconnect lands here: nats.js keeps trying (ignoreAuthErrorAbort)
          // and reads the credential files again on each try, so a rotation is picked up.
          lastError = describe(status.error);
          logger.error({ err: status.error }, "NATS server reported an error");
          break;
        case "staleConnection":
          logger.warn("NATS connection is stale (no PONG); reconnecting");
          break;
        default:
          break;
      }
    }
  };

  /**
   * The first connection, tried until it works or the link is closed. Every failure is retried,
   * refused credentials included: a credential rotation or a permission fixed on the server must
   * bring a fleet back without anyone restarting it. The options are built again on each try, so a
   * credentials file replaced meanwhile is read afresh.
   */
  const connectUntilConnected = async (): Promise<NatsConnection | null> => {
    let announced = false;
    let attempt = 0;
    const failureLines = createLogThrottle({
      intervalMs: options.failureLogIntervalMs ?? 30_000,
      nowMs: () => options.clock.monotonicMs(),
    });
    while (!closing) {
      attempt += 1;
      try {
        const connectionOptions = options.connectionOptions();
        if (!announced) {
          logger.info(
            { servers: connectionOptions.servers },
            "connecting to NATS (work goes on offline meanwhile; it keeps trying)",
          );
          announced = true;
        }
        return await options.factory(connectionOptions);
      } catch (error) {
        const reason = describe(error);
        const delayMs = options.nextRetryDelayMs();
        // A new reason is worth a line at once; the same one, offline for days, a warn line at most
        // every interval, with how many attempts failed meanwhile (the rest at debug level).
        if (reason !== lastError) {
          failureLines.reset();
          failureLines.take();
          // No server answering is the expected offline case (warn); a server that refused is not.
          const level = serverUnreachable(error) ? "warn" : "error";
          logger[level](
            { reason, attempt, retryInMs: delayMs },
            "NATS connection failed; retrying (the reason is in `edge-agent status`)",
          );
        } else {
          const { log, suppressed } = failureLines.take();
          if (log)
            logger.warn(
              { reason, attempt, failedSinceLastLine: suppressed + 1, retryInMs: delayMs },
              "NATS connection still failing; retrying",
            );
          else logger.debug({ reason, attempt, retryInMs: delayMs }, "NATS connection still failing; retrying");
        }
        lastError = reason;
        await sleepOn(options.clock, delayMs, closed.signal);
      }
    }
    return null;
  };

  const connectInBackground = async (): Promise<void> => {
    const nc = await connectUntilConnected();
    if (nc === null) return;
    if (closing) {
      await nc.close();
      return;
    }
    connection = nc;
    state = "connected";
    lastError = null;
    options.resetBackoff();
    const server = nc.getServer();
    logger.info({ server }, "connected to NATS");
    void watchStatus(nc).catch((error: unknown) => logger.error({ err: error }, "NATS status watcher stopped"));
    void nc.closed().then((error) => {
      state = "closed";
      if (closing) return;
      lastError = error ? describe(error) : "the connection closed";
      logger.error({ reason: lastError }, "NATS connection closed for good");
      observer.lost(lastError);
    });
    observer.connected(server, nc);
  };

  return {
    get state() {
      return state;
    },
    get connection() {
      return connection;
    },
    get lastError() {
      return lastError;
    },
    start() {
      if (started) return;
      started = true;
      void connectInBackground().catch(() => undefined);
    },
    async close(timeoutMs) {
      closing = true;
      closed.abort();
      const nc = connection;
      if (!nc) {
        state = "closed";
        return;
      }
      let cancelTimeout: Cancel = () => undefined;
      const timeout = new Promise<"timeout">(
        (resolve) => (cancelTimeout = timersOf(options.clock).after(timeoutMs, () => resolve("timeout"))),
      );
      const drained = nc.isClosed() ? Promise.resolve() : nc.drain().catch(() => nc.close());
      const outcome = await Promise.race([drained, timeout]);
      cancelTimeout();
      if (outcome === "timeout") {
        logger.warn({ timeoutMs }, "NATS drain did not finish in time; closing");
        await nc.close().catch(() => undefined);
      }
      state = "closed";
    },
  };
}
