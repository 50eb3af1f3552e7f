import { join } from "node:path";
import * as z from "zod";
import { writeFileAtomic } from "../runtime/atomic-file.ts";
import { readJsonStateFile } from "../runtime/json-state-file.ts";
import type { Logger } from "../runtime/logger.ts";

export const HIGH_WATER_FILE = join("trust", "high-water.json");

const StoredMarks = z.object({
  marks: z.record(z.string(), z.object({ serial: z.number().int().min(1), ref: z.string(), acceptedAt: z.string() })),
});
export type StoredMarks = z.infer<typeof StoredMarks>;

/**
 * The newest serial accepted per scope, in `<data dir>/trust/high-water.json` (0600). It lives in
 * the data dir, not beside the configuration, so a version rollback or a reinstall of the settings
 * keeps it; it is replaced atomically (write, fsync, rename) and written before the document it
 * records has any effect, so no crash can make a document acceptable twice.
 * A damaged file is set aside and the marks start empty: whoever can damage it can also replace the
 * agent, and refusing every signed command forever would cut the machine off from its platform.
 */
export function highWaterStore(
  dataDir: string,
  logger: Logger,
  now: () => number,
): {
  load(): Promise<StoredMarks["marks"]>;
  save(marks: StoredMarks["marks"]): Promise<void>;
} {
  const path = join(dataDir, HIGH_WATER_FILE);
  return {
    async load() {
      const stored = await readJsonStateFile(path, StoredMarks, now);
      if (stored.kind === "valid") return stored.value.marks;
      if (stored.kind === "damaged") {
        logger.error(
          { err: stored.error, setAside: stored.setAside },
          "the accepted-serial marks are damaged: set aside; older signed documents may be accepted again until newer ones arrive",
        );
      }
      return {};
    },
    async save(marks) {
      await writeFileAtomic(path, `${JSON.stringify({ marks } satisfies StoredMarks, null, 2)}\n`, 0o600);
    },
  };
}
