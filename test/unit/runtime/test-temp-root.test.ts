import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LeakedTempFilesError, setup, teardown } from "../../helpers/temp-root.ts";

// The run's own temp root (this worker's TMPDIR): each test below makes a nested one and ends it.
const runTmpdir = process.env.TMPDIR;
afterEach(() => {
  process.env.TMPDIR = runTmpdir;
});

describe("the test run's temp root", () => {
  it("is removed at the end, and fails the run naming what the tests left, counted by prefix", () => {
    setup();
    const root = tmpdir();
    expect(root).not.toBe(runTmpdir);
    for (const name of ["ea-archive-AbC123", "ea-archive-XyZ789", "edge-agent-nats-Q1w2E3"])
      mkdirSync(join(root, name));
    writeFileSync(join(root, "ea-archive-AbC123", "tool.zip"), "x");
    expect(() => teardown()).toThrow(LeakedTempFilesError);
    expect(existsSync(root)).toBe(false);
    expect(process.env.TMPDIR).toBe(runTmpdir);

    setup();
    const again = tmpdir();
    mkdirSync(join(again, "ea-zip-Abcdef"));
    expect(() => teardown()).toThrow(
      "the tests left 1 entry in the temp dir (ea-zip-* x1): remove them in afterEach/afterAll",
    );
  });

  it("passes when the tests cleaned up", () => {
    setup();
    const root = tmpdir();
    expect(() => teardown()).not.toThrow();
    expect(existsSync(root)).toBe(false);
  });
});
