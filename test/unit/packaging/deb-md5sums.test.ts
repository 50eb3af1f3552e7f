import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildDebPackage } from "../../../scripts/deb-package.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

const has = (command: string): boolean => {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};

const md5 = (text: string): string => createHash("md5").update(text).digest("hex");

describe.skipIf(!has("dpkg-deb") || !has("xz"))("a .deb's md5sums (needs dpkg-deb and xz)", () => {
  it("lists every file the package installs with its md5, so dpkg --verify can check them; nothing is staged outside the output dir", () => {
    const dir = scratchDir("ea-deb-md5-");
    const scripts = join(dir, "scripts");
    mkdirSync(scripts);
    for (const name of ["postinst", "prerm", "postrm"]) writeFileSync(join(scripts, name), "#!/bin/sh\nexit 0\n");
    const readme = join(dir, "README.md");
    writeFileSync(readme, "# x\n");
    const tool = join(dir, "tool");
    writeFileSync(tool, "#!/bin/sh\necho hi\n");
    const output = join(dir, "out");
    const deb = buildDebPackage(
      {
        name: "md5-check",
        version: "1.0.0",
        section: "admin",
        summary: "a package for a test",
        details: ["nothing"],
        depends: [],
        files: [
          { source: tool, target: "usr/bin/md5-check", mode: 0o755 },
          { source: readme, target: "usr/share/doc/md5-check/README.md", mode: 0o644 },
        ],
        copyright: "Format: x\n",
        maintainerScripts: scripts,
      },
      { outputDir: output },
    );
    expect(execFileSync("dpkg-deb", ["-I", deb, "md5sums"], { encoding: "utf8" })).toBe(
      [
        `${md5("#!/bin/sh\necho hi\n")}  usr/bin/md5-check`,
        `${md5("# x\n")}  usr/share/doc/md5-check/README.md`,
        `${md5("Format: x\n")}  usr/share/doc/md5-check/copyright`,
        "",
      ].join("\n"),
    );
    // Only the package is left where it was built.
    expect(readdirSync(output)).toEqual(["md5-check_1.0.0_amd64.deb"]);
  });
});
