import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as z from "zod";
import type { OsName } from "../contracts/index.ts";
import { ClientUpdateStatus } from "../contracts/index.ts";
import { EdgeError } from "../errors/index.ts";
import { describeIssues, writeFileAtomic } from "../runtime/index.ts";

/**
 * What the device knows about its own binaries, in `<dataDir>/update/state.json`. The packaged
 * binary (the one the service manager starts) is the launcher: it runs the `active` version, or
 * the `trial` while that is being proven, and it is the last-known-good of last resort.
 */
const isoTimestamp = z.iso.datetime({ offset: true });

export const InstalledBinary = z.object({
  version: z.string().min(1),
  path: z.string().min(1),
  /** Of the bytes received (and checked again by size before each launch). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  /** Where it was downloaded from (absent in states written before it was kept). */
  link: z.string().optional(),
  /** False when it was taken without a sha256 (toolPolicy.allowMissingChecksum); absent: checked. */
  verified: z.boolean().optional(),
});
export type InstalledBinary = z.infer<typeof InstalledBinary>;

export const TrialRun = InstalledBinary.extend({
  /** Committed at: the new version must report healthy within the health window from here. */
  startedAt: isoTimestamp,
  /** How many times a launcher has started it; a crash loop shows as launches without health. */
  launches: z.number().int().nonnegative(),
  /** What runs if it fails: the active version before it (null: the packaged binary). */
  previous: InstalledBinary.nullable(),
  /** The version that staged it, for the report. */
  fromVersion: z.string().min(1),
  causationId: z.string().nullable(),
});
export type TrialRun = z.infer<typeof TrialRun>;

/** A report waiting to go into the outbox, with the event id it will keep (dedup on a retry). */
export const PendingReport = z.object({
  eventId: z.string().min(1),
  causationId: z.string().nullable(),
  body: ClientUpdateStatus,
});
export type PendingReport = z.infer<typeof PendingReport>;

export const UpdateState = z.object({
  active: InstalledBinary.nullable(),
  trial: TrialRun.nullable(),
  /** Versions that were rolled back here: a fleet-wide broadcast does not retry them. */
  rolledBack: z.array(z.object({ version: z.string(), at: isoTimestamp, reason: z.string() })),
  pendingReports: z.array(PendingReport),
});
export type UpdateState = z.infer<typeof UpdateState>;

export const EMPTY_UPDATE_STATE: UpdateState = { active: null, trial: null, rolledBack: [], pendingReports: [] };

export interface UpdatePaths {
  readonly root: string;
  /** What an installed version's executable is called (`edge-agent`, `edge-agent.exe` on Windows). */
  readonly binaryName: string;
  readonly stateFile: string;
  readonly versionsDir: string;
  readonly stagingDir: string;
}

export function updatePaths(dataDir: string, os: OsName = "linux"): UpdatePaths {
  const root = join(dataDir, "update");
  return {
    root,
    binaryName: os === "windows" ? "edge-agent.exe" : "edge-agent",
    stateFile: join(root, "state.json"),
    versionsDir: join(root, "versions"),
    stagingDir: join(root, "staging"),
  };
}

export function binaryPathFor(paths: UpdatePaths, version: string): string {
  return join(paths.versionsDir, version, paths.binaryName);
}

export class UpdateStateError extends EdgeError {
  readonly code = "EDGE_UPDATE_STATE";
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = "UpdateStateError";
  }
}

/** Reads the state; a missing file is the empty state; a damaged one is an error the caller decides on. */
export async function readUpdateState(paths: UpdatePaths): Promise<UpdateState> {
  let text: string;
  try {
    text = await readFile(paths.stateFile, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return EMPTY_UPDATE_STATE;
    throw new UpdateStateError(`cannot read ${paths.stateFile}: ${(error as Error).message}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UpdateStateError(`${paths.stateFile} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const result = UpdateState.safeParse(parsed);
  if (!result.success)
    throw new UpdateStateError(
      `${paths.stateFile} is not a valid update state: ${describeIssues(result.error.issues)}`,
    );
  return result.data;
}

export async function writeUpdateState(paths: UpdatePaths, state: UpdateState): Promise<void> {
  await writeFileAtomic(paths.stateFile, `${JSON.stringify(UpdateState.parse(state), null, 2)}\n`);
}
