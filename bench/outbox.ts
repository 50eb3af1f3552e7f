import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";
import { eventHeaderEntries } from "../src/contracts/index.ts";
import { type OutboxEntryInput, openOutbox } from "../src/outbox/index.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { silentLogger } from "../src/runtime/logger.ts";
import { createJetStreamPublisher } from "../src/transport/jetstream-publisher.ts";
import { testEvent } from "../test/fixtures/outbox/test-events.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";

/**
 * Outbox throughput and footprint. Counts: BENCH_OUTBOX_EVENTS (default 20,000) for enqueue and
 * drain; the raw JetStream baseline publishes the same events, pipelined the same way, in the
 * same run and against the same server.
 */
export const name = "outbox";

const perSecond = (count: number, ms: number): number => Math.round((count / ms) * 1000);

async function dirBytes(dir: string, prefix: string): Promise<number> {
  let total = 0;
  for (const suffix of ["", "-wal", "-shm"])
    total += (await stat(join(dir, prefix + suffix)).catch(() => ({ size: 0 }))).size;
  return total;
}

async function timed(work: () => Promise<void> | void): Promise<number> {
  const began = performance.now();
  await work();
  return performance.now() - began;
}

export async function run(): Promise<Record<string, unknown>> {
  const count = Number(process.env.BENCH_OUTBOX_EVENTS ?? 20_000);
  const fullCount = Math.min(count, 2_000);
  const root = await mkdtemp(join(tmpdir(), "edge-agent-bench-outbox-"));
  const server = await startNatsServer();
  const connection = await connect({ servers: server.url });
  try {
    const manager = await jetstreamManager(connection);
    await manager.streams.add({
      name: "TELEMETRY",
      subjects: ["machine.*.telemetry"],
      storage: "file",
      duplicate_window: 120_000_000_000,
    });
    const events: OutboxEntryInput[] = Array.from({ length: count }, (_, index) =>
      testEvent(index, { bodyBytes: 1_000 }),
    );

    const single = openOutbox({ dataDir: join(root, "single"), clock: systemClock, logger: silentLogger() });
    const singleMs = await timed(() => {
      for (const event of events) single.append(event);
    });
    await single.stop();

    const fullSingle = openOutbox({
      dataDir: join(root, "full"),
      clock: systemClock,
      logger: silentLogger(),
      durability: "full",
    });
    const fullSingleMs = await timed(() => {
      for (const event of events.slice(0, fullCount)) fullSingle.append(event);
    });
    await fullSingle.stop();

    const batched = openOutbox({
      dataDir: join(root, "batched"),
      clock: systemClock,
      logger: silentLogger(),
      maxBytes: 1024 ** 3,
    });
    const batchedMs = await timed(() => {
      for (let offset = 0; offset < count; offset += 500) batched.appendBatch(events.slice(offset, offset + 500));
    });
    const storedBytes = await dirBytes(join(root, "batched"), "outbox.db");

    const js = jetstream(connection);
    const drainMs = await timed(async () => {
      batched.start(createJetStreamPublisher(js));
      while (batched.stats().pendingCount > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    });
    await batched.stop();
    await manager.streams.purge("TELEMETRY");

    // Baseline: the same events, headers and msg ids, straight to js.publish, 128 in flight.
    const rawMs = await timed(async () => {
      const window: Array<Promise<unknown>> = [];
      let sequence = 0;
      for (const event of events) {
        sequence += 1;
        const eventHeaders = natsHeaders();
        for (const [header, value] of eventHeaderEntries({
          ...event.metadata,
          eventId: `${event.metadata.eventId}-raw`,
          sequence,
        }))
          eventHeaders.set(header, value);
        window.push(
          js.publish(event.subject, event.payload, { msgID: `${event.metadata.eventId}-raw`, headers: eventHeaders }),
        );
        if (window.length >= 128) await window.shift();
      }
      await Promise.all(window);
    });

    const drainRate = perSecond(count, drainMs);
    const rawRate = perSecond(count, rawMs);
    return {
      events: count,
      payloadBytes: events[0]?.payload.byteLength,
      enqueuePerSecond: {
        singleNormal: perSecond(count, singleMs),
        batchedNormal: perSecond(count, batchedMs),
        singleFull: perSecond(fullCount, fullSingleMs),
      },
      drainToJetStreamPerSecond: drainRate,
      rawJetStreamPublishPerSecond: rawRate,
      drainToRawRatio: Number((drainRate / rawRate).toFixed(2)),
      bytesOnDiskPerEvent: Math.round(storedBytes / count),
    };
  } finally {
    await connection.close();
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  }
}
