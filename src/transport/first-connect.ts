import type { NatsConnection } from "@nats-io/transport-node";
import { createLogThrottle, sleepOn } from "../runtime/index.ts";
import { serverUnreachable } from "./connect-failure.ts";
import type { NatsLinkOptions } from "./link.ts";

/** What the first connect shares with its link: whether it is closing, and the last failure's reason. */
export interface FirstConnectLink {
  readonly closing: () => boolean;
  /** Aborted when the link closes: a wait between tries ends at once. */
  readonly closed: AbortSignal;
  readonly lastError: () => string | null;
  readonly failed: (reason: string) => void;
}

export function describeFailure(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The first connection, tried until it works or the link is closed. Every failure is retried,
 * refused credentials included: a credential rotation or a permission fixed on the server must
 * bring a fleet back without anyone restarting it. The options are built again on each try, so a
 * credentials file replaced meanwhile is read afresh.
 */
export async function connectUntilConnected(
  options: NatsLinkOptions,
  link: FirstConnectLink,
): Promise<NatsConnection | null> {
  const { logger } = options;
  let announced = false;
  let attempt = 0;
  const failureLines = createLogThrottle({
    intervalMs: options.failureLogIntervalMs ?? 30_000,
    nowMs: () => options.clock.monotonicMs(),
  });
  while (!link.closing()) {
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
      const reason = describeFailure(error);
      const delayMs = options.nextRetryDelayMs();
      // A new reason is worth a line at once; the same one, offline for days, a warn line at most
      // every interval, with how many attempts failed meanwhile (the rest at debug level).
      if (reason !== link.lastError()) {
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
      link.failed(reason);
      await sleepOn(options.clock, delayMs, link.closed);
    }
  }
  return null;
}
