import { connect, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { wsconnect } from "@nats-io/nats-core";
import type { Logger } from "../runtime/logger.ts";
import { usesWebSocket } from "./nats-endpoint.ts";

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
}

export interface NatsLink {
  readonly state: LinkState;
  /** The connection once the first connect succeeded (it stays the same object across reconnects). */
  readonly connection: NatsConnection | null;
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
  readonly onReconnectAttempt?: () => void;
  /** Called after each successful (re)connect so the backoff starts small again. */
  readonly resetBackoff: () => void;
}

export function createNatsLink(options: NatsLinkOptions): NatsLink {
  const { logger, observer } = options;
  let state: LinkState = "connecting";
  let connection: NatsConnection | null = null;
  let connecting: Promise<void> | null = null;
  let closing = false;

  const watchStatus = async (nc: NatsConnection): Promise<void> => {
    for await (const status of nc.status()) {
      switch (status.type) {
        case "disconnect":
          state = "disconnected";
          logger.warn({ server: status.server }, "disconnected from NATS; events are kept on the device until the link is back");
          observer.disconnected(status.server, "connection lost");
          break;
        case "reconnect":
          state = "connected";
          options.resetBackoff();
          logger.info({ server: status.server }, "reconnected to NATS");
          observer.reconnected(status.server, nc);
          break;
        case "reconnecting":
          options.onReconnectAttempt?.();
          logger.debug("trying to reconnect to NATS");
          break;
        case "error":
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

  const connectInBackground = async (): Promise<void> => {
    let options_: ConnectionOptions;
    try {
      options_ = options.connectionOptions();
    } catch (error) {
      state = "closed";
      logger.fatal({ err: error }, "cannot build the NATS connection options");
      throw error;
    }
    logger.info({ servers: options_.servers }, "connecting to NATS (work goes on offline meanwhile; it keeps trying)");
    let nc: NatsConnection;
    try {
      nc = await options.factory(options_);
    } catch (error) {
      state = "closed";
      logger.error({ err: error }, "NATS connection failed and will not be retried");
      return;
    }
    if (closing) {
      await nc.close();
      return;
    }
    connection = nc;
    state = "connected";
    options.resetBackoff();
    const server = nc.getServer();
    logger.info({ server }, "connected to NATS");
    void watchStatus(nc).catch((error: unknown) => logger.error({ err: error }, "NATS status watcher stopped"));
    void nc.closed().then((error) => {
      state = "closed";
      if (error && !closing) logger.error({ err: error }, "NATS connection closed with an error");
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
    start() {
      connecting ??= connectInBackground().catch(() => undefined);
    },
    async close(timeoutMs) {
      closing = true;
      const nc = connection;
      if (!nc) {
        state = "closed";
        return;
      }
      const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), timeoutMs).unref());
      const drained = nc.isClosed() ? Promise.resolve() : nc.drain().catch(() => nc.close());
      if ((await Promise.race([drained, timeout])) === "timeout") {
        logger.warn({ timeoutMs }, "NATS drain did not finish in time; closing");
        await nc.close().catch(() => undefined);
      }
      state = "closed";
    },
  };
}
