import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const CLI = resolve(import.meta.dirname, "../../../src/cli/main.ts");

interface Listed {
  readonly state: string;
  readonly sequence: number;
  readonly type: string;
  readonly subject: string;
  readonly bytes: number;
  readonly settledAt: string | null;
  readonly summary: string;
}

const parseLines = (text: string): Listed[] =>
  text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Listed);

describe("edge-agent events", () => {
  let server: NatsServerHandle | undefined;
  let agent: AgentProcess | undefined;

  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    await server?.dispose();
    server = undefined;
  });

  it("lists events pending while the server is down, then the same events as sent, read-only beside the running agent", async () => {
    server = await startNatsServer();
    await server.stop();
    agent = await startAgentProcess({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "ev-1" });
    const env = {
      EDGE_AGENT_DATA_DIR: agent.dataDir,
      EDGE_AGENT_CONFIG_DIR: agent.configDir,
      EDGE_AGENT_NATS_URL: server.url,
    };

    const pending = await waitFor("the announcement and hostname listed as pending", async () => {
      const listed = parseLines((await runCli(["events", "--json"], env)).stdout);
      return listed.filter((entry) => entry.state === "pending").length >= 2 ? listed : undefined;
    });
    expect(pending.slice(0, 2)).toMatchObject([
      {
        state: "pending",
        sequence: 1,
        type: "installed-agent",
        subject: "machine.ev-1.installed-agent",
        settledAt: null,
      },
      { state: "pending", sequence: 2, type: "hostname", subject: "machine.ev-1.hostname", settledAt: null },
    ]);
    expect(pending[0]?.summary).toContain('"agentType":"edge-agent"');
    expect(pending[0]?.bytes).toBeGreaterThan(0);

    const human = await runCli(["events", "--subject", "machine.*.hostname"], env);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\S+Z\s+pending\s+#2\s+hostname\s+machine\.ev-1\.hostname\s+\d+ B\s+\{"hostname":/,
    );

    // A follower started now sees the same events again when they are sent.
    const follower = spawn(process.execPath, [CLI, "events", "--follow", "--json", "--subject", "machine.ev-1.>"], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let followed = "";
    follower.stdout.on("data", (chunk: Buffer) => (followed += chunk.toString()));
    const followerExit = new Promise<number | null>((resolveExit) =>
      follower.once("exit", (code) => resolveExit(code)),
    );
    try {
      await waitFor("the follower's first listing", () => parseLines(followed).some((entry) => entry.sequence === 1));

      await server.start();
      const admin = await connect({ servers: server.url });
      await createPlatformStreams(admin);
      await admin.close();

      const sent = await waitFor(
        "sequences 1 and 2 listed as sent",
        async () => {
          const listed = parseLines((await runCli(["events", "--json"], env)).stdout);
          const done = listed.filter((entry) => entry.state === "sent" && entry.sequence <= 2);
          return done.length === 2 ? listed : undefined;
        },
        30_000,
      );
      expect(sent.filter((entry) => entry.sequence <= 2).map((entry) => [entry.state, entry.type])).toEqual([
        ["sent", "installed-agent"],
        ["sent", "hostname"],
      ]);
      expect(Date.parse(sent[0]?.settledAt ?? "")).toBeGreaterThan(0);

      await waitFor("the follower printing sequence 1 as sent", () =>
        parseLines(followed).some((entry) => entry.sequence === 1 && entry.state === "sent"),
      );
      const states = parseLines(followed)
        .filter((entry) => entry.sequence === 1)
        .map((entry) => entry.state);
      expect(states).toEqual(["pending", "sent"]);
    } finally {
      follower.kill("SIGINT");
    }
    expect(await followerExit).toBe(0);
  });

  it("refuses a malformed subject pattern and says when there is no outbox", async () => {
    const missing = await runCli(["events"], { EDGE_AGENT_DATA_DIR: "/nonexistent/edge-agent-events" });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no outbox at /nonexistent/edge-agent-events/outbox.db");
    const bad = await runCli(["events", "--subject", "machine.>.telemetry"], {
      EDGE_AGENT_DATA_DIR: "/nonexistent/edge-agent-events",
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("has '>' before its last token");
  });

  it("prints its help and does nothing else", async () => {
    const help = await runCli(["events", "--help"], { EDGE_AGENT_DATA_DIR: "/nonexistent/edge-agent-events" });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("usage: edge-agent events");
  });
});
