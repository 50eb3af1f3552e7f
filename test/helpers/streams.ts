import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { PLATFORM_STREAMS, wantedStreamConfig } from "../../src/contracts/index.ts";

/** Creates the docs/DESIGN.md streams on a test server (what `edge-agent dev-setup` does). */
export async function createPlatformStreams(connection: NatsConnection): Promise<void> {
  const manager = await jetstreamManager(connection);
  const version = connection.info?.version ?? "2.10.0";
  for (const stream of PLATFORM_STREAMS) {
    const { subjects, ...config } = wantedStreamConfig(stream, version);
    await manager.streams.add({ ...config, subjects: [...subjects] });
  }
}

/** Reads every message of a stream with an ordered consumer; returns X-Sequence headers in stream order. */
export async function streamSequences(connection: NatsConnection, stream: string): Promise<number[]> {
  const manager = await jetstreamManager(connection);
  const total = (await manager.streams.info(stream)).state.messages;
  const sequences: number[] = [];
  if (total === 0) return sequences;
  const consumer = await jetstream(connection).consumers.get(stream);
  const messages = await consumer.consume({ max_messages: 1_000 });
  for await (const message of messages) {
    sequences.push(Number(message.headers?.get("X-Sequence")));
    if (message.info.pending === 0) break;
  }
  await messages.close();
  return sequences;
}
