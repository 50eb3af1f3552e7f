import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LinkInPathError, linkFreeDirectory, placeFileWithoutLinks } from "../../../src/runtime/link-free-path.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

/** A tool folder, a folder outside it, and a file to place. */
function layout(): { root: string; outside: string; source: string } {
  const base = scratchDir("ea-links-");
  const root = join(base, "tool");
  const outside = join(base, "elsewhere");
  mkdirSync(join(root, "bin"), { recursive: true });
  mkdirSync(outside);
  const source = join(base, "download");
  writeFileSync(source, "pushed\n");
  return { root, outside, source };
}

describe("placing a file without following symbolic links", () => {
  it("writes through real folders, making the missing ones, and replaces a file keeping its mode", async () => {
    const { root, source } = layout();
    await placeFileWithoutLinks(root, "conf/deep/settings.ini", source);
    expect(readFileSync(join(root, "conf/deep/settings.ini"), "utf8")).toBe("pushed\n");
    expect(statSync(join(root, "conf/deep/settings.ini")).mode & 0o777).toBe(0o600);

    writeFileSync(join(root, "bin/run.sh"), "old", { mode: 0o755 });
    await placeFileWithoutLinks(root, "bin/run.sh", source);
    expect(readFileSync(join(root, "bin/run.sh"), "utf8")).toBe("pushed\n");
    expect(statSync(join(root, "bin/run.sh")).mode & 0o777).toBe(0o755);
    // No temporary left beside it.
    expect(readdirSync(join(root, "bin"))).toEqual(["run.sh"]);
  });

  it("refuses a folder on the way that is a link (bin/out -> elsewhere), naming it, and writes nothing there", async () => {
    const { root, outside, source } = layout();
    symlinkSync(outside, join(root, "bin/out"));
    const refused = await placeFileWithoutLinks(root, "bin/out/pwned.txt", source).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(LinkInPathError);
    expect(refused).toMatchObject({ code: "EDGE_PATH_THROUGH_LINK", link: "bin/out" });
    expect((refused as Error).message).toBe(
      `"bin/out" is a symbolic link (to ${JSON.stringify(outside)}): files are never written through a link`,
    );
    expect(readdirSync(outside)).toEqual([]);
    // Deeper, with folders still to make behind the link: nothing is made outside either.
    await expect(placeFileWithoutLinks(root, "bin/out/a/b/c.txt", source)).rejects.toThrow(LinkInPathError);
    expect(readdirSync(outside)).toEqual([]);
  });

  it("refuses a link as the file itself, as the folder written into, and a dangling one", async () => {
    const { root, outside, source } = layout();
    writeFileSync(join(outside, "victim"), "original");
    symlinkSync(join(outside, "victim"), join(root, "bin/config"));
    await expect(placeFileWithoutLinks(root, "bin/config", source)).rejects.toMatchObject({ link: "bin/config" });
    expect(readFileSync(join(outside, "victim"), "utf8")).toBe("original");

    symlinkSync(join(outside, "not-yet"), join(root, "dangling"));
    await expect(placeFileWithoutLinks(root, "dangling/x", source)).rejects.toMatchObject({ link: "dangling" });
    await expect(placeFileWithoutLinks(root, "dangling", source)).rejects.toMatchObject({ link: "dangling" });
    expect(existsSync(join(outside, "not-yet"))).toBe(false);

    const linkedRoot = join(root, "..", "linked-tool");
    symlinkSync(outside, linkedRoot);
    await expect(placeFileWithoutLinks(linkedRoot, "x", source)).rejects.toThrow(LinkInPathError);
    expect(readdirSync(outside)).toEqual(["victim"]);
  });

  it("refuses a file standing where a folder goes, and a folder where the file goes", async () => {
    const { root, source } = layout();
    writeFileSync(join(root, "bin/tool"), "x");
    await expect(placeFileWithoutLinks(root, "bin/tool/x", source)).rejects.toThrow(
      /"bin\/tool" is a file, not a folder/,
    );
    await expect(placeFileWithoutLinks(root, "bin", source)).rejects.toThrow(/"bin" is a folder, not a file/);
  });

  it("answers a folder made of real folders, and only checks when told not to create", async () => {
    const { root } = layout();
    expect(await linkFreeDirectory(root, "a/b")).toBe(join(root, "a/b"));
    await expect(linkFreeDirectory(root, "c/d", false)).rejects.toThrow(/"c" does not exist/);
    expect(existsSync(join(root, "c"))).toBe(false);
  });
});
