import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../helpers/agent-process.ts";
import { freeLoopbackPort, startNatsServer, type NatsServerHandle } from "../../helpers/nats-server.ts";

describe("edge-agent enroll", () => {
  let server: NatsServerHandle;
  let configDir: string;

  beforeEach(async () => {
    server = await startNatsServer({ configLines: ['authorization { token: "s3cret" }'] });
    configDir = await mkdtemp(join(tmpdir(), "edge-agent-enroll-"));
  });
  afterEach(async () => {
    await server.dispose();
    await rm(configDir, { recursive: true, force: true });
  });

  it("writes the settings file, proves the link with the given token, and the daemon's settings read it back", async () => {
    const result = await runCli(["enroll", "--server", server.url, "--token", "s3cret", "--machine-id", "enrolled-1", "--tag", "site=lab", "--config-dir", configDir], {});
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/link OK: connected to 127\.0\.0\.1:\d+/);
    const file = join(configDir, "settings.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ natsUrl: server.url, machineId: "enrolled-1", auth: { token: "s3cret" }, tags: { site: "lab" } });
  });

  it("keeps the settings but fails (exit 1) when the link test fails, and refuses a bad server (exit 2)", async () => {
    const wrongToken = await runCli(["enroll", "--server", server.url, "--token", "nope", "--config-dir", configDir], {});
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toMatch(/settings saved, but the link test failed/);
    const unreachable = await runCli(["enroll", "--server", `nats://127.0.0.1:${await freeLoopbackPort()}`, "--config-dir", configDir], {});
    expect(unreachable.code).toBe(1);
    const bad = await runCli(["enroll", "--server", "ftp://x", "--config-dir", configDir], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid setting --server/);
  });
});
