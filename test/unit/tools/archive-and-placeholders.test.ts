import { execFileSync } from "node:child_process";
import { once } from "node:events";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create as createTar } from "tar";
import { describe, expect, it } from "vitest";
import { ZipFile } from "yazl";
import { archiveKindOf, assertContainedPath, extractArchive, HostileArchiveError } from "../../../src/tools/archive.ts";
import { resolvePlaceholders, UnresolvedPlaceholderError } from "../../../src/tools/placeholders.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

const fresh = (): string => scratchDir("ea-archive-");

async function zipOf(
  entries: Array<{ name: string; data?: string; mode?: number; symlinkTo?: string }>,
): Promise<string> {
  const zip = new ZipFile();
  for (const entry of entries) {
    if (entry.symlinkTo !== undefined) zip.addBuffer(Buffer.from(entry.symlinkTo), entry.name, { mode: 0o120777 });
    else zip.addBuffer(Buffer.from(entry.data ?? ""), entry.name, { mode: entry.mode ?? 0o100644 });
  }
  zip.end();
  const path = join(fresh(), "a.zip");
  const out = createWriteStream(path);
  zip.outputStream.pipe(out);
  await once(out, "close");
  return path;
}

/** A tar.gz made with GNU tar from a folder laid out by `layout`. */
function tarOf(layout: (dir: string) => void, members: string[]): string {
  const dir = fresh();
  layout(dir);
  const path = join(fresh(), "a.tar.gz");
  execFileSync("tar", ["-czf", path, "-C", dir, ...members]);
  return path;
}

describe("archives", () => {
  it("recognises zip and tar.gz by content, and extracts files with their executable bit", async () => {
    const zip = await zipOf([
      { name: "bin/tool", data: "#!/bin/sh\necho hi\n", mode: 0o100755 },
      { name: "README", data: "r" },
    ]);
    expect(await archiveKindOf(zip)).toBe("zip");
    const out = fresh();
    await extractArchive(zip, out, "zip", { maxBytes: 1 << 20, reserveFreeBytes: 0 });
    expect(readFileSync(join(out, "bin/tool"), "utf8")).toContain("echo hi");
    expect(statSync(join(out, "bin/tool")).mode & 0o111).not.toBe(0);

    const tar = tarOf(
      (dir) => {
        mkdirSync(join(dir, "bin"));
        writeFileSync(join(dir, "bin/tool"), "x", { mode: 0o755 });
      },
      ["bin"],
    );
    expect(await archiveKindOf(tar)).toBe("tar.gz");
    const tarOut = fresh();
    await extractArchive(tar, tarOut, "tar.gz", { maxBytes: 1 << 20, reserveFreeBytes: 0 });
    expect(readFileSync(join(tarOut, "bin/tool"), "utf8")).toBe("x");
    const plain = join(fresh(), "plain");
    writeFileSync(plain, "just a binary");
    expect(await archiveKindOf(plain)).toBe("none");
  });

  it.each(["../evil", "a/../../evil", "/etc/passwd", "C:/Windows/evil", "..\\evil"])(
    "refuses the entry path %j",
    (path) => {
      expect(() => assertContainedPath(path)).toThrow(HostileArchiveError);
    },
  );

  it("refuses a zip with a path that climbs out, or a symbolic link, and writes nothing", async () => {
    for (const zip of [
      await zipOf([
        { name: "ok.txt", data: "1" },
        { name: "sub/../../evil.txt", data: "x" },
      ]).catch(() => null),
      await zipOf([{ name: "ok.txt" }, { name: "link", symlinkTo: "/etc/passwd" }]),
    ]) {
      if (zip === null) continue; // yazl itself refuses to write some hostile names
      const out = fresh();
      await expect(extractArchive(zip, out, "zip", { maxBytes: 1 << 20, reserveFreeBytes: 0 })).rejects.toThrow(
        HostileArchiveError,
      );
      expect(readdirSync(out)).toEqual([]);
    }
  });

  it("refuses a tar with '..', an absolute path or a link, and writes nothing", async () => {
    // GNU tar cleans '..' out of names it writes, so the hostile one is made with node-tar.
    const dotsDir = fresh();
    mkdirSync(join(dotsDir, "sub"));
    writeFileSync(join(dotsDir, "evil"), "x");
    const withDots = join(fresh(), "dots.tar.gz");
    await createTar({ gzip: true, file: withDots, cwd: join(dotsDir, "sub"), preservePaths: true }, ["../evil"]);
    const withLink = tarOf((dir) => symlinkSync("/etc/passwd", join(dir, "link")), ["link"]);
    const victimDir = fresh();
    const victim = join(victimDir, "f");
    writeFileSync(victim, "x");
    const absolute = join(fresh(), "abs.tar.gz");
    execFileSync("tar", ["-czPf", absolute, victim]);
    for (const tar of [withDots, withLink, absolute]) {
      const out = fresh();
      await expect(extractArchive(tar, out, "tar.gz", { maxBytes: 1 << 30, reserveFreeBytes: 0 })).rejects.toThrow(
        HostileArchiveError,
      );
      expect(readdirSync(out)).toEqual([]);
    }
    expect(existsSync(join(tmpdir(), "evil"))).toBe(false);
  });

  it("refuses an archive that unpacks to more than allowed", async () => {
    const zip = await zipOf([{ name: "big", data: "x".repeat(10_000) }]);
    await expect(extractArchive(zip, fresh(), "zip", { maxBytes: 1_000, reserveFreeBytes: 0 })).rejects.toThrow(
      /more than 1000 bytes/,
    );
  });

  it("counts every byte written, whatever was declared, and refuses too many entries", async () => {
    const { UnpackBudget, UnpackLimitError } = await import("../../../src/tools/unpack-budget.ts");
    const budget = await UnpackBudget.open({ maxBytes: 1_000, reserveFreeBytes: 0, maxEntries: 2 }, fresh());
    await budget.checkDeclared(10);
    await budget.take(600);
    await expect(budget.take(600)).rejects.toMatchObject({ code: "EDGE_UNPACK_TOO_LARGE" });
    budget.countEntry();
    budget.countEntry();
    expect(() => budget.countEntry()).toThrow(UnpackLimitError);
    await expect(
      UnpackBudget.open({ maxBytes: 1_000, reserveFreeBytes: Number.MAX_SAFE_INTEGER }, fresh()),
    ).rejects.toMatchObject({ code: "EDGE_UNPACK_NO_SPACE" });
  });

  it("refuses a tar.gz whose gzip holds another compressed layer, and one that is cut short, leaving nothing", async () => {
    const tar = tarOf((dir) => writeFileSync(join(dir, "tool"), "x".repeat(100_000)), ["tool"]);
    const doubled = join(fresh(), "doubled.tar.gz");
    execFileSync("sh", ["-c", `gzip -c ${tar} | gzip -c > ${doubled}`]);
    const truncated = join(fresh(), "truncated.tar.gz");
    writeFileSync(truncated, readFileSync(tar).subarray(0, 200));
    for (const archive of [doubled, truncated]) {
      const out = fresh();
      await expect(extractArchive(archive, out, "tar.gz", { maxBytes: 1 << 20, reserveFreeBytes: 0 })).rejects.toThrow(
        HostileArchiveError,
      );
      expect(readdirSync(out)).toEqual([]);
    }
  });
});

describe("placeholders", () => {
  const context = {
    machineId: "m1",
    serverUrl: "nats://h:4222",
    toolPath: "/opt/t",
    assetPaths: { cfg: "/opt/t/cfg.json" },
  };
  it("fills the known ones and keeps each argument whole", () => {
    expect(
      resolvePlaceholders(
        ["--id=${client.machineId}", "${client.serverUrl}", "--cfg", "${client.assetPath.cfg}", "a b; rm -rf /"],
        context,
      ),
    ).toEqual(["--id=m1", "nats://h:4222", "--cfg", "/opt/t/cfg.json", "a b; rm -rf /"]);
  });
  it.each(["${client.secret}", "${client.assetPath.missing}", "${}"])("refuses %j", (argument) => {
    expect(() => resolvePlaceholders([argument], context)).toThrow(UnresolvedPlaceholderError);
  });
});

describe("recovery after a crash", () => {
  it("drops a half-installed folder and brings back the version set aside; keeps a finished one", async () => {
    const { recoverToolDir } = await import("../../../src/tools/installer.ts");
    const tools = fresh();
    mkdirSync(join(tools, "t"));
    writeFileSync(join(tools, "t", "new"), "half");
    mkdirSync(join(tools, "t.previous"));
    writeFileSync(join(tools, "t.previous", "old"), "good");
    mkdirSync(join(tools, "t.staging"));
    await recoverToolDir(tools, "t", true);
    expect(readdirSync(tools)).toEqual(["t"]);
    expect(readdirSync(join(tools, "t"))).toEqual(["old"]);

    mkdirSync(join(tools, "t.previous"));
    await recoverToolDir(tools, "t", false);
    expect(readdirSync(tools)).toEqual(["t"]);
    expect(readdirSync(join(tools, "t"))).toEqual(["old"]);
  });
});
