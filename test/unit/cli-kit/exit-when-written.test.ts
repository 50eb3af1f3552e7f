import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { withDeadline } from "../../helpers/wait-for.ts";

const SCRIPT = join(import.meta.dirname, "../../fixtures/cli/write-then-exit.ts");

/** Runs the fixture and reads its stdout to the end: the bytes read, the last line and the exit code. */
async function run(mode: "at-once" | "when-written"): Promise<{ bytes: number; last: string; code: number | null }> {
  const child = spawn(process.execPath, [SCRIPT, mode, "20000"], { stdio: ["ignore", "pipe", "inherit"] });
  let bytes = 0;
  let tail = "";
  child.stdout.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    tail = (tail + chunk.toString("utf8")).slice(-10);
  });
  const ended = new Promise<void>((resolve) => child.stdout.once("end", () => resolve()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const code = await withDeadline("the fixture to exit", exited, 60_000);
  await withDeadline("its stdout to end", ended, 60_000);
  return { bytes, last: tail.trimEnd().split("\n").at(-1) ?? "", code };
}

describe("exitWhenWritten", () => {
  it("exits with the code once everything written to a pipe has left the process (process.exit at once cuts it)", async () => {
    const whole = 20_000 * 1_000 + "END\n".length;
    const atOnce = await run("at-once");
    expect(atOnce.code).toBe(3);
    // What the fix is for: Node's writes to a pipe are asynchronous, so an exit at once loses the end.
    expect(atOnce.bytes).toBeLessThan(whole);

    const written = await run("when-written");
    expect(written).toEqual({ bytes: whole, last: "END", code: 3 });
  });
});
