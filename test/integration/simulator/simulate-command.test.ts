import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freeLoopbackPort, type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor, withDeadline } from "../../helpers/wait-for.ts";

const CLI = resolve(import.meta.dirname, "../../../src/cli/main.ts");
/** Only bounds a failing test: stopping five agents takes well under a second. */
const EXIT_DEADLINE_MS = 15_000;

describe("edge-agent simulate", () => {
  let server: NatsServerHandle;
  let monitorPort: number;
  let root: string;

  /** The client connections the server has now, by name (its monitoring endpoint /connz). */
  const connectionNames = async (): Promise<string[]> => {
    const response = await fetch(`http://127.0.0.1:${monitorPort}/connz?limit=1000`);
    const body = (await response.json()) as { connections?: Array<{ name?: string }> };
    return (body.connections ?? [])
      .map((connection) => connection.name ?? "")
      .filter((name) => name.startsWith("sim-"));
  };

  /** Runs the simulator until it has `count` connections, then SIGTERMs it; returns its exit and the names it connected with. */
  const runUntilConnectedThenTerm = async (
    count: number,
  ): Promise<{ code: number | null; names: string[]; output: string }> => {
    const child = spawn(
      process.execPath,
      [CLI, "simulate", "--agents", String(count), "--server", server.url, "--data-dir", root],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
    try {
      const names = await waitFor(
        `${count} simulated connections`,
        async () => {
          const now = await connectionNames();
          return now.length === count ? now.toSorted() : undefined;
        },
        60_000,
        200,
      );
      child.kill("SIGTERM");
      const code = await withDeadline("simulate's exit after SIGTERM", exited, EXIT_DEADLINE_MS).catch(
        (error: unknown) => {
          throw new Error(`${(error as Error).message}\n${output}`, { cause: error });
        },
      );
      return { code, names, output };
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  };

  beforeEach(async () => {
    monitorPort = await freeLoopbackPort();
    server = await startNatsServer({ configLines: [`http: "127.0.0.1:${monitorPort}"`] });
    const operator = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    await operator.close();
    root = await mkdtemp(join(tmpdir(), "edge-agent-simulate-"));
  });

  afterEach(async () => {
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it("runs N agents with their own connections, stops them all on SIGTERM with exit 0, and keeps their identities across restarts", async () => {
    const first = await runUntilConnectedThenTerm(5);
    expect(first.code, first.output).toBe(0);
    expect(first.names).toEqual(["sim-000000", "sim-000001", "sim-000002", "sim-000003", "sim-000004"]);
    // Every agent drained its link: none is left on the server.
    await waitFor("no simulated connection left", async () => (await connectionNames()).length === 0);
    expect((await readdir(root)).filter((name) => name.startsWith("sim-")).toSorted()).toEqual(first.names);

    const second = await runUntilConnectedThenTerm(5);
    expect(second.code, second.output).toBe(0);
    expect(second.names).toEqual(first.names);
  });

  it("refuses to run without --agents or --data-dir, with a clear reason and exit 2", async () => {
    const run = (args: string[]): Promise<{ code: number | null; stderr: string }> =>
      new Promise((resolveRun) => {
        const child = spawn(process.execPath, [CLI, "simulate", "--server", server.url, ...args], {
          stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.once("exit", (code) => resolveRun({ code, stderr }));
      });
    expect(await run(["--data-dir", root])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/simulate needs --agents/),
    });
    expect(await run(["--agents", "3"])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/simulate needs --data-dir/),
    });
    expect(await run(["--agents", "0", "--data-dir", root])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--agents must be a whole number of at least 1/),
    });
  });
});
