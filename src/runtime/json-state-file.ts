import { readFile, rename } from "node:fs/promises";
import type { z } from "zod";

/** What reading a small JSON state file found. */
export type JsonStateFile<T> =
  | { readonly kind: "missing" }
  | { readonly kind: "valid"; readonly value: T }
  /** Not JSON or not the schema: moved to `setAside` (never trusted, kept for whoever investigates). */
  | { readonly kind: "damaged"; readonly setAside: string; readonly error: unknown };

/**
 * Reads a JSON state file against its schema. A damaged one is renamed `<path>.corrupt-<time>` so the
 * next write starts clean and the evidence stays; what to do then is the caller's (each store says
 * why its choice is safe). Errors reading the file itself (permissions, EIO) are thrown.
 */
export async function readJsonStateFile<T>(
  path: string,
  schema: z.ZodType<T>,
  now: () => number,
): Promise<JsonStateFile<T>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    throw error;
  }
  try {
    return { kind: "valid", value: schema.parse(JSON.parse(text)) };
  } catch (error) {
    return { kind: "damaged", setAside: await setAsideDamagedFile(path, now), error };
  }
}

/** Where a damaged `path` is set aside: `<path>.corrupt-<time>`, kept for whoever investigates. */
export function damagedFileName(path: string, now: () => number): string {
  return `${path}.corrupt-${new Date(now()).toISOString().replace(/[:.]/g, "-")}`;
}

/**
 * Moves a file that cannot be trusted to `<path>.corrupt-<time>`: the next write starts clean and
 * the evidence stays for whoever investigates. Returns where it went (a failed move is left as is).
 */
export async function setAsideDamagedFile(path: string, now: () => number): Promise<string> {
  const setAside = damagedFileName(path, now);
  await rename(path, setAside).catch(() => undefined);
  return setAside;
}
