import { describe, expect, it } from "vitest";
import type { TaskOutputChunk } from "../../../src/contracts/index.ts";
import { lastLinesOf, TaskOutput } from "../../../src/tasks/task-output.ts";
import { manualClock } from "../../helpers/manual-clock.ts";

const drive = (options: {
  maxOutputBytes?: number;
  chunkBytes?: number;
  refuse?: (chunk: TaskOutputChunk) => boolean;
}) => {
  const clock = manualClock();
  const sent: TaskOutputChunk[] = [];
  const output = new TaskOutput({
    taskId: "t",
    maxOutputBytes: options.maxOutputBytes ?? 1024 * 1024,
    clock,
    chunkBytes: options.chunkBytes ?? 16,
    send: async (chunk) => {
      if (options.refuse?.(chunk)) throw new Error("outbox refused");
      sent.push(chunk);
    },
  });
  return { clock, sent, output };
};

describe("TaskOutput: a task's output as numbered, bounded, UTF-8 safe chunks", () => {
  it("sends a chunk once enough is gathered, or 100 ms after its first byte, numbering both streams together", async () => {
    const { clock, sent, output } = drive({});
    output.write("stdout", Buffer.from("0123456789abcdefXY"));
    expect(sent.map((chunk) => chunk.data)).toEqual(["0123456789abcdef"]);
    output.write("stderr", Buffer.from("oops"));
    clock.advance(99);
    expect(sent).toHaveLength(1);
    clock.advance(1);
    expect(sent.map((chunk) => [chunk.seq, chunk.stream, chunk.data])).toEqual([
      [0, "stdout", "0123456789abcdef"],
      [1, "stdout", "XY"],
      [2, "stderr", "oops"],
    ]);
    const summary = await output.finish();
    expect(summary).toEqual({
      bytesSeen: { stdout: 18, stderr: 4 },
      truncated: false,
      chunks: 3,
      lastLines: { stdout: ["0123456789abcdefXY"], stderr: ["oops"] },
    });
  });

  it("never splits a character, however the pipe cut the bytes", async () => {
    const { sent, output } = drive({ chunkBytes: 4 });
    const text = "añ€😀 done";
    const bytes = Buffer.from(text);
    for (let at = 0; at < bytes.length; at += 3) output.write("stdout", bytes.subarray(at, at + 3));
    await output.finish();
    expect(sent.map((chunk) => chunk.data).join("")).toBe(text);
    for (const chunk of sent) expect(chunk.data).not.toContain("\uFFFD");
  });

  it("keeps at most maxOutputBytes (cut before a character, not inside it), counts the rest, and keeps the last lines of everything", async () => {
    const { sent, output } = drive({ maxOutputBytes: 10, chunkBytes: 1024 });
    output.write("stdout", Buffer.from("12345678€"));
    for (let line = 0; line < 1_000; line++) output.write("stdout", Buffer.from(`line ${line}\n`));
    const summary = await output.finish();
    expect(sent.map((chunk) => chunk.data).join("")).toBe("12345678");
    expect(summary.truncated).toBe(true);
    expect(summary.bytesSeen.stdout).toBe(
      11 + [...Array(1_000).keys()].reduce((sum, n) => sum + `line ${n}\n`.length, 0),
    );
    expect(summary.lastLines.stdout).toEqual([...Array(20).keys()].map((n) => `line ${980 + n}`));
  });

  it("says the output is not whole when the outbox refused a chunk", async () => {
    const { output } = drive({ refuse: (chunk) => chunk.seq === 0 });
    output.write("stdout", Buffer.from("0123456789abcdef"));
    expect((await output.finish()).truncated).toBe(true);
  });
});

describe("lastLinesOf", () => {
  it("keeps the last 20 lines within 2 KiB of a stream, a long last line cut at its start on a character", () => {
    expect(lastLinesOf(Buffer.from("a\r\nb\n\nc"))).toEqual(["a", "b", "", "c"]);
    const long = `start ${"é".repeat(3_000)}`;
    const lines = lastLinesOf(Buffer.from(`before\n${long}\n`).subarray(-4096));
    expect(lines).toHaveLength(1);
    expect(Buffer.byteLength(lines[0] as string)).toBeLessThanOrEqual(2048);
    expect(lines[0]).toMatch(/^é+$/);
  });
});
