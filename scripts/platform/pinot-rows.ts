import { PlatformError } from "./platform-error.ts";
import type { ServiceProcess } from "./service-process.ts";

interface PinotAnswer {
  readonly resultTable?: { readonly dataSchema: { readonly columnNames: string[] }; readonly rows: unknown[][] };
  readonly exceptions?: ReadonlyArray<{ readonly message: string }>;
}

/** The rows a query answers, as objects; null while Pinot cannot answer it yet (no table, no segment). */
export async function queryRows(brokerUrl: string, sql: string): Promise<Array<Record<string, unknown>> | null> {
  try {
    const response = await fetch(`${brokerUrl}/query/sql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql }),
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) return null;
    const answer = (await response.json()) as PinotAnswer;
    if ((answer.exceptions?.length ?? 0) > 0 || !answer.resultTable) return null;
    const { columnNames } = answer.resultTable.dataSchema;
    return answer.resultTable.rows.map((row) =>
      Object.fromEntries(columnNames.map((name, index) => [name, row[index]])),
    );
  } catch {
    return null;
  }
}

/**
 * Waits until `machineId` has a row in Pinot's devices table (what the bridge wrote to devices-topic,
 * consumed and queryable), and returns it as one line. Fails when a program of the platform ends
 * meanwhile, or after `timeoutMs`.
 */
export async function firstDeviceRow(
  brokerUrl: string,
  machineId: string,
  services: readonly ServiceProcess[],
  timeoutMs: number,
): Promise<string> {
  const sql = `SELECT machineId, status, osType, tagKeyValues FROM devices WHERE machineId = '${machineId}' LIMIT 1`;
  const until = performance.now() + timeoutMs;
  for (;;) {
    const ended = services.find((service) => service.exitStatus !== null);
    if (ended) throw new PlatformError(`${ended.name} ended while the platform started; see ${ended.logFile}`);
    const [row] = (await queryRows(brokerUrl, sql)) ?? [];
    if (row) {
      const tags = Array.isArray(row.tagKeyValues) ? row.tagKeyValues.join(",") : String(row.tagKeyValues);
      return `${String(row.machineId)} ${String(row.status)} ${String(row.osType)} ${tags}`;
    }
    if (performance.now() > until)
      throw new PlatformError(
        `no row for ${machineId} in Pinot's devices table after ${Math.round(timeoutMs / 1000)} s; see the logs of the bridge, the agent and Pinot`,
      );
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
