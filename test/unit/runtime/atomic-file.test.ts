import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeAbandonedTemporaries, writeFileAtomic } from "../../../src/runtime/atomic-file.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { canMountTmpfs, mountTmpfs, TMPFS_SKIP_REASON, type TmpfsHandle } from "../../helpers/tmpfs.ts";

const temporaries = (dir: string): string[] => readdirSync(dir).filter((name) => name.endsWith(".tmp"));

describe("writeFileAtomic", () => {
  let tmpfs: TmpfsHandle | null = null;
  afterAll(() => tmpfs?.unmount());

  it("cleans up, at start, the temporaries a writer killed between write and rename left, and nothing else", async () => {
    const dir = scratchDir("ea-atomic-");
    writeFileSync(join(dir, "slowpoke.state.json"), "{}");
    writeFileSync(join(dir, "slowpoke.state.json.f25ca33c1103.tmp"), '{"half');
    writeFileSync(join(dir, "notes.tmp"), "someone else's");
    expect(await removeAbandonedTemporaries(dir)).toEqual(["slowpoke.state.json.f25ca33c1103.tmp"]);
    expect(readdirSync(dir).sort()).toEqual(["notes.tmp", "slowpoke.state.json"]);
    expect(await removeAbandonedTemporaries(join(dir, "absent"))).toEqual([]);
  });

  it("removes its temporary when the rename fails, and rethrows", async () => {
    const dir = scratchDir("ea-atomic-");
    // A non-empty directory where the file should go: the rename over it fails.
    mkdirSync(join(dir, "status.json"));
    writeFileSync(join(dir, "status.json", "inside"), "x");
    await expect(writeFileAtomic(join(dir, "status.json"), "{}")).rejects.toThrow();
    expect(temporaries(dir)).toEqual([]);
  });

  it.skipIf(!canMountTmpfs())(
    `removes its temporary when the disk is full, and leaves the old content (${TMPFS_SKIP_REASON})`,
    async () => {
      tmpfs = mountTmpfs(256 * 1024);
      const dir = (tmpfs as TmpfsHandle).dir;
      const path = join(dir, "status.json");
      await writeFileAtomic(path, "old\n");
      tmpfs?.fill();
      for (let attempt = 0; attempt < 3; attempt++) {
        await expect(writeFileAtomic(path, "new ".repeat(4096))).rejects.toMatchObject({ code: "ENOSPC" });
      }
      expect(temporaries(dir)).toEqual([]);
      expect(readFileSync(path, "utf8")).toBe("old\n");
    },
  );
});
