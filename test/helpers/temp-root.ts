/**
 * vitest globalSetup: every test run gets a temp root of its own (TMPDIR, which os.tmpdir() and every
 * child process read), removed at the end, so a run leaves nothing in the machine's temp dir
 * whatever a test forgets or however it ends. And a test that forgets is caught: whatever is still
 * in the root when the run ends is listed and fails the run (tests clean up after themselves).
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Entries left in the run's temp root: what the tests did not clean up. */
export function leftoversIn(root: string): string[] {
  return readdirSync(root).sort();
}

export class LeakedTempFilesError extends Error {
  readonly code = "EDGE_TEST_LEAKED_TEMP_FILES";
  constructor(leftovers: readonly string[]) {
    // mkdtemp names end in six random characters: counted by prefix, the culprit is easy to find.
    const byPrefix = new Map<string, number>();
    for (const name of leftovers) {
      const prefix = name.replace(/[A-Za-z0-9]{6}$/, "*");
      byPrefix.set(prefix, (byPrefix.get(prefix) ?? 0) + 1);
    }
    const counted = [...byPrefix].map(([prefix, count]) => `${prefix} x${count}`).join(", ");
    super(
      `the tests left ${leftovers.length} entr${leftovers.length === 1 ? "y" : "ies"} in the temp dir (${counted}): remove them in afterEach/afterAll`,
    );
    this.name = "LeakedTempFilesError";
  }
}

let runRoot: string | undefined;
let outerTmpdir: string | undefined;

export function setup(): void {
  outerTmpdir = process.env.TMPDIR;
  runRoot = mkdtempSync(join(tmpdir(), "edge-agent-test-run-"));
  // Like /tmp: a test may drop privileges and still need a temp dir of its own.
  chmodSync(runRoot, 0o1777);
  process.env.TMPDIR = runRoot;
}

export function teardown(): void {
  if (!runRoot) return;
  const root = runRoot;
  runRoot = undefined;
  if (outerTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = outerTmpdir;
  const leftovers = leftoversIn(root);
  rmSync(root, { recursive: true, force: true });
  if (leftovers.length > 0) throw new LeakedTempFilesError(leftovers);
}
