import {
  AckPolicy,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { jitteredBackoff } from "../runtime/backoff.ts";
import { type Clock, sleepOn } from "../runtime/clock.ts";
import type { Logger } from "../runtime/logger.ts";

export interface DurableConsumerOptions {
  readonly connection: NatsConnection;
  readonly stream: string;
  readonly name: string;
  /** One subject: nats-server 2.9 takes a single filter, inside one of the stream's subjects. */
  readonly filterSubject: string;
  readonly deliverPolicy?: DeliverPolicy;
  /** Ack wait for a consumer this creates; one that exists keeps its own. */
  readonly ackWaitMs?: number;
  readonly logger: Logger;
  /** The retry backoff waits on it. */
  readonly clock: Clock;
  /** Handles one message and settles it (ack, nak, term); `keepAliveEveryMs` fits the consumer's ack wait. */
  readonly handle: (message: JsMsg, keepAliveEveryMs: number) => Promise<void>;
}

export interface DurableConsumer {
  /** Stops taking messages; with `remove`, deletes the consumer from the server too. */
  stop(options?: { remove?: boolean }): Promise<void>;
}

/**
 * Binds (creating it if missing) a durable pull consumer and hands its messages over one at a
 * time, for as long as it runs: through reconnects, and through a stream that does not exist yet
 * (retried with backoff, logged once per kind of trouble).
 */
export function consumeDurable(options: DurableConsumerOptions): DurableConsumer {
  const { logger, stream, name } = options;
  const ackWaitMs = options.ackWaitMs ?? 60_000;
  let stopped = false;
  let stopMessages: (() => void) | null = null;
  // Stopping cuts a backoff wait short and never waits on a setup request (a missing stream or a
  // denied permission may keep one going for seconds): only a message being handled is waited for.
  const stopping = new AbortController();
  let handling: Promise<void> | null = null;

  const run = async (): Promise<void> => {
    const backoff = jitteredBackoff({ baseMs: 1_000, maxMs: 60_000 });
    let lastReason: string | null = null;
    while (!stopped) {
      try {
        // No account-info check ($JS.API.INFO): a least-privilege identity has no right to it.
        const manager = await jetstreamManager(options.connection, { checkAPI: false });
        let info: ConsumerInfo;
        try {
          info = await manager.consumers.info(stream, name);
        } catch (error) {
          if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.ConsumerNotFound) throw error;
          info = await manager.consumers.add(stream, {
            durable_name: name,
            filter_subject: options.filterSubject,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: options.deliverPolicy ?? DeliverPolicy.All,
            ack_wait: ackWaitMs * 1_000_000,
          });
        }
        const messages = await (await jetstream(options.connection).consumers.get(stream, name)).consume({
          max_messages: 4,
        });
        stopMessages = () => void messages.stop();
        if (stopped) messages.stop();
        logger.info({ consumer: name, stream }, "listening");
        lastReason = null;
        // Work that outlasts a third of the ack wait tells the server it is still going.
        const keepAliveEveryMs = Math.max(200, (info.config.ack_wait ?? ackWaitMs * 1_000_000) / 1_000_000 / 3);
        for await (const message of messages) {
          handling = options.handle(message, keepAliveEveryMs);
          await handling.finally(() => (handling = null));
        }
      } catch (error) {
        if (stopped) return;
        const reason = error instanceof Error ? error.message : String(error);
        if (reason !== lastReason) logger.warn({ reason, consumer: name, stream }, "cannot listen yet; retrying");
        lastReason = reason;
        await sleepOn(options.clock, backoff.next(), stopping.signal);
      }
    }
  };
  const running = run();

  return {
    async stop(stopOptions) {
      stopped = true;
      stopping.abort();
      stopMessages?.();
      await handling?.catch(() => undefined);
      if (stopOptions?.remove) {
        // Removing must come after any consumer the setup was still creating.
        await running;
        await jetstreamManager(options.connection)
          .then((manager) => manager.consumers.delete(stream, name))
          .catch((error: unknown) => logger.warn({ err: error, consumer: name }, "cannot delete the consumer"));
      }
    },
  };
}
