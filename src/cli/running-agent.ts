import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { readStatusFile } from "../agent/index.ts";
import { processAlive } from "../cli-kit/index.ts";
import { MACHINE_ID_FILE } from "../identity/index.ts";
import { readLockHolder } from "../runtime/index.ts";
import type { Settings } from "../settings/index.ts";

/**
 * The machine id of the agent running on `dataDir`, as that agent says: the one in the status file it
 * keeps, when the process that wrote it still holds the data dir. Null when no agent runs there (or
 * it has not written its status yet). It may differ from what this command's own settings say: the
 * agent may have been started with another `EDGE_AGENT_MACHINE_ID` or `--machine-id`.
 */
export async function runningAgentMachineId(dataDir: string): Promise<string | null> {
  const holder = readLockHolder(dataDir);
  if (holder === null || !processAlive(holder)) return null;
  const status = await readStatusFile(dataDir).catch(() => null);
  return status !== null && status.pid === holder ? status.machineId : null;
}

export interface KnownMachineId {
  readonly machineId: string;
  /** Where it came from, when that is not this command's own settings. */
  readonly note?: string;
}

/**
 * The id to ask about, without making one: the running agent's own; else the settings'; else the one
 * a run generated and kept in the data dir; else (`includeLastRun`) the one the last run's status
 * file names.
 */
export async function knownMachineId(
  settings: Pick<Settings, "machineId" | "dataDir">,
  options: { readonly includeLastRun?: boolean } = {},
): Promise<KnownMachineId | null> {
  const running = await runningAgentMachineId(settings.dataDir);
  if (running !== null) {
    return running === settings.machineId || settings.machineId === undefined
      ? { machineId: running }
      : {
          machineId: running,
          note: `the running agent's machine id (these settings say ${settings.machineId})`,
        };
  }
  if (settings.machineId) return { machineId: settings.machineId };
  try {
    const generated = (await readFile(join(settings.dataDir, MACHINE_ID_FILE), "utf8")).trim();
    if (generated) return { machineId: generated };
  } catch {
    // Never generated here.
  }
  if (!options.includeLastRun) return null;
  const lastRun = (await readStatusFile(settings.dataDir).catch(() => null))?.machineId;
  return lastRun ? { machineId: lastRun } : null;
}
