import type { MsgHdrs } from "@nats-io/transport-node";

/** A message's headers, every value in order (a name may repeat), or why they cannot be read. */
export type ReadHeaders =
  | { readonly kind: "read"; readonly entries: Array<[string, string]> }
  | { readonly kind: "unreadable"; readonly reason: string };

/**
 * Reads a received message's headers without letting the NATS client's refusal escape. nats.js
 * decodes them when they are first read and throws on a name it refuses (a space, a colon, a
 * control character), which any client speaking the raw protocol can send and nats-server stores:
 * thrown inside a read loop, one such message stopped the loop for good.
 */
export function readHeaders(message: { readonly headers?: MsgHdrs | undefined }): ReadHeaders {
  try {
    const entries: Array<[string, string]> = [];
    // One pass over the client's entries: keys() then values(name) searches every name for each name.
    const headers = message.headers;
    if (headers) for (const [name, values] of headers) for (const value of values) entries.push([name, value]);
    return { kind: "read", entries };
  } catch (error) {
    return { kind: "unreadable", reason: error instanceof Error ? error.message : String(error) };
  }
}
