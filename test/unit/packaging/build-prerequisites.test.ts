import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  BUILD_TOOLS,
  findMissingTools,
  MissingBuildToolError,
  requireBuildTools,
} from "../../../scripts/build-prerequisites.ts";

const scriptsDir = new URL("../../../scripts/", import.meta.url).pathname;
const scratchDirs: string[] = [];

afterEach(() => {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A PATH of one directory holding only these programs (empty shell scripts, executable or not). */
function pathWith(programs: Record<string, { executable: boolean }>): string {
  const dir = mkdtempSync(join(tmpdir(), "ea-build-tools-"));
  scratchDirs.push(dir);
  for (const [name, { executable }] of Object.entries(programs)) {
    writeFileSync(join(dir, name), "#!/bin/sh\n");
    chmodSync(join(dir, name), executable ? 0o755 : 0o644);
  }
  return dir;
}

describe("build prerequisites", () => {
  it("finds a tool in any PATH directory, and names each missing one with its Debian package", () => {
    const withStrip = pathWith({ strip: { executable: true } });
    const empty = pathWith({});
    const tools = [BUILD_TOOLS.strip, BUILD_TOOLS.dpkgDeb];
    expect(findMissingTools(tools, [empty, withStrip].join(delimiter))).toEqual([BUILD_TOOLS.dpkgDeb]);
    expect(() => requireBuildTools(tools, withStrip)).toThrow(MissingBuildToolError);
    expect(() => requireBuildTools(tools, withStrip)).toThrow(
      "missing build tool: dpkg-deb (Debian package dpkg, for the .deb); install with: apt-get install dpkg",
    );
    expect(() => requireBuildTools([BUILD_TOOLS.strip], withStrip)).not.toThrow();
  });

  it("does not take a file that is not executable, nor a directory, for the tool", () => {
    const notExecutable = pathWith({ strip: { executable: false } });
    const withDirectory = pathWith({});
    mkdirSync(join(withDirectory, "strip"));
    expect(findMissingTools([BUILD_TOOLS.strip], [notExecutable, withDirectory].join(delimiter))).toEqual([
      BUILD_TOOLS.strip,
    ]);
  });

  it("names all missing tools at once, each package once", () => {
    const error = (() => {
      try {
        requireBuildTools([BUILD_TOOLS.strip, BUILD_TOOLS.rpmbuild, BUILD_TOOLS.wixl], "");
      } catch (caught) {
        return caught as MissingBuildToolError;
      }
      throw new Error("expected MissingBuildToolError");
    })();
    expect(error.code).toBe("EDGE_BUILD_TOOL_MISSING");
    expect(error.missing.map((tool) => tool.command)).toEqual(["strip", "rpmbuild", "wixl"]);
    expect(error.message).toMatch(/install with: apt-get install binutils rpm wixl$/);
  });

  // The scripts themselves, run as `npm run package` runs them, on a PATH without their tools.
  it.each([
    ["build-prerequisites.ts", "npm run package: missing build tools: strip (Debian package binutils"],
    ["build-sea.ts", "build-sea: missing build tool: strip (Debian package binutils, for the single executable)"],
    [
      "build-deb.ts",
      "build-deb: missing build tools: dpkg-deb (Debian package dpkg, for the .deb), xz (Debian package xz-utils",
    ],
    ["build-bridge-deb.ts", "build-bridge-deb: missing build tools: dpkg-deb (Debian package dpkg"],
    [
      "build-rpm.ts",
      "build-rpm: missing build tool: rpmbuild (Debian package rpm, for the .rpm); install with: apt-get install rpm",
    ],
    ["build-msi.ts", "build-msi: missing build tools: wixl (Debian package wixl"],
  ])("%s exits 1 with one line naming the missing tool, no stack trace", (script, expected) => {
    const run = spawnSync(process.execPath, [join(scriptsDir, script)], {
      env: { PATH: pathWith({}) },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(run.status, run.stderr).toBe(1);
    const lines = run.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(expected);
  });
});
