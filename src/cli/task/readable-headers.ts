import type { JsMsg } from "@nats-io/jetstream";
import { readHeaders } from "../../transport/index.ts";

/**
 * A header's values; none when the NATS client cannot decode the message's headers (it throws on a
 * name it refuses, which a machine speaking the raw protocol can send): the message is then not
 * attributable, and skipped like any other, instead of ending the command.
 */
export function readableHeaderValues(message: JsMsg, name: string): string[] {
  const headers = readHeaders(message);
  if (headers.kind === "unreadable") return [];
  return headers.entries.filter(([entryName]) => entryName === name).map(([, value]) => value);
}
