import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ClientIdentityRule } from "../../src/bridge/devices/client-identity.ts";
import { DeviceStore } from "../../src/bridge/devices/device-store.ts";
import { DevicesProcessor } from "../../src/bridge/devices/devices-processor.ts";
import { ensurePresenceStream, presenceStreamNames } from "../../src/bridge/devices/presence.ts";
import type { SourceMessage } from "../../src/bridge/records/source-message.ts";
import { OrderedStreamSource } from "../../src/bridge/source/ordered-stream-source.ts";
import { DEVICE_STATE_STREAMS, MachinePinotMessage } from "../../src/contracts/index.ts";
import type { Clock } from "../../src/runtime/clock.ts";
import { type Logger, silentLogger } from "../../src/runtime/logger.ts";
import { waitFor } from "./wait-for.ts";

/**
 * The devices shard without Kafka: its processor (real KV state, real presence monitor) fed from
 * its three streams by the bridge's own readers, one batch at a time, as the shard runner does.
 * What a batch's transaction would write comes back as rows; the test says whether it committed.
 */
export interface DevicesHarness {
  readonly processor: DevicesProcessor;
  /**
   * Reads everything the streams hold past the last batch, prepares it as one batch and returns
   * its rows. `commit: false` is a transaction that never committed: like the runner, the shard
   * is then taken over again and reads from its last committed position.
   */
  batch(options?: { commit?: boolean }): Promise<MachinePinotMessage[]>;
  /** The stream positions its last committed batch reached. */
  committedPositions(): Readonly<Record<string, number>>;
  /** Presence signals the monitor has published so far. */
  signalsPublished(): number;
  stop(): Promise<void>;
}

export async function startDevicesHarness(options: {
  readonly connection: NatsConnection;
  readonly systemConnection?: NatsConnection | null;
  readonly clock: Clock;
  readonly group: string;
  /** Names its stream consumers: two harnesses of one group are two owners of the shard (default "harness"). */
  readonly name?: string;
  readonly identity?: ClientIdentityRule;
  readonly heartbeatSeconds?: number;
  readonly tenantId?: string | null;
  readonly logger?: Logger;
}): Promise<DevicesHarness> {
  const logger = options.logger ?? silentLogger();
  const names = presenceStreamNames(options.group);
  await ensurePresenceStream(options.connection, names);
  const processor = new DevicesProcessor({
    store: () => DeviceStore.open(options.connection, `${options.group}-devices`, logger),
    devicesTopic: "devices-topic",
    rowContext: { tenantId: options.tenantId ?? "tenant-1", organizationId: null, organizationTag: "organization" },
    connectionsStream: DEVICE_STATE_STREAMS.connections,
    inventoryStream: DEVICE_STATE_STREAMS.inventory,
    presence: names,
    systemConnection: () => options.systemConnection ?? null,
    defaultHeartbeatSeconds: options.heartbeatSeconds ?? 60,
    missedHeartbeats: 3,
    identity: options.identity ?? { trustConnectionNames: false },
    clock: options.clock,
    logger,
  });
  let committed: Record<string, number> = Object.fromEntries(processor.streams.map((stream) => [stream, 0]));
  let sources: OrderedStreamSource[] = [];

  const takeover = async (): Promise<void> => {
    await Promise.all(sources.map((source) => source.stop()));
    await processor.release();
    await processor.takeover({ checkpoint: null, states: new Map(), connection: options.connection });
    sources = processor.streams.map(
      (stream) =>
        new OrderedStreamSource({
          connection: options.connection,
          stream,
          consumerName: `${options.group}-${options.name ?? "harness"}`,
          logger,
          clock: options.clock,
          healthCheckMs: 600_000,
        }),
    );
    for (const source of sources) await source.startAfter(committed[source.stream] ?? 0);
  };
  await takeover();

  const manager = await jetstreamManager(options.connection);

  return {
    processor,
    signalsPublished: () => processor.stats().presenceSignalsPublished ?? 0,
    committedPositions: () => committed,
    async batch(batchOptions = {}) {
      const messages: SourceMessage[] = [];
      for (const source of sources) {
        const last = (await manager.streams.info(source.stream)).state.last_seq;
        let read = committed[source.stream] ?? 0;
        while (read < last) {
          await waitFor(`${source.stream} read up to ${last}`, () => source.buffered > 0);
          const taken = source.take(1_000);
          messages.push(...taken);
          read = taken[taken.length - 1]?.streamSequence ?? read;
        }
      }
      const afterBatch = { ...committed };
      for (const message of messages)
        afterBatch[message.stream] = Math.max(afterBatch[message.stream] ?? 0, message.streamSequence);
      const prepared = await processor.prepare(messages, { committed, afterBatch });
      const rows = prepared.records.map((record) => MachinePinotMessage.parse(JSON.parse(String(record.value))));
      if (batchOptions.commit === false) {
        await takeover();
        return rows;
      }
      prepared.committed();
      committed = afterBatch;
      for (const source of sources) source.ackTaken(committed[source.stream] ?? 0);
      return rows;
    },
    async stop() {
      await Promise.all(sources.map((source) => source.stop()));
      await processor.release();
    },
  };
}
