/** SQLite's primary result codes we act on (the extended code's low byte). */
export const SqliteResult = { busy: 5, corrupt: 11, notADatabase: 26 } as const;

/** The primary result code of an error node:sqlite threw, if it is one. */
export function sqliteResultCode(error: unknown): number | undefined {
  const code = (error as { errcode?: unknown }).errcode;
  return typeof code === "number" ? code & 0xff : undefined;
}
