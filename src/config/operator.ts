import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { AGENT_CONFIG_BUCKET, CONFIG_DEFAULTS_KEY, configKeyForMachine } from "../contracts/index.ts";
import { isPlainObject } from "./merge.ts";
import { signDocument } from "./signature.ts";
import { validateDocument } from "./validate.ts";

/**
 * Operator commands for development and small sites: read and write the `agent-config` keys.
 * No `machineId`: the fleet-wide `defaults` key.
 */
export interface ConfigTarget {
  readonly machineId?: string;
}

const keyOf = (target: ConfigTarget): string => (target.machineId ? configKeyForMachine(target.machineId) : CONFIG_DEFAULTS_KEY);

async function bucket(connection: NatsConnection) {
  // Operators may create it: `create` opens an existing bucket as it is.
  return new Kvm(connection).create(AGENT_CONFIG_BUCKET, { history: 10 });
}

export async function configGet(connection: NatsConnection, target: ConfigTarget): Promise<{ key: string; revision: number; document: unknown } | null> {
  const kv = await bucket(connection);
  const entry = await kv.get(keyOf(target));
  if (!entry || entry.operation !== "PUT") return null;
  return { key: entry.key, revision: entry.revision, document: entry.json<unknown>() };
}

/** A value as typed on a command line: JSON when it parses (`2`, `true`, `{"a":1}`), else a string. */
export function parseCliValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export async function configPush(connection: NatsConnection, target: ConfigTarget, document: unknown, options: { signingSeed?: Uint8Array } = {}): Promise<{ key: string; revision: number }> {
  const key = keyOf(target);
  // Refuse here what every agent would refuse: better one error for the operator than a fleet of REJECTED.
  const valid = validateDocument(document, key, undefined);
  const stored = options.signingSeed ? signDocument(valid, options.signingSeed) : valid;
  const kv = await bucket(connection);
  const revision = await kv.put(key, JSON.stringify(stored));
  return { key, revision };
}

/** Sets one setting (a dotted path such as `outbox.maxBytes`) in the key's document. */
export async function configSet(connection: NatsConnection, target: ConfigTarget, path: string, rawValue: string, options: { signingSeed?: Uint8Array } = {}): Promise<{ key: string; revision: number }> {
  const current = await configGet(connection, target);
  const document: Record<string, unknown> = isPlainObject(current?.document) ? { ...current.document } : {};
  delete document.signature;
  const parts = path.split(".");
  let node = document;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = parseCliValue(rawValue);
  return configPush(connection, target, document, options);
}
