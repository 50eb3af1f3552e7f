import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isReservedMachineId, isSafeToken } from "../contracts/index.ts";
import { EdgeError } from "../errors/index.ts";
import { writeFileAtomic } from "../runtime/index.ts";

export const MACHINE_ID_FILE = "machine-id";

export class MachineIdError extends EdgeError {
  readonly code = "EDGE_MACHINE_ID";
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = "MachineIdError";
  }
}

/**
 * The machine id from settings wins; otherwise the one this machine generated before; otherwise a
 * new UUID, persisted before it is ever used so the machine never shows up under two ids.
 */
export async function resolveMachineId(configured: string | undefined, dataDir: string): Promise<string> {
  if (configured !== undefined) return configured;
  const path = join(dataDir, MACHINE_ID_FILE);
  let stored: string | undefined;
  try {
    stored = (await readFile(path, "utf8")).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new MachineIdError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (stored !== undefined) {
    if (!isSafeToken(stored))
      throw new MachineIdError(`${path} holds ${JSON.stringify(stored)}, which is not a safe machine id`);
    if (isReservedMachineId(stored))
      throw new MachineIdError(
        `${path} holds ${JSON.stringify(stored)}, which is reserved for fleet-wide subjects (machine.all.*)`,
      );
    return stored;
  }
  const generated = randomUUID();
  try {
    await writeFileAtomic(path, `${generated}\n`);
  } catch (error) {
    throw new MachineIdError(`cannot persist a new machine id in ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return generated;
}
