/**
 * One Debian package from a list of files: stages them with their modes, writes DEBIAN/control and
 * the maintainer scripts, and runs dpkg-deb (xz; every file owned by root). The agent's and the
 * bridge's .deb builders describe their package; this does the rest.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");

export interface DebFile {
  readonly source: string;
  /** Path inside the package, without the leading slash (e.g. `usr/bin/edge-agent`). */
  readonly target: string;
  readonly mode: number;
}

export interface DebPackage {
  readonly name: string;
  readonly version: string;
  readonly section: string;
  /** The control file's one-line description. */
  readonly summary: string;
  /** The long description, one paragraph line per entry. */
  readonly details: readonly string[];
  readonly depends: readonly string[];
  readonly files: readonly DebFile[];
  /** A directory holding postinst, prerm and postrm (each installed 0755). */
  readonly maintainerScripts: string;
}

const MAINTAINER_SCRIPTS = ["postinst", "prerm", "postrm"] as const;

/** Builds dist/<name>_<version>_amd64.deb and returns its path. */
export function buildDebPackage(deb: DebPackage): string {
  // Each package its own stage: the agent's and the bridge's can be built at the same time.
  const stage = join(dist, "deb-root", deb.name);
  rmSync(stage, { recursive: true, force: true });
  const place = (file: DebFile): void => {
    const destination = join(stage, file.target);
    mkdirSync(dirname(destination), { recursive: true, mode: 0o755 });
    copyFileSync(file.source, destination);
    chmodSync(destination, file.mode);
  };
  for (const file of deb.files) place(file);
  for (const script of MAINTAINER_SCRIPTS) place({ source: join(deb.maintainerScripts, script), target: `DEBIAN/${script}`, mode: 0o755 });

  const installedKiB = deb.files.reduce((total, file) => total + Math.ceil(statSync(file.source).size / 1024), 0);
  writeFileSync(
    join(stage, "DEBIAN/control"),
    [
      `Package: ${deb.name}`,
      `Version: ${deb.version}`,
      "Architecture: amd64",
      `Section: ${deb.section}`,
      "Priority: optional",
      `Maintainer: ${deb.name} maintainers <${deb.name}@localhost>`,
      `Installed-Size: ${installedKiB}`,
      `Depends: ${deb.depends.join(", ")}`,
      `Description: ${deb.summary}`,
      ...deb.details.map((line) => ` ${line}`),
      "",
    ].join("\n"),
  );
  const output = join(dist, `${deb.name}_${deb.version}_amd64.deb`);
  execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", stage, output], { stdio: "inherit" });
  console.log(`built ${output} (${(statSync(output).size / 1024 / 1024).toFixed(1)} MiB)`);
  return output;
}
