/**
 * Partitioned streams (DESIGN, "Partitioned telemetry"): the server stores each message of a
 * machine-event stream under a subject that ends with the stream's partition count and the
 * machine's partition, `machine.<id>.<type>.<partitions>.<partition>`, by a stream subject
 * transform (nats-server 2.10+). Publishers keep publishing `machine.<id>.<type>`: the transform is
 * the server's, so the machine token is still the one the publisher was allowed to publish on.
 * The partition is a hash of the machine id alone, so every event of a machine lands in one
 * partition, in stream order. The count is in the stored subject so that two layouts never mix.
 */

/** The stream partitioned when dev-setup is asked to (the one that carries most events). */
export const PARTITIONED_STREAM = "TELEMETRY";

/**
 * What dev-setup gives TELEMETRY unless told otherwise (`--telemetry-partitions`): none. Partitions
 * pay only with more than one bridge instance, and partitioning is one way for a stream (dev-setup
 * never unpartitions one, and changing the count is a migration): it is asked for, not a surprise.
 */
export const DEFAULT_TELEMETRY_PARTITIONS = 0;

/** The most partitions dev-setup makes: each is a shard, a lease, a consumer and a state topic. */
export const MAX_PARTITIONS = 64;

/** nats-server's StreamConfig `subject_transform`. */
export interface SubjectTransform {
  readonly src: string;
  readonly dest: string;
}

/** The published subjects a machine-event stream's transform applies to: `machine.<id>.<type>`. */
const UNPARTITIONED_SUBJECTS = "machine.*.*";

/** The transform that stores a machine's events in one of `partitions` partitions (2 or more). */
export function partitionTransform(partitions: number): SubjectTransform {
  return {
    src: UNPARTITIONED_SUBJECTS,
    dest: `machine.{{wildcard(1)}}.{{wildcard(2)}}.${partitions}.{{partition(${partitions},1)}}`,
  };
}

/** Our transforms, as the server gives them back (it keeps the text as written; spaces tolerated). */
const OUR_DEST =
  /^machine\.\{\{\s*wildcard\(1\)\s*\}\}\.\{\{\s*wildcard\(2\)\s*\}\}\.(\d+)\.\{\{\s*partition\(\s*(\d+)\s*,\s*1\s*\)\s*\}\}$/;

/**
 * A stream's partition count, read from its transform: 0 when it has none (unpartitioned), null
 * when it has one that is not ours (the bridge cannot know what its stored subjects mean).
 */
export function partitionsOfTransform(
  transform: { readonly src?: string; readonly dest?: string } | undefined | null,
): number | null {
  if (!transform || (!transform.src && !transform.dest)) return 0;
  if (transform.src !== UNPARTITIONED_SUBJECTS) return null;
  const match = OUR_DEST.exec(transform.dest ?? "");
  if (!match || match[1] !== match[2]) return null;
  const partitions = Number(match[1]);
  return partitions >= 2 ? partitions : null;
}

/** What one reader of a stream reads: the messages stored before any partitioning, or one partition. */
export function partitionFilter(partitions: number, partition: number): string {
  return `${UNPARTITIONED_SUBJECTS}.${partitions}.${partition}`;
}

/** The messages a stream stored unpartitioned (before its transform was set): still `machine.<id>.<type>`. */
export const UNPARTITIONED_FILTER = UNPARTITIONED_SUBJECTS;

/**
 * The subject a message was published on, from the one a partitioned stream stored it under; a
 * subject of another shape is returned as it is (the bridge then says it knows no such event).
 */
export function publishedSubjectOf(storedSubject: string, partitions: number): string {
  const tokens = storedSubject.split(".");
  if (tokens.length !== 5 || tokens[0] !== "machine" || tokens[3] !== String(partitions)) return storedSubject;
  return `${tokens[0]}.${tokens[1]}.${tokens[2]}`;
}
