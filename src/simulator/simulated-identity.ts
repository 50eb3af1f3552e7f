import { join } from "node:path";
import type { Settings } from "../settings/index.ts";

/** Wide enough for a million agents: ids sort in start order and stay the same across restarts. */
const INDEX_DIGITS = 6;

/** The machine id of the simulated agent at `index` (0-based): `sim-000000`, `sim-000001`, ... */
export function simulatedMachineId(index: number): string {
  const limit = 10 ** INDEX_DIGITS;
  if (!Number.isInteger(index) || index < 0 || index >= limit) {
    throw new RangeError(`a simulated agent's index must be a whole number from 0 to ${limit - 1} (got ${index})`);
  }
  return `sim-${String(index).padStart(INDEX_DIGITS, "0")}`;
}

/**
 * One simulated agent's settings: the fleet's template with an identity and directories of its own,
 * `<root>/<machineId>` (its data) and `<root>/<machineId>/config` (its last good remote config).
 * The same index gives the same machine and the same directories on every start of the simulator.
 * A template's inbox prefix is dropped: shared, it would let one agent read another's replies;
 * each agent takes its own default (`_INBOX_<machineId>`).
 */
export function simulatedAgentSettings(template: Settings, root: string, index: number): Settings {
  const { inboxPrefix: _shared, ...rest } = template;
  const machineId = simulatedMachineId(index);
  const dataDir = join(root, machineId);
  return { ...rest, machineId, dataDir, configDir: join(dataDir, "config") };
}
