import { BridgeHeader } from "../../contracts/index.ts";
import type { SourceMessage } from "./source-message.ts";

/** The bridge's own header names (BridgeHeader), lower-cased: a publisher's header by one of them is dropped. */
const RESERVED_NAMES = new Set(Object.values(BridgeHeader).map((name) => name.toLowerCase()));

export function isReservedHeader(name: string): boolean {
  return RESERVED_NAMES.has(name.toLowerCase());
}

/**
 * Every header the event carried, every value of it (nats-kafka copies only the first), plus
 * where it came from: `nats-stream`, `nats-stream-seq`, `nats-subject`. Extra entries (a dead
 * letter's reason, the OpenFrame type id) come last. The bridge's own names are reserved: a
 * publisher's `nats-subject` or `__TypeId__` (which picks the class a Java reader builds) is never
 * copied, so each of them on a record is the bridge's, once.
 */
export function bridgedHeaders(
  message: SourceMessage,
  extra: ReadonlyArray<readonly [string, string]> = [],
): Map<Buffer, Buffer> {
  const headers = new Map<Buffer, Buffer>();
  // Names are few and repeat on every record: their encoding is cached (and only read, never
  // changed). A name this record already has gets a copy, or the Map would fold the two into one.
  const add = (name: string, value: string): void => {
    const key = encodedName(name);
    headers.set(headers.has(key) ? Buffer.from(key) : key, Buffer.from(value));
  };
  for (const [name, value] of message.headers) if (!isReservedHeader(name)) add(name, value);
  add(BridgeHeader.stream, message.stream);
  add(BridgeHeader.streamSequence, String(message.streamSequence));
  add(BridgeHeader.subject, message.subject);
  for (const [name, value] of extra) add(name, value);
  return headers;
}

const NAME_CACHE_LIMIT = 256;
const encodedNames = new Map<string, Buffer>();

function encodedName(name: string): Buffer {
  let encoded = encodedNames.get(name);
  if (!encoded) {
    encoded = Buffer.from(name);
    // Header names come from devices too: bounded, so odd names cannot grow it without end.
    if (encodedNames.size < NAME_CACHE_LIMIT) encodedNames.set(name, encoded);
  }
  return encoded;
}
