import { eventHeaderEntries } from "../contracts/index.ts";
import type { Logger } from "../runtime/index.ts";
import { jitteredBackoff, systemTimers, type Timers } from "../runtime/index.ts";
import type { EventPublisher, PublishOutcome } from "./publisher.ts";
import type { StoredOutboxEntry } from "./types.ts";

/**
 * What the drainer needs of the store: the oldest pending events, and a way to settle results.
 * Every batch handed out is settled, whatever became of it: what is neither delivered nor rejected
 * goes back to the store's keeping, where it may be evicted (a full or expired outbox while offline)
 * before the next round takes it again.
 */
export interface DrainSource {
  nextBatch(limit: number): StoredOutboxEntry[];
  settle(
    delivered: readonly StoredOutboxEntry[],
    rejected: ReadonlyArray<{ entry: StoredOutboxEntry; reason: string }>,
  ): void;
}

export interface Drainer {
  /** New events were stored: look now if idle (a backoff after a failure is not cut short). */
  notify(): void;
  /**
   * The link is down: publish nothing until `wake`. nats.js drops what is published while it
   * reconnects (it empties its outbound buffer at every dial), so such a publish is only an ack
   * awaited until its timeout, and every event behind it waits that long after the link is back.
   */
  hold(): void;
  /** The link is back: retry now and start the backoff over (ends a hold). */
  wake(): void;
  /** Why the last publish has to be retried (no stream, disconnected...), until events go out again. */
  readonly retryReason: string | null;
  stop(): Promise<void>;
}

/**
 * Publishes pending events oldest first, `maxInFlight` at a time on the one connection (so they
 * reach the stream in sequence order), and settles each batch: acked -> deleted, rejected -> dead
 * letter, retry -> kept for the next round after a jittered backoff. An event is deleted only after
 * JetStream acknowledged it: at-least-once, and `Nats-Msg-Id` lets the stream drop the duplicate a
 * crash between ack and delete can cause. Settling never waits for the disk: the source settles in
 * memory first and never hands out a settled event again (see outbox.ts).
 */
export function startDrainer(options: {
  source: DrainSource;
  publisher: EventPublisher;
  logger: Logger;
  batchSize: number;
  maxInFlight: number;
  /** How often to look for work when nobody notifies the drainer (appends and reconnects do). */
  idlePollMs?: number;
  /** Default: the real timers. */
  timers?: Timers;
  /** The outbox life the events' sequences belong to (X-Outbox-ID). */
  outboxId: string;
}): Drainer {
  const timers = options.timers ?? systemTimers;
  const { source, publisher, logger } = options;
  // Capped low: a retry is one publish, and after a broker restart JetStream needs a few seconds
  // before it stores again; a long backoff would only delay delivery once it can.
  const backoff = jitteredBackoff({ baseMs: 250, maxMs: 5_000 });
  let running = true;
  let held = false;
  let wakeUp: (() => void) | null = null;
  let idle = false;
  let pendingSignal = false;
  let lastWarnedReason: string | null = null;

  const sleep = (ms: number, idleSleep: boolean): Promise<void> =>
    new Promise((resolve) => {
      if (!running || (idleSleep && pendingSignal)) {
        pendingSignal = false;
        return resolve();
      }
      idle = idleSleep;
      const cancel = timers.after(ms, () => {
        wakeUp = null;
        resolve();
      });
      wakeUp = () => {
        cancel();
        wakeUp = null;
        resolve();
      };
    });

  const publishOne = async (entry: StoredOutboxEntry): Promise<PublishOutcome> => {
    const headers = eventHeaderEntries({ ...entry.metadata, sequence: entry.sequence, outboxId: options.outboxId });
    try {
      return await publisher.publish(entry.subject, entry.payload, headers, entry.metadata.eventId);
    } catch (error) {
      return { kind: "retry", reason: error instanceof Error ? error.message : String(error) };
    }
  };

  const drainBatch = async (batch: StoredOutboxEntry[]): Promise<"progress" | "retry"> => {
    const outcomes: Array<Promise<PublishOutcome>> = [];
    const window: Array<Promise<PublishOutcome>> = [];
    for (const entry of batch) {
      // Each publish is put on the wire synchronously, in sequence order; the window only bounds
      // how many acks we wait for at once.
      const outcome = publishOne(entry);
      outcomes.push(outcome);
      window.push(outcome);
      if (window.length >= options.maxInFlight) await window.shift();
    }
    const results = await Promise.all(outcomes);
    const delivered: StoredOutboxEntry[] = [];
    const rejected: Array<{ entry: StoredOutboxEntry; reason: string }> = [];
    let retryReason: string | null = null;
    results.forEach((result, index) => {
      const entry = batch[index] as StoredOutboxEntry;
      if (result.kind === "acked") delivered.push(entry);
      else if (result.kind === "rejected") {
        rejected.push({ entry, reason: result.reason });
        logger.error(
          { sequence: entry.sequence, subject: entry.subject, eventId: entry.metadata.eventId, reason: result.reason },
          "event refused for good: moved to dead letters",
        );
      } else retryReason ??= result.reason;
    });
    source.settle(delivered, rejected);
    if (retryReason !== null) {
      // Warn once per kind of trouble, not once per retry: a day offline is one line, not thousands.
      if (retryReason !== lastWarnedReason)
        logger.warn(
          { reason: retryReason, pending: batch.length - delivered.length },
          "events not delivered yet; they stay in the outbox and are retried",
        );
      else logger.debug({ reason: retryReason }, "publish to be retried");
      lastWarnedReason = retryReason;
      return "retry";
    }
    if (lastWarnedReason !== null) logger.info("events are being delivered again");
    lastWarnedReason = null;
    return "progress";
  };

  const loop = async (): Promise<void> => {
    while (running) {
      if (held) {
        // Only `wake` (or `stop`) ends a hold; the timer just bounds each wait.
        await sleep(options.idlePollMs ?? 30_000, false);
        continue;
      }
      let batch: StoredOutboxEntry[];
      try {
        batch = source.nextBatch(options.batchSize);
      } catch (error) {
        logger.error({ err: error }, "cannot read the outbox; retrying");
        await sleep(backoff.next(), false);
        continue;
      }
      if (batch.length === 0) {
        await sleep(options.idlePollMs ?? 30_000, true);
        continue;
      }
      let result: "progress" | "retry";
      try {
        result = await drainBatch(batch);
      } catch (error) {
        logger.error({ err: error }, "cannot settle delivered events; retrying");
        result = "retry";
      }
      if (result === "retry") await sleep(backoff.next(), false);
      else backoff.reset();
    }
  };

  const finished = loop();
  return {
    get retryReason() {
      return lastWarnedReason;
    },
    notify() {
      if (wakeUp && idle) wakeUp();
      else pendingSignal = true;
    },
    hold() {
      held = true;
    },
    wake() {
      held = false;
      backoff.reset();
      if (wakeUp) wakeUp();
      else pendingSignal = true;
    },
    async stop() {
      running = false;
      wakeUp?.();
      await finished;
    },
  };
}
