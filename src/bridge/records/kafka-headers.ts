import { BridgeHeader } from "../../contracts/index.ts";
import type { SourceMessage } from "./source-message.ts";

/**
 * Every header the event carried, every value of it (nats-kafka copies only the first), plus
 * where it came from: `nats-stream`, `nats-stream-seq`, `nats-subject`. Extra entries (a dead
 * letter's reason, the OpenFrame type id) come last.
 */
export function bridgedHeaders(message: SourceMessage, extra: ReadonlyArray<readonly [string, string]> = []): Map<Buffer, Buffer> {
  const headers = new Map<Buffer, Buffer>();
  const add = (name: string, value: string): void => void headers.set(Buffer.from(name), Buffer.from(value));
  for (const [name, value] of message.headers) add(name, value);
  add(BridgeHeader.stream, message.stream);
  add(BridgeHeader.streamSequence, String(message.streamSequence));
  add(BridgeHeader.subject, message.subject);
  for (const [name, value] of extra) add(name, value);
  return headers;
}
