import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { AGENT_CONFIG_BUCKET, CONFIG_DEFAULTS_KEY, configKeyForMachine } from "../contracts/index.ts";
import { parseTags, SettingsError } from "../settings-kit/index.ts";
import { kvScope, signCommand } from "../trust/index.ts";
import { isPlainObject } from "./merge.ts";
import { settingPathProblem } from "./setting-paths.ts";
import { ConfigRejectedError, validateDocument, withoutClaims } from "./validate.ts";

/**
 * Operator commands for development and small sites: read and write the `agent-config` keys.
 * No `machineId`: the fleet-wide `defaults` key.
 */
export interface ConfigTarget {
  readonly machineId?: string;
}

const keyOf = (target: ConfigTarget): string =>
  target.machineId ? configKeyForMachine(target.machineId) : CONFIG_DEFAULTS_KEY;

async function bucket(connection: NatsConnection) {
  // Operators may create it: `create` opens an existing bucket as it is.
  return new Kvm(connection).create(AGENT_CONFIG_BUCKET, { history: 10 });
}

export async function configGet(
  connection: NatsConnection,
  target: ConfigTarget,
): Promise<{ key: string; revision: number; document: unknown } | null> {
  const kv = await bucket(connection);
  const entry = await kv.get(keyOf(target));
  if (entry?.operation !== "PUT") return null;
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

/**
 * The value `config set PATH RAW` means: JSON when it parses, else text; for `tags`, also
 * `k=v[,k=v]` as EDGE_AGENT_TAGS takes it.
 */
export function settingValue(path: string, raw: string): unknown {
  const value = parseCliValue(raw);
  if (path !== "tags" || typeof value !== "string") return value;
  try {
    return parseTags(value.split(","), "tags");
  } catch (error) {
    throw new ConfigRejectedError(
      error instanceof SettingsError
        ? `tags: ${JSON.stringify(value)} must be key=value[,key=value] or a JSON object`
        : (error as Error).message,
      { cause: error },
    );
  }
}

/** `{a: {b: value}}` for the path `a.b`: what `config set a.b value` writes, alone. */
export function documentSetting(path: string, value: unknown): Record<string, unknown> {
  const document: Record<string, unknown> = {};
  const parts = path.split(".");
  let node = document;
  for (const part of parts.slice(0, -1)) {
    const child: Record<string, unknown> = {};
    node[part] = child;
    node = child;
  }
  node[parts[parts.length - 1] as string] = value;
  return document;
}

function assertSettingPath(path: string): void {
  const problem = settingPathProblem(path);
  if (problem !== null) throw new ConfigRejectedError(problem);
}

export interface SigningOptions {
  /** NKey seed of the key agents trust (`configSigningKey`); without it the document goes unsigned. */
  readonly signingSeed?: Uint8Array;
  /** Wall clock for the serial (default Date.now). */
  readonly now?: () => number;
}

/**
 * The next serial for a key: the clock in milliseconds, or one past the serial stored now if that
 * is ahead (a clock behind the last signer's must not make every agent refuse the document).
 */
async function nextSerial(kv: Awaited<ReturnType<typeof bucket>>, key: string, now: () => number): Promise<number> {
  const entry = await kv.get(key);
  let stored = 0;
  if (entry?.operation === "PUT") {
    try {
      const serial = (entry.json<unknown>() as { serial?: unknown } | null)?.serial;
      if (typeof serial === "number" && Number.isSafeInteger(serial)) stored = serial;
    } catch {
      // Not JSON: nothing to be ahead of.
    }
  }
  return Math.max(now(), stored + 1);
}

async function putSigned(
  connection: NatsConnection,
  key: string,
  document: Record<string, unknown>,
  options: SigningOptions,
): Promise<{ key: string; revision: number }> {
  const kv = await bucket(connection);
  const stored = options.signingSeed
    ? signCommand(
        document,
        { scope: kvScope(key), serial: await nextSerial(kv, key, options.now ?? Date.now) },
        options.signingSeed,
      )
    : document;
  const revision = await kv.put(key, JSON.stringify(stored));
  return { key, revision };
}

export async function configPush(
  connection: NatsConnection,
  target: ConfigTarget,
  document: unknown,
  options: SigningOptions = {},
): Promise<{ key: string; revision: number }> {
  const key = keyOf(target);
  // Refuse here what every agent would refuse: better one error for the operator than a fleet of REJECTED.
  return putSigned(connection, key, validateDocument(document, key), options);
}

/**
 * Removes the key's settings. Signed, it puts a tombstone `{deleted: true, scope, serial}` (an
 * agent with signing on refuses a bare DEL); unsigned, it deletes the key.
 */
export async function configDelete(
  connection: NatsConnection,
  target: ConfigTarget,
  options: SigningOptions = {},
): Promise<{ key: string; revision: number }> {
  const key = keyOf(target);
  if (options.signingSeed) return putSigned(connection, key, { deleted: true }, options);
  const kv = await bucket(connection);
  await kv.delete(key);
  return { key, revision: (await kv.get(key))?.revision ?? 0 };
}

/** The key's document as it stands, without its claims (empty when there is none, or a tombstone). */
async function currentDocument(connection: NatsConnection, target: ConfigTarget): Promise<Record<string, unknown>> {
  const current = await configGet(connection, target);
  return isPlainObject(current?.document) && current.document.deleted !== true ? withoutClaims(current.document) : {};
}

/** Sets one setting (a dotted path such as `outbox.maxBytes`) in the key's document. */
export async function configSet(
  connection: NatsConnection,
  target: ConfigTarget,
  path: string,
  rawValue: string,
  options: SigningOptions = {},
): Promise<{ key: string; revision: number }> {
  assertSettingPath(path);
  const value = settingValue(path, rawValue);
  const document = await currentDocument(connection, target);
  const parts = path.split(".");
  let node = document;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
  return configPush(connection, target, document, options);
}

/**
 * Removes one setting from the key's document (the next one down applies again: the defaults
 * key, else the machine's own settings). Null when the document did not set it: nothing is written.
 */
export async function configUnset(
  connection: NatsConnection,
  target: ConfigTarget,
  path: string,
  options: SigningOptions = {},
): Promise<{ key: string; revision: number } | null> {
  assertSettingPath(path);
  const document = await currentDocument(connection, target);
  const parts = path.split(".");
  const parents: Array<{ node: Record<string, unknown>; key: string }> = [];
  let node: unknown = document;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node) || !isPlainObject(node[part])) return null;
    parents.push({ node, key: part });
    node = node[part];
  }
  const last = parts[parts.length - 1] as string;
  if (!isPlainObject(node) || !(last in node)) return null;
  delete node[last];
  // An object left empty says nothing: it goes too.
  for (const { node: parent, key } of parents.reverse()) {
    const child = parent[key];
    if (isPlainObject(child) && Object.keys(child).length === 0) delete parent[key];
  }
  return configPush(connection, target, document, options);
}
