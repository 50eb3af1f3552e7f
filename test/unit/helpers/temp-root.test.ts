import { mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { defaultToolPaths, distSnapshot, writtenOutside } from "../../helpers/temp-root.ts";

describe("what a test run must not write outside its temp root", () => {
  it("names a default tool path that appeared, and a dist/ file a test added or rewrote", () => {
    const dir = scratchDir("ea-outside-");
    const dist = join(dir, "dist");
    mkdirSync(dist);
    writeFileSync(join(dist, "edge-agent_0.1.0_amd64.deb"), "release");
    const paths = defaultToolPaths(join(dir, "home"), join(dir, "tmp"));
    const before = { existing: new Set<string>(), dist: distSnapshot(dist) };
    mkdirSync(join(dir, "home", ".rpmdb"), { recursive: true });
    writeFileSync(join(dist, "edge-agent-linux-x64-0.2.0"), "a test's build");
    utimesSync(join(dist, "edge-agent_0.1.0_amd64.deb"), new Date(1), new Date(1));
    const after = {
      existing: new Set(paths.filter((path) => path.endsWith(".rpmdb"))),
      dist: distSnapshot(dist),
    };
    expect(writtenOutside(before, after)).toEqual(
      [
        join(dir, "home", ".rpmdb"),
        join(dist, "edge-agent-linux-x64-0.2.0"),
        join(dist, "edge-agent_0.1.0_amd64.deb"),
      ].sort(),
    );
    expect(writtenOutside(after, { existing: after.existing, dist: distSnapshot(dist) })).toEqual([]);
  });

  it("vitest keeps its API token in the repository's node_modules/.cache, not the home dir", () => {
    // Set by vitest.config.ts before vitest resolves the token, and inherited by every worker.
    expect(process.env.XDG_DATA_HOME).toBe(resolve(import.meta.dirname, "../../../node_modules/.cache"));
  });
});
