import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tarGzBomb, zipBomb } from "../../fixtures/tools/bombs.ts";

const CHILD = resolve(import.meta.dirname, "../../fixtures/tools/unpack-child.ts");
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** The defect held 1.2-2.35 GB; a streamed unpack stays near an idle process (about 80-170 MB). */
const PEAK_RSS_BOUND = 300 * MiB;

interface ChildOutcome {
  readonly ok: boolean;
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly peakRssBytes: number;
}

/** Unpacks in a child process of its own, whose peak memory is then the unpack's alone. */
function unpackInChild(
  archive: string,
  destination: string,
  kind: "zip" | "tar.gz",
  maxBytes: number,
  reserveFreeBytes = 0,
): Promise<ChildOutcome> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      process.execPath,
      [CHILD, archive, destination, kind, String(maxBytes), String(reserveFreeBytes)],
      { timeout: 120_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`unpack child failed: ${error.message}\n${stderr}`));
        resolvePromise(JSON.parse(stdout.trim().split("\n").at(-1) as string) as ChildOutcome);
      },
    );
  });
}

describe("archive bombs are refused while streaming, with bounded memory", () => {
  let dir: string;
  const bombs: Record<string, string> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ea-bombs-"));
    bombs.zerosTar = join(dir, "zeros-1g.tar.gz");
    bombs.speckledTar = join(dir, "speckled-1g.tar.gz");
    bombs.zerosZip = join(dir, "zeros-1g.zip");
    // About 1 MB, 4.5 MB and 1 MB on disk; 1 GiB each unpacked.
    await tarGzBomb(bombs.zerosTar, GiB, "zeros");
    await tarGzBomb(bombs.speckledTar, GiB, "speckled");
    await zipBomb(bombs.zerosZip, GiB, "zeros");
  }, 120_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const fresh = async (): Promise<string> => mkdtemp(join(dir, "out-"));

  it.each([
    ["a tar.gz of 1 GiB of zeros", "zerosTar", "tar.gz"],
    ["a tar.gz of 1 GiB of speckled zeros (under node-tar's own 1000:1 ratio check)", "speckledTar", "tar.gz"],
    ["a zip of 1 GiB of zeros", "zerosZip", "zip"],
  ] as const)(
    "refuses %s over the 64 MiB limit, leaves nothing behind, and never holds it in memory",
    async (_what, bomb, kind) => {
      const out = await fresh();
      // What is already in the folder (the download itself) stays.
      await writeFile(join(out, ".download-1234"), "the archive");
      const outcome = await unpackInChild(bombs[bomb] as string, out, kind, 64 * MiB);
      expect(outcome).toMatchObject({ ok: false, name: "UnpackLimitError", code: "EDGE_UNPACK_TOO_LARGE" });
      expect(outcome.message).toMatch(/unpacks to more than 67108864 bytes/);
      expect(outcome.peakRssBytes).toBeLessThan(PEAK_RSS_BOUND);
      expect(await readdir(out)).toEqual([".download-1234"]);
    },
    120_000,
  );

  it("streams a 1 GiB tar.gz to disk with bounded memory when the limit allows it (nothing is held whole)", async () => {
    const out = await fresh();
    try {
      const outcome = await unpackInChild(bombs.zerosTar as string, out, "tar.gz", 2 * GiB);
      expect(outcome).toMatchObject({ ok: true });
      expect(outcome.peakRssBytes).toBeLessThan(PEAK_RSS_BOUND);
      expect(await readdir(out)).toEqual(["zeros.bin"]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 120_000);

  it.each([
    ["tar.gz", "zerosTar"],
    ["zip", "zerosZip"],
  ] as const)(
    "refuses a %s that would leave less than the reserve free on the disk",
    async (kind, bomb) => {
      const out = await fresh();
      const info = await statfs(out);
      const free = info.bavail * info.bsize;
      // Room for 2 MiB above the reserve, whatever else the machine writes meanwhile.
      const outcome = await unpackInChild(bombs[bomb] as string, out, kind, 2 * GiB, free - 2 * MiB);
      expect(outcome).toMatchObject({ ok: false, name: "UnpackLimitError", code: "EDGE_UNPACK_NO_SPACE" });
      expect(outcome.message).toMatch(/not enough free disk to unpack/);
      expect(await readdir(out)).toEqual([]);
    },
    120_000,
  );
});
