import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../helpers/agent-process.ts";
import { freeLoopbackPort, type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createSigner } from "../../helpers/signing.ts";

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
    const result = await runCli(
      [
        "enroll",
        "--allow-unsigned",
        "--server",
        server.url,
        "--token",
        "s3cret",
        "--machine-id",
        "enrolled-1",
        "--tag",
        "site=lab",
        "--config-dir",
        configDir,
      ],
      {},
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/link OK: connected to 127\.0\.0\.1:\d+/);
    const file = join(configDir, "settings.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({
      natsUrl: server.url,
      machineId: "enrolled-1",
      auth: { token: "s3cret" },
      tags: { site: "lab" },
      allowUnsigned: true,
    });
  });

  it("refuses a production enrollment without the platform's signing key (exit 2), and writes the key it is given", async () => {
    const withoutKey = await runCli(
      ["enroll", "--server", server.url, "--token", "s3cret", "--config-dir", configDir],
      {},
    );
    expect(withoutKey.code).toBe(2);
    expect(withoutKey.stderr).toMatch(/--config-signing-key.*needs the platform's signing key.*--allow-unsigned/);
    const key = createSigner().publicKey;
    const withKey = await runCli(
      ["enroll", "--server", server.url, "--token", "s3cret", "--config-signing-key", key, "--config-dir", configDir],
      {},
    );
    expect(withKey.code, withKey.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(configDir, "settings.json"), "utf8"))).toMatchObject({
      configSigningKey: key,
      allowUnsigned: false,
    });
  });

  it("enrolls a machine of an OpenFrame platform: its conventions, download hosts, token path, and the secret copied 0600", async () => {
    const secretSource = join(configDir, "given.secret");
    await writeFile(secretSource, "0123456789abcdef\n", { mode: 0o600 });
    const result = await runCli(
      [
        "enroll",
        "--server",
        server.url,
        "--token",
        "s3cret",
        "--platform",
        "openframe",
        "--allowed-download-hosts",
        "github.com,*.githubusercontent.com",
        "--openframe-secret-file",
        secretSource,
        "--openframe-token-path",
        "/var/lib/openframe/shared_token.enc",
        "--config-dir",
        configDir,
      ],
      {},
    );
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(configDir, "settings.json"), "utf8"))).toEqual(
      expect.objectContaining({
        platform: "openframe",
        toolPolicy: { allowedDownloadHosts: ["github.com", "*.githubusercontent.com"] },
        openframe: {
          secretFile: join(configDir, "openframe.secret"),
          tokenPath: "/var/lib/openframe/shared_token.enc",
        },
      }),
    );
    expect((await stat(join(configDir, "openframe.secret"))).mode & 0o777).toBe(0o600);
  });

  it("keeps a working settings file when the link test fails (exit 1), and refuses a bad server (exit 2)", async () => {
    const working = await runCli(
      ["enroll", "--allow-unsigned", "--server", server.url, "--token", "s3cret", "--config-dir", configDir],
      {},
    );
    expect(working.code, working.stderr).toBe(0);
    const file = join(configDir, "settings.json");
    const before = await readFile(file, "utf8");

    const wrongToken = await runCli(
      ["enroll", "--allow-unsigned", "--server", server.url, "--token", "nope", "--config-dir", configDir],
      {},
    );
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toMatch(/the link test failed, nothing written .*settings\.json is as it was/);
    const unreachable = await runCli(
      [
        "enroll",
        "--allow-unsigned",
        "--server",
        `nats://127.0.0.1:${await freeLoopbackPort()}`,
        "--config-dir",
        configDir,
      ],
      {},
    );
    expect(unreachable.code).toBe(1);
    expect(await readFile(file, "utf8")).toBe(before);

    const bad = await runCli(["enroll", "--allow-unsigned", "--server", "ftp://x", "--config-dir", configDir], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid setting --server/);
  });

  it("checks everything before writing: a missing creds file under the flag given, a user without a password", async () => {
    const fresh = join(configDir, "fresh");
    const missing = await runCli(
      [
        "enroll",
        "--allow-unsigned",
        "--server",
        server.url,
        "--creds-file",
        "/nonexistent/agent.creds",
        "--config-dir",
        fresh,
      ],
      {},
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/invalid setting --creds-file: cannot read \/nonexistent\/agent\.creds/);
    const noPassword = await runCli(
      ["enroll", "--allow-unsigned", "--server", server.url, "--user", "u", "--config-dir", fresh],
      {},
    );
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toMatch(/invalid setting --user: a user needs --password/);
    await expect(stat(fresh)).rejects.toThrow(/ENOENT/);
  });
});
