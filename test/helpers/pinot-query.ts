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
