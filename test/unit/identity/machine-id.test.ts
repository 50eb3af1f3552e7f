import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MachineIdError, resolveMachineId } from "../../../src/identity/machine-id.ts";

describe("resolveMachineId", () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "ea-machine-id-"));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("refuses a stored id that names fleet-wide subjects", async () => {
    await writeFile(join(dataDir, "machine-id"), "all\n");
    await expect(resolveMachineId(undefined, dataDir)).rejects.toThrow(MachineIdError);
    await expect(resolveMachineId(undefined, dataDir)).rejects.toThrow(/reserved for fleet-wide subjects/);
  });

  it("keeps a generated id", async () => {
    const first = await resolveMachineId(undefined, dataDir);
    expect(await resolveMachineId(undefined, dataDir)).toBe(first);
  });
});
