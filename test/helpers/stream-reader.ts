import { JetStreamApiError, jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

export interface StoredMessage {
  readonly subject: string;
  readonly streamSequence: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

/** Every message a stream holds now, oldest first, with headers and parsed JSON bodies. */
export async function readStream(connection: NatsConnection, stream: string): Promise<StoredMessage[]> {
  const manager = await jetstreamManager(connection);
  let info: StreamInfo;
  try {
    info = await manager.streams.info(stream);
  } catch (error) {
    if (error instanceof JetStreamApiError) return [];
    throw error;
  }
  const messages: StoredMessage[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const message = await manager.streams.getMessage(stream, { seq }).catch(() => null);
    if (!message) continue;
    const headers: Record<string, string> = {};
    if (message.header) for (const [key, values] of message.header) headers[key] = values[0] ?? "";
    messages.push({ subject: message.subject, streamSequence: message.seq, headers, body: message.json() });
  }
  return messages;
}
