import { afterEach, describe, expect, it } from "vitest";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { freeLoopbackPort, type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/** One sample's value from Prometheus' text format (`name{labels} value`), or undefined when absent. */
function sample(exposition: string, name: string, labels = ""): number | undefined {
  const line = exposition.split("\n").find((candidate) => candidate.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("Prometheus metrics (metricsListen)", () => {
  let server: NatsServerHandle | undefined;
  let agent: AgentProcess | undefined;

  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    await server?.dispose();
    server = undefined;
  });

  it("serves the outbox, link and command metrics on loopback, and they move: pending while the server is down, delivered after", async () => {
    server = await startNatsServer();
    await server.stop();
    const port = await freeLoopbackPort();
    agent = await startAgentProcess({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "mx-1",
      EDGE_AGENT_METRICS_LISTEN: `127.0.0.1:${port}`,
    });
    const scrape = async (): Promise<string> => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
      return response.text();
    };

    const offline = await waitFor("two events pending", async () => {
      const text = await scrape();
      return (sample(text, "edge_agent_outbox_pending_events") ?? 0) >= 2 ? text : undefined;
    });
    expect(sample(offline, "edge_agent_outbox_delivered_total")).toBe(0);
    expect(sample(offline, "edge_agent_link_state", '{state="connected"}')).toBe(0);
    expect(sample(offline, "edge_agent_outbox_oldest_pending_age_seconds")).toBeGreaterThanOrEqual(0);
    expect(offline).toMatch(/^edge_agent_info\{version="[^"]+",machine_id="mx-1"\} 1$/m);
    expect(offline).toContain("# TYPE edge_agent_outbox_delivered_total counter");
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);

    await server.start();
    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url });
    expect(setup.code, setup.stderr).toBe(0);
    const online = await waitFor(
      "the pending events delivered",
      async () => {
        const text = await scrape();
        return (sample(text, "edge_agent_outbox_delivered_total") ?? 0) >= 2 ? text : undefined;
      },
      30_000,
    );
    expect(sample(online, "edge_agent_link_state", '{state="connected"}')).toBe(1);

    const set = await runCli(["config", "set", "--machine", "mx-1", "heartbeatSeconds", "30"], {
      EDGE_AGENT_NATS_URL: server.url,
    });
    expect(set.code, set.stderr).toBe(0);
    await waitFor(
      "the config outcome counted",
      async () =>
        sample(await scrape(), "edge_agent_command_outcomes_total", '{command="config",outcome="applied"}') === 1,
      20_000,
    );
  });

  it("refuses a metrics address that is not loopback, before doing anything", async () => {
    const refused = await runCli(["run"], {
      EDGE_AGENT_METRICS_LISTEN: "0.0.0.0:9464",
      EDGE_AGENT_DATA_DIR: "/nonexistent/edge-agent-metrics",
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("EDGE_AGENT_METRICS_LISTEN");
    expect(refused.stderr).toContain("is not a loopback IP");
  });
});
