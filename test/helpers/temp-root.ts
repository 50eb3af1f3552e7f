/**
 * vitest globalSetup: every test run gets a temp root of its own (TMPDIR, which os.tmpdir() and every
 * child process read), removed at the end, so a run leaves nothing in the machine's temp dir
 * whatever a test forgets or however it ends. And a test that forgets is caught: whatever is still
 * in the root when the run ends is listed and fails the run (tests clean up after themselves).
 *
 * Outside the root, the run must not leave what tools write by default (rpm's ~/.rpmdb, Node's compile
 * cache in the machine's temp dir, vitest's token in ~/.local/share), nor build into dist/, where the
 * release packages are: a path of those that appears during the run, or a file of dist/ that a test
 * added or changed, fails it too.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repositoryRoot = resolve(import.meta.dirname, "../..");

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

export class WroteOutsideTempRootError extends Error {
  readonly code = "EDGE_TEST_WROTE_OUTSIDE_TEMP_ROOT";
  constructor(paths: readonly string[]) {
    super(
      `the tests wrote outside their temp root: ${paths.join(", ")} (point the tool at a test directory: rpm --dbpath, NODE_DISABLE_COMPILE_CACHE=1 for npm, an outputDir for builds)`,
    );
    this.name = "WroteOutsideTempRootError";
  }
}

/** Where tools write when nobody tells them otherwise; `outerTmp` is the machine's temp dir. */
export function defaultToolPaths(home: string, outerTmp: string): string[] {
  return [join(home, ".rpmdb"), join(home, ".local", "share", "vitest"), join(outerTmp, "node-compile-cache")];
}

/** dist/'s files (recursively) and their modification times; empty when there is no dist/. */
export function distSnapshot(dist: string): Map<string, number> {
  const files = new Map<string, number>();
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else files.set(path, statSync(path).mtimeMs);
    }
  };
  if (existsSync(dist)) visit(dist);
  return files;
}

/** What appeared or changed between two looks: paths created, dist/ files added or rewritten. */
export function writtenOutside(
  before: { readonly existing: ReadonlySet<string>; readonly dist: ReadonlyMap<string, number> },
  after: { readonly existing: ReadonlySet<string>; readonly dist: ReadonlyMap<string, number> },
): string[] {
  const created = [...after.existing].filter((path) => !before.existing.has(path));
  const built = [...after.dist].filter(([path, mtime]) => before.dist.get(path) !== mtime).map(([path]) => path);
  return [...created, ...built].sort();
}

/**
 * The run's shared build directory, inside its temp root: the single executables and packages the
 * packaging tests build, made once per run (from this run's sources) whichever test file needs them
 * first, and removed with the root. Its path is in EDGE_TEST_BUILD_DIR (test/helpers/test-builds.ts).
 */
export const TEST_BUILDS = "edge-agent-test-builds";

let runRoot: string | undefined;
let outerTmpdir: string | undefined;
let outside: { paths: string[]; existing: Set<string>; dist: Map<string, number> } | undefined;

const lookOutside = (paths: readonly string[]) => ({
  existing: new Set(paths.filter((path) => existsSync(path))),
  dist: distSnapshot(join(repositoryRoot, "dist")),
});

export function setup(): void {
  outerTmpdir = process.env.TMPDIR;
  const paths = defaultToolPaths(homedir(), tmpdir());
  outside = { paths, ...lookOutside(paths) };
  runRoot = mkdtempSync(join(tmpdir(), "edge-agent-test-run-"));
  // Like /tmp: a test may drop privileges and still need a temp dir of its own.
  chmodSync(runRoot, 0o1777);
  process.env.TMPDIR = runRoot;
  const builds = join(runRoot, TEST_BUILDS);
  mkdirSync(builds);
  process.env.EDGE_TEST_BUILD_DIR = builds;
}

export function teardown(): void {
  if (!runRoot) return;
  const root = runRoot;
  runRoot = undefined;
  if (outerTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = outerTmpdir;
  delete process.env.EDGE_TEST_BUILD_DIR;
  rmSync(join(root, TEST_BUILDS), { recursive: true, force: true });
  const leftovers = leftoversIn(root);
  rmSync(root, { recursive: true, force: true });
  if (leftovers.length > 0) throw new LeakedTempFilesError(leftovers);
  if (outside) {
    const written = writtenOutside(outside, lookOutside(outside.paths));
    if (written.length > 0) throw new WroteOutsideTempRootError(written);
  }
}
