/**
 * What test files started (agents, bridges, servers, with their temp dirs) and did not dispose:
 * disposed when the file ends, after the file's own afterAll hooks. The hook is registered when this
 * module is first imported, during a file's collection: vitest evaluates modules afresh for each
 * test file (isolate, the default), so every file gets its own. Outside vitest (the benchmarks and
 * the fault suite share these helpers) there is no file end: they dispose what they start.
 */
const pending = new Set<() => Promise<void>>();

if (process.env.VITEST) {
  const { afterAll } = await import("vitest");
  afterAll(async () => {
    for (const dispose of [...pending]) await dispose();
  });
}

/**
 * Registers `dispose` to run at the end of the test file unless it ran before; returns the
 * disposer to call instead, which runs it once and unregisters it.
 */
export function disposeAtFileEnd(dispose: () => Promise<void>): () => Promise<void> {
  let disposal: Promise<void> | undefined;
  const once = (): Promise<void> => {
    pending.delete(once);
    disposal ??= dispose();
    return disposal;
  };
  pending.add(once);
  return once;
}
