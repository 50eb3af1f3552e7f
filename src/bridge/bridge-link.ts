import type { NatsConnection } from "@nats-io/transport-node";
import type { Clock, Logger } from "../runtime/index.ts";
import { jitteredBackoff } from "../runtime/index.ts";
import { buildConnectionOptions, type ConnectionFactory, createNatsLink, type NatsLink } from "../transport/index.ts";

/**
 * One of the bridge's NATS links (the account's, and the system account's when presence reads
 * it), named `name` on the server. Consumers, leases and the service are bound to the connection,
 * so a link closed for good is fatal: the service manager starts the bridge afresh.
 */
export function openBridgeLink(options: {
  readonly name: string;
  readonly endpoint: Parameters<typeof buildConnectionOptions>[0];
  readonly factory: ConnectionFactory;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly connected: (connection: NatsConnection) => void;
  readonly lost: (error: Error) => void;
}): NatsLink {
  const { name, endpoint } = options;
  const backoff = jitteredBackoff({ baseMs: 500, maxMs: 30_000 });
  return createNatsLink({
    connectionOptions: () => buildConnectionOptions(endpoint, name, backoff),
    factory: options.factory,
    logger: options.logger.child({ link: name }),
    clock: options.clock,
    resetBackoff: () => backoff.reset(),
    nextRetryDelayMs: () => backoff.next(),
    observer: {
      connected: (_server, connection) => options.connected(connection),
      disconnected: () => undefined,
      reconnected: () => undefined,
      lost: (reason) => options.lost(new Error(`NATS connection ${name} closed for good: ${reason}`)),
    },
  });
}
