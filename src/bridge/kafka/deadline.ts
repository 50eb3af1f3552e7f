import { EdgeError } from "../../errors/index.ts";

/** A Kafka call that did not answer in time: treated like any passing failure (back off, take over again). */
export class KafkaDeadlineError extends EdgeError {
  readonly code = "EDGE_BRIDGE_KAFKA_DEADLINE";
  constructor(what: string, ms: number) {
    super(`${what} did not finish within ${ms} ms (Kafka unreachable or too slow)`);
    this.name = "KafkaDeadlineError";
  }
}

/**
 * Bounds a call into the Kafka client. The client can wait without end on a broker that went
 * away mid-transaction (seen: a send after the broker stopped never settles), so every call on the
 * bridge's path has a deadline; whoever gets KafkaDeadlineError closes the client it used.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KafkaDeadlineError(what, ms)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    // A late rejection of the abandoned call must not surface as unhandled.
    work.catch(() => undefined);
  }
}
