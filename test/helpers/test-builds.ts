/**
 * Where the packaging tests build executables and packages: the run's shared build directory (made
 * by test/helpers/temp-root.ts inside the run's temp root, removed with it), never dist/. One build
 * of each executable serves every test file of the run.
 */
export function testBuildDir(): string {
  const dir = process.env.EDGE_TEST_BUILD_DIR;
  if (!dir) throw new Error("EDGE_TEST_BUILD_DIR is not set: run the tests with vitest (its globalSetup makes it)");
  return dir;
}
