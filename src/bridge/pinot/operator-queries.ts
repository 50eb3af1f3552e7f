/**
 * SQL an operator runs on the Pinot broker (`POST {broker}/query/sql`) against the tables
 * `pinot-setup` creates. Pinot 0.11's single-stage engine: no joins, no subqueries, so a question
 * that needs a value from elsewhere (a tag, the revision pushed) takes it as a parameter. The
 * README shows each with its output on the end-to-end test's fleet; that test runs every one.
 */

/** Quotes a value as a Pinot SQL string literal. */
const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;

/** Devices offline now, by osType: `devices` holds each machine's latest row (upsert on machineId). */
export const offlineDevicesByOsType = `SELECT osType, COUNT(*) AS offline
FROM devices
WHERE status = 'OFFLINE'
GROUP BY osType
ORDER BY COUNT(*) DESC
LIMIT 100`;

/** Devices carrying a tag, as `key:value` (e.g. `site:lab`); `tags = 'site'` asks for the key alone. */
export const devicesWithTag = (tagKeyValue: string): string => `SELECT machineId, status, organizationId, osType
FROM devices
WHERE tagKeyValues = ${literal(tagKeyValue)}
ORDER BY machineId
LIMIT 1000`;

/** CPU p95 per device over the last hour (`timestampMs` is the sample's own time), busiest first. */
export const cpuP95PerDeviceLastHour = `SELECT machineId, PERCENTILE(cpuTotalPercent, 95) AS cpuP95, COUNT(*) AS samples
FROM machine_telemetry
WHERE timestampMs >= ago('PT1H')
GROUP BY machineId
ORDER BY PERCENTILE(cpuTotalPercent, 95) DESC, machineId
LIMIT 1000`;

/**
 * Tool installations that failed today (UTC): the device's tool-installation.status events with state
 * FAILED. The time column is the bridge's ISO 8601 string, so today is a string range from today's
 * midnight, which Pinot computes once per query. The bound must be in the column's whole format
 * (`yyyy-MM-ddTHH:mm:ss.SSSZ`): the broker parses it to prune segments, and a bare `yyyy-MM-dd`
 * fails the query (HTTP 500, "Invalid format ... is too short") in Pinot 0.11.
 */
export const failedToolInstallationsToday = `SELECT machineId, JSON_EXTRACT_SCALAR(body, '$.toolType', 'STRING', '') AS toolType,
  JSON_EXTRACT_SCALAR(body, '$.toolAgentId', 'STRING', '') AS toolAgentId,
  JSON_EXTRACT_SCALAR(body, '$.error', 'STRING', '') AS error, "timestamp"
FROM machine_events
WHERE eventType = 'tool-installation.status'
  AND JSON_EXTRACT_SCALAR(body, '$.state', 'STRING', '') = 'FAILED'
  AND "timestamp" >= ToDateTime(now(), 'yyyy-MM-dd''T''00:00:00.000''Z''')
ORDER BY "timestamp" DESC
LIMIT 1000`;

/**
 * A configuration revision not yet applied fleet-wide: the machines whose highest APPLIED revision
 * is below `revision` (the one pushed), with the last revision they reported and, for those that
 * turned it down, the newest REJECTED / ROLLED_BACK. A machine that never reported a config.status
 * has no row here; compare with `devices` for those.
 */
export const configRevisionNotApplied = (revision: number): string => {
  if (!Number.isSafeInteger(revision) || revision < 0)
    throw new Error(`a revision is a non-negative integer, not ${revision}`);
  const rev = "JSON_EXTRACT_SCALAR(body, '$.revision', 'LONG', -1)";
  const status = "JSON_EXTRACT_SCALAR(body, '$.status', 'STRING', '')";
  const applied = `MAX(CASE WHEN ${status} = 'APPLIED' THEN ${rev} ELSE -1 END)`;
  return `SELECT machineId, ${applied} AS appliedRevision, MAX(${rev}) AS lastReportedRevision,
  MAX(CASE WHEN ${status} <> 'APPLIED' THEN ${rev} ELSE -1 END) AS lastRefusedRevision
FROM machine_events
WHERE eventType = 'config.status'
GROUP BY machineId
HAVING ${applied} < ${revision}
ORDER BY machineId
LIMIT 1000`;
};

/**
 * Which machines did not succeed at task `taskId`, and why: each machine's end (one per machine and
 * task: the agent reports it once, and `task_results` drops a copy by its eventId), with the exit
 * code or signal, the agent's reason, and the last lines the task wrote on stderr.
 */
export const machinesThatFailedTask = (
  taskId: string,
): string => `SELECT machineId, status, exitCode, signal, error, lastStderr, durationMs, finishedAt
FROM task_results
WHERE taskId = ${literal(taskId)} AND status <> 'SUCCEEDED'
ORDER BY machineId
LIMIT 1000`;

/** How task `taskId` ended across the fleet: machines per status. */
export const taskOutcomes = (taskId: string): string => `SELECT status, COUNT(*) AS machines
FROM task_results
WHERE taskId = ${literal(taskId)}
GROUP BY status
ORDER BY COUNT(*) DESC
LIMIT 10`;
