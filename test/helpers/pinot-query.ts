import { readTopic } from "./kafka-topic-reader.ts";

export interface PinotResult {
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<unknown>>;
}

/** One SQL query against the broker; Pinot reports most failures inside a 200 answer, so those throw too. */
export async function querySql(brokerUrl: string, sql: string): Promise<PinotResult> {
  const response = await fetch(`${brokerUrl}/query/sql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ sql }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let answer: {
    resultTable?: { dataSchema: { columnNames: string[] }; rows: unknown[][] };
    exceptions?: Array<{ errorCode: number; message: string }>;
  };
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    throw new Error(`pinot answered ${sql} with ${response.status} ${text.slice(0, 500)}`);
  }
  if (!response.ok || (answer.exceptions?.length ?? 0) > 0 || !answer.resultTable) {
    throw new Error(
      `pinot refused ${sql}: ${response.status} ${JSON.stringify(answer.exceptions ?? answer).slice(0, 500)}`,
    );
  }
  return { columns: answer.resultTable.dataSchema.columnNames, rows: answer.resultTable.rows };
}

/** The rows of a result as objects keyed by column name. */
export function resultRecords(result: PinotResult): Array<Record<string, unknown>> {
  return result.rows.map((row) => Object.fromEntries(result.columns.map((column, index) => [column, row[index]])));
}

/** The first cell of the first row as a number: what a COUNT(*) answers. */
export async function queryCount(brokerUrl: string, sql: string): Promise<number> {
  return Number((await querySql(brokerUrl, sql)).rows[0]?.[0] ?? 0);
}

/** The offset each partition's consuming segment of a REALTIME table reads next (the controller's view). */
export async function pinotNextOffsets(controllerUrl: string, table: string): Promise<Map<number, bigint>> {
  const response = await fetch(`${controllerUrl}/tables/${table}/consumingSegmentsInfo`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`pinot's controller answered ${response.status} for ${table}'s consuming segments`);
  const info = (await response.json()) as {
    _segmentToConsumingInfoMap?: Record<string, Array<{ partitionToOffsetMap?: Record<string, string> }>>;
  };
  const next = new Map<number, bigint>();
  for (const replicas of Object.values(info._segmentToConsumingInfoMap ?? {}))
    for (const replica of replicas)
      for (const [partition, offset] of Object.entries(replica.partitionToOffsetMap ?? {})) {
        const value = BigInt(offset);
        if ((next.get(Number(partition)) ?? -1n) < value) next.set(Number(partition), value);
      }
  return next;
}

/**
 * Whether a REALTIME table has consumed every record committed to its topic: in each partition,
 * Pinot reads next past the last committed record. (Pinot 0.11 stops after the last record it
 * took, short of the partition's end by the commit markers and aborted records behind it: the end
 * offset itself is never reached.) Once the bridge has nothing left to write, this is the moment
 * no more rows can come: what Pinot holds then is final.
 */
export async function pinotConsumedAll(
  controllerUrl: string,
  table: string,
  bootstrap: string,
  topic: string,
): Promise<boolean> {
  const lastCommitted = new Map<number, bigint>();
  for (const record of await readTopic(bootstrap, topic)) lastCommitted.set(record.partition, record.offset);
  const next = await pinotNextOffsets(controllerUrl, table);
  return [...lastCommitted].every(([partition, last]) => (next.get(partition) ?? -1n) > last);
}
