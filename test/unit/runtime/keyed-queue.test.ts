import { describe, expect, it } from "vitest";
import { KeyedSerialQueue } from "../../../src/runtime/keyed-queue.ts";
import { settle } from "../../helpers/manual-clock.ts";

describe("KeyedSerialQueue", () => {
  /** A job that runs until released, recording when it starts. */
  const gate = (log: string[], name: string): { job: () => Promise<string>; release: () => void } => {
    let release: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (release = resolve));
    return {
      job: async () => {
        log.push(`start ${name}`);
        await done;
        return name;
      },
      release: () => release(),
    };
  };
  it("runs one job at a time per key, in order, while other keys go on", async () => {
    const queue = new KeyedSerialQueue(3);
    const log: string[] = [];
    const x1 = gate(log, "x1");
    const x2 = gate(log, "x2");
    const y1 = gate(log, "y1");
    const results = [queue.run("x", x1.job), queue.run("x", x2.job), queue.run("y", y1.job)];
    await settle();
    // x1 hangs: x2 waits behind it, y1 does not.
    expect(log).toEqual(["start x1", "start y1"]);
    y1.release();
    x1.release();
    await settle();
    expect(log).toEqual(["start x1", "start y1", "start x2"]);
    x2.release();
    expect(await Promise.all(results)).toEqual(["x1", "x2", "y1"]);
    await queue.idle();
    expect(queue.size).toBe(0);
  });

  it("runs at most `concurrency` jobs at once, and a failing job does not stop its key", async () => {
    const queue = new KeyedSerialQueue(2);
    const log: string[] = [];
    const a = gate(log, "a");
    const b = gate(log, "b");
    const c = gate(log, "c");
    const running = [queue.run("a", a.job), queue.run("b", b.job), queue.run("c", c.job)];
    await settle();
    expect(log).toEqual(["start a", "start b"]);
    a.release();
    await settle();
    expect(log).toEqual(["start a", "start b", "start c"]);
    b.release();
    c.release();
    await Promise.all(running);

    await expect(queue.run("a", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    await expect(queue.run("a", () => Promise.resolve("after"))).resolves.toBe("after");
  });
});
