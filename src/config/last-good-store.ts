import { join } from "node:path";
import * as z from "zod";
import type { Logger } from "../runtime/index.ts";
import { type JsonStateFile, readJsonStateFile, writeFileAtomic } from "../runtime/index.ts";

export const LAST_GOOD_FILE = "remote-config.json";

const StoredDocument = z.object({
  revision: z.number().int().nonnegative(),
  document: z.record(z.string(), z.unknown()),
});

/**
 * What was applied: the two remote documents as they were (not merged with the local settings, so
 * a change to the local settings file still takes effect under them after a restart).
 */
export const LastGoodConfiguration = z.object({
  revision: z.number().int().nonnegative(),
  defaults: StoredDocument.nullable(),
  machine: StoredDocument.nullable(),
  /** The revision of the last pushed configuration document (they number their own revisions). */
  pushedRevision: z.number().int().nonnegative().default(0),
});
export type LastGoodConfiguration = z.infer<typeof LastGoodConfiguration>;

/**
 * The last remote configuration that applied cleanly, kept in the config dir (write, fsync,
 * rename) so a restart while offline runs on it. A damaged file is set aside, never trusted.
 */
export function lastGoodStore(
  configDir: string,
  logger: Logger,
  now: () => number,
): {
  load(): Promise<LastGoodConfiguration | null>;
  save(configuration: LastGoodConfiguration): Promise<void>;
} {
  const path = join(configDir, LAST_GOOD_FILE);
  return {
    async load() {
      let stored: JsonStateFile<LastGoodConfiguration>;
      try {
        stored = await readJsonStateFile(path, LastGoodConfiguration, now);
      } catch (error) {
        logger.error(
          { err: error, path },
          "cannot read the last good remote configuration; starting from local settings",
        );
        return null;
      }
      if (stored.kind === "valid") return stored.value;
      if (stored.kind === "damaged") {
        logger.error(
          { err: stored.error, setAside: stored.setAside },
          "the last good remote configuration is damaged: set aside, starting from local settings",
        );
      }
      return null;
    },
    async save(configuration) {
      await writeFileAtomic(path, `${JSON.stringify(configuration, null, 2)}\n`, 0o600);
    },
  };
}
