import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { PLATFORM_STREAMS, STREAM_DUPLICATE_WINDOW_MS } from "../../src/contracts/index.ts";

/** Creates the docs/DESIGN.md streams on a test server (what `edge-agent dev-setup` does). */
export async function createPlatformStreams(connection: NatsConnection): Promise<void> {
  const manager = await jetstreamManager(connection);
  for (const stream of PLATFORM_STREAMS) {
    await manager.streams.add({
      name: stream.name,
      subjects: [...stream.subjects],
      storage: "file",
      duplicate_window: STREAM_DUPLICATE_WINDOW_MS * 1_000_000,
    });
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
