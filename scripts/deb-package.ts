/**
 * One Debian package from a list of files: stages them with their modes, writes DEBIAN/control, the
 * maintainer scripts and /usr/share/doc/<name>/copyright, and has dpkg-deb build it (every file
 * owned by root). The agent's and the bridge's .deb builders describe their package; this does the
 * rest.
 *
 * Compression: dpkg-deb's own xz has no filter option, and the package is one x86-64 executable of
 * ~120 MB. So dpkg-deb builds it uncompressed, and data.tar is then compressed by xz with its x86
 * branch filter at preset 9e (see DATA_XZ_ARGS), which every dpkg reads (liblzma decodes any xz filter
 * chain). The agent's: 26.8 MiB with dpkg-deb -Zxz, 25.5 MiB so (README, "Installing it").
 */
import { execFileSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, posix, resolve } from "node:path";
import { BUILD_TOOLS, requireBuildTools } from "./build-prerequisites.ts";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");

/** What building a .deb runs: check with requireBuildTools before the executable is built. */
export const DEB_BUILD_TOOLS = [BUILD_TOOLS.dpkgDeb, BUILD_TOOLS.xz];

/**
 * xz for data.tar: the x86 branch-call-jump filter makes the executable's machine code compress
 * better, 9e is xz's strongest preset (64 MiB dictionary: dpkg needs ~65 MiB of memory to unpack).
 * One thread: a multi-threaded xz splits the input into blocks and compresses worse.
 */
export const DATA_XZ_ARGS = ["--format=xz", "--check=crc64", "--threads=1", "--x86", "--lzma2=preset=9e"] as const;

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
  /** usr/share/doc/<name>/copyright, machine-readable (deb-copyright.ts). */
  readonly copyright: string;
  /** A directory holding postinst, prerm and postrm (each installed 0755). */
  readonly maintainerScripts: string;
}

export interface DebBuildOptions {
  /** Where the .deb goes; dist/ unless given (a test builds into its own directory). */
  readonly outputDir?: string;
}

const MAINTAINER_SCRIPTS = ["postinst", "prerm", "postrm"] as const;

/**
 * Relative links of a Markdown document (`[text](target)`, not URLs nor anchors), which must
 * resolve to a file shipped beside it: a package's README once linked to a file it did not ship.
 */
export function relativeLinks(markdown: string): string[] {
  const links = [...markdown.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] ?? "");
  return links
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith("#"))
    .map((target) => target.replace(/#.*$/, ""));
}

export function assertDocLinksShipped(deb: Pick<DebPackage, "name" | "files">): void {
  const shipped = new Set(deb.files.map((file) => file.target));
  for (const doc of deb.files.filter((file) => file.target.endsWith(".md"))) {
    const broken = relativeLinks(readFileSync(doc.source, "utf8")).filter(
      (target) => !shipped.has(posix.normalize(posix.join(posix.dirname(doc.target), target))),
    );
    if (broken.length > 0)
      throw new Error(`${doc.source} links to ${broken.join(", ")}, which the ${deb.name} package does not ship`);
  }
}

interface ArMember {
  readonly name: string;
  /** The rest of the member's header after its name (mtime, owner, mode), kept as dpkg-deb wrote it. */
  readonly header: string;
  readonly data: Buffer;
}

const AR_MAGIC = "!<arch>\n";

/** The members of an ar archive (a .deb is one: debian-binary, control.tar*, data.tar*). */
function readAr(archive: Buffer): ArMember[] {
  if (archive.toString("latin1", 0, AR_MAGIC.length) !== AR_MAGIC) throw new Error("not an ar archive");
  const members: ArMember[] = [];
  let offset = AR_MAGIC.length;
  while (offset < archive.length) {
    const header = archive.toString("latin1", offset, offset + 60);
    const size = Number(header.slice(48, 58).trim());
    const data = archive.subarray(offset + 60, offset + 60 + size);
    members.push({ name: header.slice(0, 16).trim().replace(/\/$/, ""), header: header.slice(16, 48), data });
    offset += 60 + size + (size % 2);
  }
  return members;
}

function writeAr(members: readonly ArMember[]): Buffer {
  const parts: Buffer[] = [Buffer.from(AR_MAGIC, "latin1")];
  for (const member of members) {
    parts.push(
      Buffer.from(`${member.name.padEnd(16)}${member.header}${String(member.data.length).padEnd(10)}\`\n`, "latin1"),
      member.data,
    );
    if (member.data.length % 2 === 1) parts.push(Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

/**
 * DEBIAN/md5sums: one line per file the package installs (`<md5>  <path without leading slash>`),
 * what `dpkg --verify` checks an installed package against.
 */
export function md5sumsOf(stage: string): string {
  const lines: string[] = [];
  const visit = (relative: string): void => {
    for (const entry of readdirSync(join(stage, relative), { withFileTypes: true })) {
      const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (path === "DEBIAN") continue;
      if (entry.isDirectory()) visit(path);
      else if (entry.isFile())
        lines.push(
          `${createHash("md5")
            .update(readFileSync(join(stage, path)))
            .digest("hex")}  ${path}`,
        );
    }
  };
  visit("");
  return lines.sort((a, b) => (a.slice(34) < b.slice(34) ? -1 : 1)).join("\n") + (lines.length > 0 ? "\n" : "");
}

/** Builds <outputDir>/<name>_<version>_amd64.deb and returns its path. */
export function buildDebPackage(deb: DebPackage, options: DebBuildOptions = {}): string {
  requireBuildTools(DEB_BUILD_TOOLS);
  assertDocLinksShipped(deb);
  const outputDir = options.outputDir ?? dist;
  const output = join(outputDir, `${deb.name}_${deb.version}_amd64.deb`);
  // A stage and file names of this build's own: two builds at once (two test runs) never share one.
  const scratch = `${process.pid}-${randomUUID().slice(0, 8)}`;
  // Staged beside the package being built: a build into another directory (a test's) leaves dist/ alone.
  const stage = join(outputDir, `.deb-root-${deb.name}.${scratch}`);
  const uncompressed = `${output}.${scratch}.uncompressed`;
  const partial = `${output}.${scratch}.partial`;
  mkdirSync(outputDir, { recursive: true });
  try {
    const place = (file: DebFile): void => {
      const destination = join(stage, file.target);
      mkdirSync(dirname(destination), { recursive: true, mode: 0o755 });
      copyFileSync(file.source, destination);
      chmodSync(destination, file.mode);
    };
    for (const file of deb.files) place(file);
    for (const script of MAINTAINER_SCRIPTS)
      place({ source: join(deb.maintainerScripts, script), target: `DEBIAN/${script}`, mode: 0o755 });
    const copyright = join(stage, "usr/share/doc", deb.name, "copyright");
    mkdirSync(dirname(copyright), { recursive: true, mode: 0o755 });
    writeFileSync(copyright, deb.copyright, { mode: 0o644 });

    writeFileSync(join(stage, "DEBIAN/md5sums"), md5sumsOf(stage), { mode: 0o644 });
    const installedKiB = [
      ...deb.files.map((file) => statSync(file.source).size),
      Buffer.byteLength(deb.copyright),
    ].reduce((total, size) => total + Math.ceil(size / 1024), 0);
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
    execFileSync("dpkg-deb", ["--root-owner-group", "-Znone", "--build", stage, uncompressed], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    const compress = (data: Buffer, args: readonly string[]): Buffer =>
      execFileSync("xz", [...args, "--stdout"], { input: data, maxBuffer: 1024 * 1024 * 1024 });
    const members = readAr(readFileSync(uncompressed)).map((member) => {
      if (member.name === "control.tar")
        return { ...member, name: "control.tar.xz", data: compress(member.data, ["--format=xz", "--check=crc64"]) };
      if (member.name === "data.tar")
        return { ...member, name: "data.tar.xz", data: compress(member.data, DATA_XZ_ARGS) };
      return member;
    });
    writeFileSync(partial, writeAr(members));
    // dpkg-deb reads it back whole: a package it cannot read is never left in place.
    for (const check of ["--info", "--fsys-tarfile"])
      execFileSync("dpkg-deb", [check, partial], { stdio: ["ignore", "ignore", "inherit"] });
    renameSync(partial, output);
  } finally {
    for (const leftover of [stage, uncompressed, partial]) rmSync(leftover, { recursive: true, force: true });
  }
  console.log(`built ${output} (${(statSync(output).size / 1024 / 1024).toFixed(1)} MiB)`);
  return output;
}
