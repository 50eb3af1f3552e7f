import type { StreamConfig } from "@nats-io/jetstream";
import { partitionsOfTransform } from "../contracts/index.ts";
import { patternCovers, patternsOverlap } from "./subject-pattern.ts";

/**
 * What `dev-setup` makes a server hold, and how it treats streams already there. The server may be
 * one another platform set up (OpenFrame's management service makes 7 of the same streams, some
 * with wider subjects or other limits): setup only ever adds what the agent needs.
 *
 * - A missing stream is created as wanted (minus any subject another stream already captures).
 * - An existing stream keeps every subject it has; a wanted subject it does not cover is added.
 * - Limits are never lowered: each ends at the more permissive of the two (unlimited wins).
 * - `allow_direct` and `allow_msg_ttl` are switched on when wanted; never off.
 * - A wanted partitioning (`subject_transform`, contracts/partitions.ts) is set on a stream that has
 *   none: what it stored before keeps its subjects, and the bridge bridges that first. A stream
 *   partitioned already keeps its count (changing it is a migration of its own, docs/bridge.md),
 *   and a stream is never unpartitioned.
 * - Anything else wanted that differs (storage, retention, replicas, ...) is left as the stream
 *   has it, and said.
 */
export type WantedStream = Pick<StreamConfig, "name" | "subjects"> & Partial<StreamConfig>;

export interface StreamPlan {
  readonly name: string;
  readonly action: "create" | "update" | "keep";
  /** create: the whole configuration; update: only the fields that change (merged by the client). */
  readonly config: Partial<StreamConfig>;
  /** What is added or raised, one line each, for the operator. */
  readonly changes: readonly string[];
  /** What was wanted and is left as the server has it, with why. */
  readonly notes: readonly string[];
}

/** Fields where a bigger number allows more, and 0 or less means unlimited. */
const LIMITS = ["max_age", "max_bytes", "max_msgs", "max_msg_size", "max_msgs_per_subject", "max_consumers"] as const;
type LimitField = (typeof LIMITS)[number];
/** JetStream's duplicate window when a stream says 0: two minutes. */
const DEFAULT_DUPLICATE_WINDOW_NS = 120_000_000_000;
const HANDLED = new Set<string>([
  "name",
  "subjects",
  "duplicate_window",
  "allow_direct",
  "allow_msg_ttl",
  "subject_transform",
  ...LIMITS,
]);

const isUnlimited = (value: number | undefined): boolean => value === undefined || value <= 0;

/** The more permissive of two limits; `undefined` when the existing one already is. */
function raisedLimit(existing: number | undefined, wanted: number | undefined): number | undefined {
  if (wanted === undefined || isUnlimited(existing)) return undefined;
  if (isUnlimited(wanted)) return wanted;
  return wanted > (existing as number) ? wanted : undefined;
}

const describe = (value: unknown): string => (value === undefined ? "unset" : JSON.stringify(value));

/** The wanted subjects another stream already captures (JetStream refuses overlaps across streams). */
function takenElsewhere(
  name: string,
  subjects: readonly string[],
  existing: readonly StreamConfig[],
): Map<string, string> {
  const taken = new Map<string, string>();
  for (const subject of subjects) {
    const other = existing.find(
      (stream) => stream.name !== name && (stream.subjects ?? []).some((held) => patternsOverlap(held, subject)),
    );
    if (other) taken.set(subject, other.name);
  }
  return taken;
}

function planCreate(wanted: WantedStream, existing: readonly StreamConfig[]): StreamPlan {
  const taken = takenElsewhere(wanted.name, wanted.subjects, existing);
  const subjects = wanted.subjects.filter((subject) => !taken.has(subject));
  const notes = [...taken].map(
    ([subject, other]) => `subject ${subject} not added: stream ${other} already captures it`,
  );
  if (subjects.length === 0)
    return { name: wanted.name, action: "keep", config: {}, changes: [], notes: [...notes, "not created"] };
  const partitions = partitionsOfTransform(wanted.subject_transform) ?? 0;
  return {
    name: wanted.name,
    action: "create",
    config: { ...wanted, subjects },
    changes: [
      `created with subjects ${subjects.join(", ")}`,
      ...(partitions > 0 ? [`partitioned into ${partitions}`] : []),
    ],
    notes,
  };
}

function planUpdate(wanted: WantedStream, current: StreamConfig, existing: readonly StreamConfig[]): StreamPlan {
  const config: Partial<StreamConfig> = {};
  const changes: string[] = [];
  const notes: string[] = [];

  const held = current.subjects ?? [];
  const missing = wanted.subjects.filter((subject) => !held.some((have) => patternCovers(have, subject)));
  const taken = takenElsewhere(wanted.name, missing, existing);
  for (const [subject, other] of taken) notes.push(`subject ${subject} not added: stream ${other} already captures it`);
  const added = missing.filter((subject) => !taken.has(subject));
  if (added.length > 0) {
    config.subjects = [...held, ...added];
    changes.push(`subjects added: ${added.join(", ")} (kept: ${held.join(", ") || "none"})`);
  }

  for (const field of LIMITS) {
    const raised = raisedLimit(current[field as LimitField], wanted[field as LimitField]);
    if (raised === undefined) continue;
    config[field as LimitField] = raised;
    changes.push(`${field} raised from ${describe(current[field])} to ${isUnlimited(raised) ? "unlimited" : raised}`);
  }

  if (wanted.duplicate_window !== undefined) {
    const have = current.duplicate_window || DEFAULT_DUPLICATE_WINDOW_NS;
    const maxAge = config.max_age ?? current.max_age;
    // JetStream refuses a duplicate window longer than the stream keeps its messages.
    const ceiling = isUnlimited(maxAge) ? Number.POSITIVE_INFINITY : (maxAge as number);
    const target = Math.min(wanted.duplicate_window, ceiling);
    if (target > have) {
      config.duplicate_window = target;
      changes.push(`duplicate_window raised from ${have / 1e9} s to ${target / 1e9} s`);
    }
    if (wanted.duplicate_window > ceiling)
      notes.push(
        `duplicate_window kept within max_age (${ceiling / 1e9} s), under the ${wanted.duplicate_window / 1e9} s wanted`,
      );
  }

  for (const flag of ["allow_direct", "allow_msg_ttl"] as const) {
    if (wanted[flag] === true && current[flag] !== true) {
      config[flag] = true;
      changes.push(`${flag} switched on`);
    }
  }

  planPartitions(wanted, current, config, changes, notes);

  for (const [field, value] of Object.entries(wanted)) {
    if (HANDLED.has(field)) continue;
    const have = (current as Record<string, unknown>)[field];
    if (JSON.stringify(have) !== JSON.stringify(value))
      notes.push(`${field} is ${describe(have)}, ${describe(value)} wanted: left as it is`);
  }

  return { name: wanted.name, action: changes.length > 0 ? "update" : "keep", config, changes, notes };
}

/** A partitioning is only ever added to a stream that has none (see the list at the top). */
function planPartitions(
  wanted: WantedStream,
  current: StreamConfig,
  config: Partial<StreamConfig>,
  changes: string[],
  notes: string[],
): void {
  const want = partitionsOfTransform(wanted.subject_transform) ?? 0;
  const have = partitionsOfTransform(current.subject_transform);
  if (have === want) return;
  if (have === 0) {
    config.subject_transform = wanted.subject_transform;
    changes.push(
      `partitioned into ${want} (messages stored before keep their subjects; the bridge bridges them before any partition)`,
    );
    return;
  }
  if (have === null)
    notes.push(
      `its subject_transform ${JSON.stringify(current.subject_transform)} is not a partitioning of ours: left as it is (edge-bridge refuses to bridge it)`,
    );
  else if (want === 0) notes.push(`partitioned into ${have}: left as it is (dev-setup never unpartitions a stream)`);
  else
    notes.push(
      `partitioned into ${have}, ${want} wanted: left as it is (changing the count is a migration, docs/bridge.md "Partitioned telemetry")`,
    );
}

/** What to do to each wanted stream, given every stream the server already has. */
export function planStreams(wanted: readonly WantedStream[], existing: readonly StreamConfig[]): StreamPlan[] {
  return wanted.map((stream) => {
    const current = existing.find((candidate) => candidate.name === stream.name);
    return current ? planUpdate(stream, current, existing) : planCreate(stream, existing);
  });
}
