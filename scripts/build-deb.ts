/**
 * Builds dist/edge-agent_<version>_amd64.deb with dpkg-deb from the single executable, the systemd
 * unit and the maintainer scripts in installer/deb. Builds the executable first if it is missing.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensureSingleExecutable, packageVersion } from "./build-sea.ts";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");

export async function buildDeb(): Promise<string> {
  const { description } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { description: string };
  const version = packageVersion();
  const { binary } = await ensureSingleExecutable();

  const stage = join(dist, "deb-root");
  rmSync(stage, { recursive: true, force: true });
  const place = (source: string, target: string, mode: number): void => {
    const destination = join(stage, target);
    mkdirSync(resolve(destination, ".."), { recursive: true, mode: 0o755 });
    copyFileSync(source, destination);
    chmodSync(destination, mode);
  };
  place(binary, "usr/bin/edge-agent", 0o755);
  place(join(root, "service-units/edge-agent.service"), "lib/systemd/system/edge-agent.service", 0o644);
  place(join(root, "README.md"), "usr/share/doc/edge-agent/README.md", 0o644);
  for (const script of ["postinst", "prerm", "postrm"]) place(join(root, "installer/deb", script), `DEBIAN/${script}`, 0o755);

  const installedKiB = Math.ceil(statSync(binary).size / 1024);
  writeFileSync(
    join(stage, "DEBIAN/control"),
    [
      "Package: edge-agent",
      `Version: ${version}`,
      "Architecture: amd64",
      "Section: admin",
      "Priority: optional",
      "Maintainer: edge-agent maintainers <edge-agent@localhost>",
      `Installed-Size: ${installedKiB}`,
      "Depends: passwd",
      `Description: ${description}`,
      " A single executable (Node.js bundled) run as the systemd service edge-agent.",
      "",
    ].join("\n"),
  );
  const deb = join(dist, `edge-agent_${version}_amd64.deb`);
  execFileSync("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", stage, deb], { stdio: "inherit" });
  console.log(`built ${deb} (${(statSync(deb).size / 1024 / 1024).toFixed(1)} MiB)`);
  return deb;
}

if (import.meta.main) await buildDeb();
