import { describe, expect, it } from "vitest";
import { GracefulStop } from "../../../src/cli-kit/index.ts";
import { captureLog } from "../../helpers/log-capture.ts";
import { manualClock } from "../../helpers/manual-clock.ts";

/** A stop the test ends by hand, and the exit codes the process would have left with. */
function harness() {
  const clock = manualClock();
  const log = captureLog();
  const left: number[] = [];
  const steps: string[] = [];
  let finishStop: (error?: Error) => void = () => undefined;
  const graceful = new GracefulStop({
    logger: log.logger,
    program: "edge-test",
    deadlineMs: 5_000,
    clock,
    stop: () => {
      steps.push("stop");
      return new Promise<void>((resolve, reject) => {
        finishStop = (error) => (error ? reject(error) : resolve());
      });
    },
    leave: (code) => left.push(code),
  });
  return { clock, log, left, steps, graceful, finishStop: (error?: Error) => finishStop(error) };
}

const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("GracefulStop: how both programs stop", () => {
  it("a signal stops once and then runs what follows; the same kill arriving twice at once is not a second signal", async () => {
    const { clock, log, left, steps, graceful, finishStop } = harness();
    const onSignal = graceful.onSignal(() => {
      steps.push("then");
      left.push(0);
    });
    onSignal("SIGTERM");
    clock.advance(999);
    onSignal("SIGTERM");
    expect(steps).toEqual(["stop"]);
    expect(graceful.stopping).toBe(true);
    finishStop();
    await settled();
    expect(steps).toEqual(["stop", "then"]);
    expect(left).toEqual([0]);
    expect(log.matching("stopping edge-test")).toEqual([expect.objectContaining({ level: "info", signal: "SIGTERM" })]);
    expect(log.matching("second signal while stopping: leaving now")).toEqual([]);
  });

  it("a second signal a second or more later is an operator insisting: it leaves at once with 1", () => {
    const { clock, log, left, graceful } = harness();
    const onSignal = graceful.onSignal(() => undefined);
    onSignal("SIGTERM");
    clock.advance(1_000);
    onSignal("SIGINT");
    expect(left).toEqual([1]);
    expect(log.matching("second signal while stopping: leaving now")).toEqual([
      expect.objectContaining({ level: "warn", signal: "SIGINT" }),
    ]);
  });

  it("a stop that overruns the deadline leaves with 1, and a stop asked for again while stopping does nothing", () => {
    const { clock, log, left, steps, graceful } = harness();
    graceful.stopThen(() => undefined);
    graceful.stopThen(() => undefined);
    expect(steps).toEqual(["stop"]);
    clock.advance(4_999);
    expect(left).toEqual([]);
    clock.advance(1);
    expect(left).toEqual([1]);
    expect(log.matching("shutdown took too long: leaving now")).toEqual([
      expect.objectContaining({ level: "error", deadlineMs: 5_000 }),
    ]);
  });

  it("a stop that fails leaves with 1 and logs why, without running what was to follow", async () => {
    const { log, left, steps, graceful, finishStop } = harness();
    graceful.stopThen(() => {
      steps.push("then");
    });
    finishStop(new Error("the outbox would not close"));
    await settled();
    expect(steps).toEqual(["stop"]);
    expect(left).toEqual([1]);
    expect(log.matching("error while stopping")).toEqual([
      expect.objectContaining({
        level: "error",
        err: expect.objectContaining({ message: "the outbox would not close" }),
      }),
    ]);
  });
});
