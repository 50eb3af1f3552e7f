import { join } from "node:path";
import * as z from "zod";
import type { Logger } from "../runtime/index.ts";
import { readJsonStateFile, writeFileAtomic } from "../runtime/index.ts";
import type { ScopeMarks } from "./claims.ts";

export const HIGH_WATER_FILE = join("trust", "high-water.json");

const OpenCommand = z.object({ ref: z.string(), acceptedAt: z.string() });
const StoredScopes = z.object({
  version: z.literal(2),
  scopes: z.record(
    z.string(),
    z.object({ finished: z.number().int().min(0), open: z.record(z.string(), OpenCommand) }),
  ),
});
/** What versions before 2 kept: the newest serial accepted per scope. */
const StoredMarksV1 = z.object({
  marks: z.record(z.string(), z.object({ serial: z.number().int().min(1), ref: z.string(), acceptedAt: z.string() })),
});
const StoredTrust = z.union([StoredScopes, StoredMarksV1]);

export type TrustMarks = Record<string, ScopeMarks>;

/**
 * What the machine knows per scope (claims.ts, ScopeMarks), in `<data dir>/trust/high-water.json`
 * (0600). It lives in the data dir, not beside the configuration, so a version rollback or a
 * reinstall of the settings keeps it; it is replaced atomically (write, fsync, rename) and written
 * before the document it records has any effect, so no crash can make a document acceptable twice.
 * An earlier version's file (the newest serial accepted per scope) is read as that serial finished.
 * A damaged file is set aside and the marks start empty: whoever can damage it can also replace the
 * agent, and refusing every signed command forever would cut the machine off from its platform.
 */
export function highWaterStore(
  dataDir: string,
  logger: Logger,
  now: () => number,
): {
  load(): Promise<TrustMarks>;
  save(marks: TrustMarks): Promise<void>;
} {
  const path = join(dataDir, HIGH_WATER_FILE);
  return {
    async load() {
      const stored = await readJsonStateFile(path, StoredTrust, now);
      if (stored.kind === "valid") {
        const value = stored.value;
        if ("scopes" in value) return value.scopes;
        return Object.fromEntries(
          Object.entries(value.marks).map(([scope, mark]) => [scope, { finished: mark.serial, open: {} }]),
        );
      }
      if (stored.kind === "damaged") {
        logger.error(
          { err: stored.error, setAside: stored.setAside },
          "the accepted-serial marks are damaged: set aside; older signed documents may be accepted again until newer ones arrive",
        );
      }
      return {};
    },
    async save(marks) {
      const file: z.infer<typeof StoredScopes> = {
        version: 2,
        scopes: marks as z.infer<typeof StoredScopes>["scopes"],
      };
      await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
    },
  };
}
