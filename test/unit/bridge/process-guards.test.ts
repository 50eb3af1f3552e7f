import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { guardProcess, type ProcessEventSource } from "../../../src/bridge/cli/process-guards.ts";
import { captureLog } from "../../helpers/log-capture.ts";

describe("the bridge's process guards", () => {
  it("an unhandled rejection stops the bridge (it does not go on as if nothing happened); an uncaught exception leaves at once", () => {
    const events = new EventEmitter();
    const log = captureLog();
    const calls: string[] = [];
    const remove = guardProcess(events as unknown as ProcessEventSource, log.logger, {
      stop: () => calls.push("stop"),
      leaveNow: () => calls.push("leave"),
    });
    events.emit("unhandledRejection", new Error("a promise nobody awaited"));
    expect(calls).toEqual(["stop"]);
    expect(log.matching("unhandled promise rejection")).toEqual([
      expect.objectContaining({
        level: "fatal",
        err: expect.objectContaining({ message: "a promise nobody awaited" }),
      }),
    ]);
    events.emit("uncaughtException", new Error("thrown from a callback"));
    expect(calls).toEqual(["stop", "leave"]);
    remove();
    expect(events.listenerCount("unhandledRejection")).toBe(0);
    expect(events.listenerCount("uncaughtException")).toBe(0);
  });
});
