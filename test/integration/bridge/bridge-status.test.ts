import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBridgeCli } from "../../helpers/bridge-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

/** What an instance that has since ended left in its data dir: it was connected when it wrote it. */
function leftStatusFile(dataDir: string, pid: number): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    join(dataDir, "status.json"),
    JSON.stringify({
      instanceId: "gone-1",
      group: "edge-bridge",
      version: "0.1.0",
      pid,
      startedAt: "2026-12-07T01:00:00.000Z",
      reportedAt: "2026-12-07T01:05:00.000Z",
      nats: { connected: true, server: "127.0.0.1:4222" },
      kafkaBrokers: ["127.0.0.1:9092"],
      liveInstances: 1,
      shardsHeld: [],
      shards: [],
      fatal: null,
      memory: { rssBytes: 0, heapUsedBytes: 0, heapTotalBytes: 0, externalBytes: 0, arrayBuffersBytes: 0 },
    }),
  );
}

describe("edge-bridge status with no instance running", () => {
  let server: NatsServerHandle;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server.dispose();
  });

  it("says no instance answered and the last one is not running, with no stale 'connected', exit 1", async () => {
    const dataDir = join(scratchDir("edge-bridge-status-"), "data");
    // A pid no process has: the kernel's pid_max is far below it.
    leftStatusFile(dataDir, 2 ** 30);
    const result = await runBridgeCli(["status"], { EDGE_BRIDGE_NATS_URL: server.url, EDGE_BRIDGE_DATA_DIR: dataDir });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toContain(`note: no edge-bridge instance answered on ${server.url}`);
    expect(result.stdout).toMatch(/instance gone-1 \(group edge-bridge, version 0\.1\.0\) not running since \d{4}-/);
    expect(result.stdout).toContain("its NATS link was up to 127.0.0.1:4222");
    expect(result.stdout).not.toMatch(/connected to|no responders|\$SRV/);

    const json = await runBridgeCli(["status", "--json"], {
      EDGE_BRIDGE_NATS_URL: server.url,
      EDGE_BRIDGE_DATA_DIR: dataDir,
    });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ source: "file", running: false, stoppedSince: expect.any(String) });
  });

  it("with nothing left either: one line, exit 1", async () => {
    const dataDir = join(scratchDir("edge-bridge-status-"), "data");
    const result = await runBridgeCli(["status"], { EDGE_BRIDGE_NATS_URL: server.url, EDGE_BRIDGE_DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      `note: no edge-bridge instance answered on ${server.url}\nno edge-bridge instance found\n`,
    );
  });
});
