import { DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { EventHeader, PLATFORM_STREAMS } from "../../src/contracts/index.ts";
import type { StoredEvent } from "./ledger.ts";

/**
 * Every outbox event the platform's streams hold (those carrying `X-Sequence`), read with an
 * ordered consumer per stream: tens of thousands in a second or two, bounded by `deadlineMs`.
 */
export async function storedEvents(
  connection: NatsConnection,
  options: { deadlineMs?: number } = {},
): Promise<StoredEvent[]> {
  const manager = await jetstreamManager(connection);
  const client = jetstream(connection);
  const until = Date.now() + (options.deadlineMs ?? 60_000);
  const events: StoredEvent[] = [];
  for (const stream of PLATFORM_STREAMS) {
    let total: number;
    try {
      total = (await manager.streams.info(stream.name)).state.messages;
    } catch (error) {
      if (error instanceof JetStreamApiError) continue;
      throw error;
    }
    if (total === 0) continue;
    const consumer = await client.consumers.get(stream.name, { deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume({ max_messages: 1_000 });
    let seen = 0;
    for await (const message of messages) {
      seen += 1;
      const sequence = message.headers?.get(EventHeader.sequence);
      const eventId = message.headers?.get(EventHeader.eventId);
      const machineId = message.headers?.get(EventHeader.machineId);
      if (sequence && eventId && machineId) events.push({ machineId, eventId, sequence: Number(sequence) });
      if (message.info.pending === 0 || seen >= total) break;
      if (Date.now() > until) throw new Error(`reading ${stream.name} took longer than the deadline`);
    }
    await messages.close();
  }
  return events;
}
