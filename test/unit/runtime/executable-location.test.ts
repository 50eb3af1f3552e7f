import { chmod, chown, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assertSafeExecutableLocation, executableLocationProblem } from "../../../src/runtime/executable-location.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

const uid = process.getuid?.() ?? 0;

/** `<root>/a/b/tool`, every folder 0755 and the file 0755 (what the agent makes). */
async function toolIn(root: string): Promise<{ file: string; a: string; b: string }> {
  const a = join(root, "a");
  const b = join(a, "b");
  await mkdir(b, { recursive: true, mode: 0o755 });
  await chmod(a, 0o755);
  await chmod(b, 0o755);
  const file = join(b, "tool");
  await writeFile(file, "#!/bin/sh\n", { mode: 0o755 });
  await chmod(file, 0o755);
  return { file, a, b };
}

describe("where a program the agent runs may sit", () => {
  it("runs one whose file and every folder up to the root only root or its user may change", async () => {
    const { file } = await toolIn(scratchDir("ea-exec-"));
    expect(await executableLocationProblem(file, uid)).toBeNull();
    await assertSafeExecutableLocation(file, uid);
  });

  it("refuses one under a folder others may write, at any height", async () => {
    const { file, a, b } = await toolIn(scratchDir("ea-exec-"));
    await chmod(a, 0o775);
    expect(await executableLocationProblem(file, uid)).toMatch(/a is writable by other users \(mode 0775\)/);
    await chmod(a, 0o755);
    await chmod(b, 0o757);
    expect(await executableLocationProblem(file, uid)).toMatch(/b is writable by other users \(mode 0757\)/);
    await expect(assertSafeExecutableLocation(file, uid)).rejects.toMatchObject({
      code: "EDGE_UNSAFE_EXECUTABLE_LOCATION",
    });
  });

  it("takes a sticky folder others may write (like /tmp): none of them can rename what is in it", async () => {
    const { file, a } = await toolIn(scratchDir("ea-exec-"));
    await chmod(a, 0o1777);
    expect(await executableLocationProblem(file, uid)).toBeNull();
  });

  it("refuses a file others may write", async () => {
    const { file } = await toolIn(scratchDir("ea-exec-"));
    await chmod(file, 0o775);
    expect(await executableLocationProblem(file, uid)).toMatch(/tool is writable by others \(mode 0775\)/);
  });

  it("follows a link to where the file really is, and judges that place too", async () => {
    const root = scratchDir("ea-exec-");
    const { b } = await toolIn(root);
    const elsewhere = join(root, "elsewhere");
    await mkdir(elsewhere, { mode: 0o777 });
    await chmod(elsewhere, 0o777);
    await writeFile(join(elsewhere, "real-tool"), "#!/bin/sh\n", { mode: 0o755 });
    await symlink(join(elsewhere, "real-tool"), join(b, "linked-tool"));
    expect(await executableLocationProblem(join(b, "linked-tool"), uid)).toMatch(
      /elsewhere is writable by other users/,
    );
  });

  it("refuses a folder that belongs to another user, even one only it may write", async () => {
    const { file, a } = await toolIn(scratchDir("ea-exec-"));
    if (uid === 0) {
      await chown(a, 65534, 65534);
      expect(await executableLocationProblem(file, 0)).toMatch(/a belongs to uid 65534, neither root nor/);
    } else {
      // Not root: judged as another user (uid 4242), this user's folders are another user's.
      expect(await executableLocationProblem(file, 4242)).toMatch(/belongs to uid \d+, neither root nor/);
    }
  });
});
