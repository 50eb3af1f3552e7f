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
  for (const [name, value] of message.headers) {
    const known = knownName(name);
    if (!known.reserved) addHeader(headers, known.encoded, value);
  }
  addHeader(headers, knownName(BridgeHeader.stream).encoded, message.stream);
  addHeader(headers, knownName(BridgeHeader.streamSequence).encoded, String(message.streamSequence));
  addHeader(headers, knownName(BridgeHeader.subject).encoded, message.subject);
  for (const [name, value] of extra) addHeader(headers, knownName(name).encoded, value);
  return headers;
}

/**
 * Names are few and repeat on every record: their encoding is cached (and only read, never
 * changed). A name this record already has gets a copy, or the Map would fold the two into one.
 */
function addHeader(headers: Map<Buffer, Buffer>, name: Buffer, value: string): void {
  headers.set(headers.has(name) ? Buffer.from(name) : name, Buffer.from(value));
}

/** A header name as records carry it, and whether it is one of the bridge's own. */
interface KnownName {
  readonly encoded: Buffer;
  readonly reserved: boolean;
}

const NAME_CACHE_LIMIT = 256;
const knownNames = new Map<string, KnownName>();

/** Cached: every event carries the same dozen names, and lower-casing each on every event showed in profiles. */
function knownName(name: string): KnownName {
  let known = knownNames.get(name);
  if (!known) {
    known = { encoded: Buffer.from(name), reserved: isReservedHeader(name) };
    // Header names come from devices too: bounded, so odd names cannot grow it without end.
    if (knownNames.size < NAME_CACHE_LIMIT) knownNames.set(name, known);
  }
  return known;
}
