import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";

/**
 * What the fleet benchmark watches of JetStream on the server, without adding JetStream API load of
 * its own: the monitoring endpoint's `/jsz` (consumers, API requests received, errors and in flight)
 * and the API limit advisories.
 *
 * nats-server drops its queued JetStream API requests once 10,000 wait (`JSDefaultRequestQueueLimit`,
 * since 2.10.21) and publishes `$JS.EVENT.ADVISORY.API.LIMIT_REACHED` with the number dropped
 * (server/jetstream_api.go, `apiDispatch`). It publishes it in the SYSTEM account, and only when
 * someone there listens (`publishAdvisory(nil, ...)` in server/jetstream_events.go): so the server
 * must have a system account with a user, and this watch subscribes as that user. Direct gets are
 * answered by the stream itself, outside that queue, and are not counted in `/jsz`'s API figures.
 */

export const API_LIMIT_ADVISORY = "$JS.EVENT.ADVISORY.API.LIMIT_REACHED";

export interface JetStreamFigures {
  readonly consumers: number;
  readonly apiTotal: number;
  readonly apiErrors: number;
  readonly apiInflight: number;
}

const JSZ_TIMEOUT_MS = 5_000;

/** `/jsz` of the server's monitoring port: consumers and API counters (the counters start at 0 with each server process). */
export async function readJsz(monitorUrl: string): Promise<JetStreamFigures> {
  const response = await fetch(`${monitorUrl}/jsz`, { signal: AbortSignal.timeout(JSZ_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`${monitorUrl}/jsz answered ${response.status}`);
  const body = (await response.json()) as {
    consumers?: number;
    api?: { total?: number; errors?: number; inflight?: number };
  };
  return {
    consumers: body.consumers ?? 0,
    apiTotal: body.api?.total ?? 0,
    apiErrors: body.api?.errors ?? 0,
    apiInflight: body.api?.inflight ?? 0,
  };
}

export interface AdvisoryCount {
  readonly advisories: number;
  readonly droppedRequests: number;
}

/** Counts the API limit advisories from the system account; `since()` gives what came after a mark. */
export class ApiLimitAdvisories {
  readonly #connection: NatsConnection;
  #advisories = 0;
  #dropped = 0;

  private constructor(connection: NatsConnection) {
    this.#connection = connection;
    connection.subscribe(API_LIMIT_ADVISORY, {
      callback: (_error, message) => {
        this.#advisories += 1;
        this.#dropped += message.json<{ dropped?: number }>().dropped ?? 0;
      },
    });
  }

  /**
   * Connects as the system account's user. It comes back within 100 ms of a restarted server (no
   * jitter, never giving up): a queue of 10,000 API requests takes far longer than that to build.
   */
  static async open(url: string, user: string, pass: string): Promise<ApiLimitAdvisories> {
    const connection = await connect({
      servers: url,
      user,
      pass,
      name: "bench-system-watch",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
      reconnectJitter: 0,
    });
    const watch = new ApiLimitAdvisories(connection);
    await connection.flush();
    return watch;
  }

  total(): AdvisoryCount {
    return { advisories: this.#advisories, droppedRequests: this.#dropped };
  }

  since(mark: AdvisoryCount): AdvisoryCount {
    return { advisories: this.#advisories - mark.advisories, droppedRequests: this.#dropped - mark.droppedRequests };
  }

  close(): Promise<void> {
    return this.#connection.close();
  }
}

/** The largest `/jsz` figures seen while sampling (a restart's storm): in-flight API requests and consumers. */
export interface JetStreamPeaks {
  readonly samples: number;
  readonly failedSamples: number;
  readonly apiInflightMax: number;
  readonly consumersMax: number;
}

/** Samples `/jsz` every `intervalMs` until stopped; a sample the server cannot answer (it is down) is counted, not fatal. */
export function sampleJetStreamPeaks(monitorUrl: string, intervalMs = 250): { stop(): Promise<JetStreamPeaks> } {
  let running = true;
  let samples = 0;
  let failedSamples = 0;
  let apiInflightMax = 0;
  let consumersMax = 0;
  const loop = (async () => {
    while (running) {
      try {
        const figures = await readJsz(monitorUrl);
        samples += 1;
        apiInflightMax = Math.max(apiInflightMax, figures.apiInflight);
        consumersMax = Math.max(consumersMax, figures.consumers);
      } catch {
        failedSamples += 1;
      }
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples, failedSamples, apiInflightMax, consumersMax };
    },
  };
}

/**
 * Why the server closed connections, by reason, from `/connz?state=closed` (the server keeps the
 * last 10,000 by default, since its start): in a reconnect storm, the dials that did not make it.
 */
export async function closedConnectionReasons(monitorUrl: string): Promise<Record<string, number>> {
  const response = await fetch(`${monitorUrl}/connz?state=closed&limit=100000`, {
    signal: AbortSignal.timeout(JSZ_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error(`${monitorUrl}/connz answered ${response.status}`);
  const body = (await response.json()) as { connections?: Array<{ reason?: string }> };
  const counts: Record<string, number> = {};
  for (const connection of body.connections ?? []) {
    const reason = connection.reason ?? "unknown";
    counts[reason] = (counts[reason] ?? 0) + 1;
  }
  return counts;
}
