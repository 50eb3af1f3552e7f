import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { type AgentProcess, runCli, runScript, startAgentProcess } from "../../helpers/agent-process.ts";
import { freeLoopbackPort, type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const BIN = resolve(import.meta.dirname, "../../../bin/edge-agent.js");

/** Every directory and file under `root` with its permission bits. */
function modesUnder(root: string): Array<{ path: string; kind: "dir" | "file"; mode: number }> {
  const found: Array<{ path: string; kind: "dir" | "file"; mode: number }> = [];
  const visit = (path: string): void => {
    const info = statSync(path);
    found.push({ path, kind: info.isDirectory() ? "dir" : "file", mode: info.mode & 0o777 });
    if (info.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(root);
  return found;
}

describe("edge-agent for an operator", () => {
  let server: NatsServerHandle | undefined;
  let observer: NatsConnection | undefined;
  const agents: AgentProcess[] = [];
  const roots: string[] = [];
  const tempRoot = (): string => {
    const root = mkdtempSync(join(tmpdir(), "edge-agent-operator-"));
    roots.push(root);
    return root;
  };

  afterEach(async () => {
    for (const agent of agents.splice(0)) await agent.dispose();
    await observer?.close();
    observer = undefined;
    await server?.dispose();
    server = undefined;
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  it("`run --help` and `dev-setup --help` print their help and do nothing else", async () => {
    server = await startNatsServer();
    const root = tempRoot();
    const env = {
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_DATA_DIR: join(root, "data"),
      EDGE_AGENT_CONFIG_DIR: join(root, "config"),
    };
    const run = await runCli(["run", "--help"], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^usage: edge-agent run /);
    expect(run.stdout).toContain("exit codes:");
    // No daemon ran: it would have made its data dir before anything else.
    expect(existsSync(join(root, "data"))).toBe(false);

    const setup = await runCli(["dev-setup", "--help"], env);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.stdout).toMatch(/^usage: edge-agent dev-setup /);
    observer = await connect({ servers: server.url });
    const streams = await (await jetstreamManager(observer)).streams.names().next();
    expect(streams).toEqual([]);
  });

  it("the npm bin runs the CLI with this Node", async () => {
    const version = await runScript(BIN, ["version"], {});
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    const typo = await runScript(BIN, ["stauts"], {});
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe(
      'edge-agent: unknown command "stauts": did you mean "status"? (edge-agent --help lists the commands)\n',
    );
  });

  it("`status` tells the truth: events waiting for streams name dev-setup; after a clean stop, 'not running since', exit 1", async () => {
    // A server nobody ran dev-setup on: the agent connects, its events find no stream.
    server = await startNatsServer();
    const agent = await startAgentProcess({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "op-1" });
    agents.push(agent);
    const env = {
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_DATA_DIR: agent.dataDir,
      EDGE_AGENT_CONFIG_DIR: agent.configDir,
    };
    const waiting = await waitFor(
      "status naming dev-setup",
      async () => {
        const result = await runCli(["status"], env);
        return result.code === 0 && result.stdout.includes("edge-agent dev-setup") ? result : undefined;
      },
      30_000,
    );
    expect(waiting.stdout).toContain("live answer from the running agent");
    expect(waiting.stdout).toContain(
      "  delivery:   events wait in the outbox: the server has no stream for them (or JetStream is off); create the streams with edge-agent dev-setup",
    );
    // config and telemetry are lines for a person, not JSON.
    expect(waiting.stdout).toMatch(/\n {2}config: {5}running revision 0; no remote change yet\n/);
    expect(waiting.stdout).toMatch(/\n {2}telemetry: {2}\d+ samples? and \d+ inventor(y|ies) taken into the outbox/);
    expect(waiting.stdout).not.toMatch(/[{}]/);

    expect(await agent.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    const stopped = await runCli(["status"], env);
    expect(stopped.code, stopped.stdout + stopped.stderr).toBe(1);
    expect(stopped.stdout).toMatch(/^edge-agent \S+ {2}machine op-1 {2}not running since \d{4}-\d\d-\d\dT/);
    expect(stopped.stdout).not.toMatch(/connection: connected|uptime:/);
    const json = await runCli(["status", "--json"], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      running: false,
      source: "local-file",
      stoppedSince: expect.any(String),
    });
  }, 60_000);

  it("keeps its data and config dirs private: directories 0700, files 0600, whatever the umask", async () => {
    server = await startNatsServer();
    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url });
    expect(setup.code, setup.stderr).toBe(0);
    const root = tempRoot();
    const dirs = { dataDir: join(root, "state", "data"), configDir: join(root, "state", "config") };
    const agent = await startAgentProcess({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "op-2" }, dirs);
    agents.push(agent);
    // A remote configuration applied is kept in the config dir; the outbox's WAL exists once it stored.
    const set = await runCli(["config", "set", "--machine", "op-2", "heartbeatSeconds", "30"], {
      EDGE_AGENT_NATS_URL: server.url,
    });
    expect(set.code, set.stderr).toBe(0);
    await waitFor(
      "the applied configuration on disk",
      () => existsSync(join(dirs.configDir, "remote-config.json")),
      30_000,
    );
    await waitFor("the outbox's WAL", () => existsSync(join(dirs.dataDir, "outbox.db-wal")));
    await waitFor("the status file", () => existsSync(join(dirs.dataDir, "status.json")));
    const whileRunning = [...modesUnder(dirs.dataDir), ...modesUnder(dirs.configDir)];
    expect(await agent.stop("SIGTERM")).toEqual({ code: 0, signal: null });

    const names = whileRunning.map((entry) => entry.path.slice(root.length));
    expect(names).toEqual(
      expect.arrayContaining([
        "/state/data/outbox.db",
        "/state/data/outbox.db-wal",
        "/state/data/outbox.db-shm",
        "/state/data/status.json",
        "/state/data/agent.lock",
        "/state/config/remote-config.json",
      ]),
    );
    const afterStop = [...modesUnder(dirs.dataDir), ...modesUnder(dirs.configDir)];
    for (const entry of [...whileRunning, ...afterStop]) {
      expect({ path: entry.path, mode: entry.mode.toString(8) }).toEqual({
        path: entry.path,
        mode: entry.kind === "dir" ? "700" : "600",
      });
    }
    // The parent it had to create too.
    expect(statSync(join(root, "state")).mode & 0o777).toBe(0o700);
  }, 60_000);

  it("says why it cannot connect at warn level, rate-limited, with the attempts in between counted", async () => {
    const closedPort = await freeLoopbackPort();
    const agent = await startAgentProcess({
      EDGE_AGENT_NATS_URL: `nats://127.0.0.1:${closedPort}`,
      EDGE_AGENT_MACHINE_ID: "op-3",
    });
    agents.push(agent);
    const failureLines = (): Array<Record<string, unknown>> =>
      agent
        .logs()
        .filter(
          (line) => String(line.msg).startsWith("NATS connection") && (line.level === "error" || line.level === "warn"),
        );
    // The first failure at once; the same failure again after the 30 s interval, with the count.
    const lines = await waitFor(
      "a second failure line at warn",
      () => (failureLines().length >= 2 ? failureLines() : undefined),
      55_000,
      500,
    );
    // No server answering is the expected offline case: warn, not error.
    expect(lines[0]).toMatchObject({
      level: "warn",
      reason: "connection refused",
      msg: "NATS connection failed; retrying (the reason is in `edge-agent status`)",
    });
    expect(lines[1]).toMatchObject({
      level: "warn",
      reason: "connection refused",
      msg: "NATS connection still failing; retrying",
    });
    expect(Number(lines[1]?.failedSinceLastLine)).toBeGreaterThanOrEqual(1);
    // Every attempt is still there at debug level.
    expect(
      agent.logs().filter((line) => line.level === "debug" && line.msg === "NATS connection still failing; retrying")
        .length,
    ).toBeGreaterThanOrEqual(1);
  }, 75_000);
});
