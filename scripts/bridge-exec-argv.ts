/** V8 flags baked into the bridge's executable; `npm run bench -- bridge` runs the sources with them too. */
export const BRIDGE_EXEC_ARGV: readonly string[] = [];
