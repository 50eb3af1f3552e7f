import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NATS_SERVER_RELEASES } from "../../../scripts/nats-server-runtime.ts";
import { agentPermissions, type NatsServerPermissions } from "../../../src/identity/permissions.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createSigner } from "../../helpers/signing.ts";

interface Verdict {
  readonly check: string;
  readonly verdict: "PASS" | "WARN" | "FAIL";
  readonly reason: string;
  readonly action?: string;
}

const verdicts = (stdout: string): Verdict[] =>
  stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Verdict);

const byCheck = (list: readonly Verdict[], check: string): Verdict | undefined =>
  list.find((entry) => entry.check === check);

/** A platform's public key, so the signing check passes where it is not the point. */
const SIGNING_KEY = createSigner().publicKey;

describe("edge-agent doctor against a real nats-server", () => {
  let server: NatsServerHandle | undefined;
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "edge-agent-doctor-"));
  });
  afterEach(async () => {
    await server?.dispose();
    server = undefined;
    await rm(root, { recursive: true, force: true });
  });

  const doctor = (env: Record<string, string>, json = true) =>
    runCli(["doctor", ...(json ? ["--json"] : [])], {
      EDGE_AGENT_DATA_DIR: join(root, "data"),
      EDGE_AGENT_CONFIG_DIR: join(root, "config"),
      EDGE_AGENT_MACHINE_ID: "doc-1",
      EDGE_AGENT_CONFIG_SIGNING_KEY: SIGNING_KEY,
      ...env,
    });

  // Both releases the suite supports, whichever one this run uses for the rest.
  it.each(Object.values(NATS_SERVER_RELEASES))(
    "says nats-server $version is supported, from the version its INFO announces",
    async ({ version }) => {
      server = await startNatsServer({ version });
      expect((await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url })).code).toBe(0);
      const json = await doctor({ EDGE_AGENT_NATS_URL: server.url });
      expect(byCheck(verdicts(json.stdout), "server version")).toEqual({
        check: "server version",
        verdict: "PASS",
        reason: `nats-server ${version} is supported (tested on 2.10.27 to 2.15.1)`,
      });
      const human = await doctor({ EDGE_AGENT_NATS_URL: server.url }, false);
      expect(human.stdout).toMatch(
        new RegExp(`^PASS  server version {16}  nats-server ${version.replaceAll(".", "\\.")} is supported`, "m"),
      );
    },
  );

  it("passes every check on a server with the platform's streams, and changes nothing there", async () => {
    server = await startNatsServer();
    expect((await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url })).code).toBe(0);
    const result = await doctor({ EDGE_AGENT_NATS_URL: server.url });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const list = verdicts(result.stdout);
    expect(list.filter((entry) => entry.verdict === "FAIL")).toEqual([]);
    for (const check of [
      "settings",
      "machine id",
      "platform",
      "signing",
      "downloads",
      "uninstall",
      "data dir",
      "program location",
      "tasks",
      "free space",
      "server reachable",
      "auth",
      "server version",
      "streams",
      "permissions: events",
      "permissions: commands",
      "permissions: remote config",
      "permissions: rpc and discovery",
      "permissions: inbox",
    ]) {
      expect(byCheck(list, check)?.verdict, check).toBe("PASS");
    }
    // Every supported server (2.10 and later) puts its time in JetStream answers: the skew is measured.
    expect(byCheck(list, "clock skew")?.verdict).toMatch(/PASS|WARN/);
    expect(byCheck(list, "clock skew")?.reason).toMatch(/this machine's clock is/);

    const admin = await connect({ servers: server.url });
    const manager = await jetstreamManager(admin);
    expect((await manager.streams.info("TELEMETRY")).state.messages).toBe(0);
    expect((await manager.streams.info("INSTALLED_AGENTS")).state.messages).toBe(0);
    expect((await manager.streams.info("TOOL_INSTALLATION")).state.consumer_count).toBe(0);
    await admin.close();

    const human = await doctor({ EDGE_AGENT_NATS_URL: server.url }, false);
    expect(human.stdout).toMatch(/^PASS {2}streams {25}\S/m);
  });

  it("says how commands are taken: signed, development mode (WARN, loudly), or none at all (FAIL)", async () => {
    server = await startNatsServer();
    expect((await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url })).code).toBe(0);
    const signing = async (env: Record<string, string>) =>
      byCheck(verdicts((await doctor({ EDGE_AGENT_NATS_URL: server?.url ?? "", ...env })).stdout), "signing");
    expect(await signing({})).toMatchObject({ verdict: "PASS" });
    expect(await signing({ EDGE_AGENT_CONFIG_SIGNING_KEY: "", EDGE_AGENT_ALLOW_UNSIGNED: "1" })).toMatchObject({
      verdict: "WARN",
      reason: expect.stringMatching(/^DEVELOPMENT MODE/),
    });
    const none = await doctor({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_CONFIG_SIGNING_KEY: "" });
    expect(none.code).toBe(1);
    expect(byCheck(verdicts(none.stdout), "signing")).toMatchObject({
      verdict: "FAIL",
      reason: expect.stringMatching(/every command and remote configuration is refused/),
    });
  });

  it("under OpenFrame's conventions, says what they loosen and what is missing, and checks where programs would run", async () => {
    server = await startNatsServer();
    expect((await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url })).code).toBe(0);
    const openframe = {
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_CONFIG_SIGNING_KEY: "",
      EDGE_AGENT_PLATFORM: "openframe",
    };
    const bare = verdicts((await doctor(openframe)).stdout);
    expect(byCheck(bare, "platform")).toMatchObject({ verdict: "PASS", reason: expect.stringMatching(/^openframe: /) });
    expect(byCheck(bare, "signing")).toMatchObject({
      verdict: "WARN",
      reason: expect.stringMatching(/unsigned commands and configuration are taken, as OpenFrame sends them/),
      action: expect.stringMatching(/account layout/),
    });
    expect(byCheck(bare, "downloads")).toMatchObject({
      verdict: "WARN",
      reason: expect.stringMatching(/allowed, but no host may serve them/),
      action: expect.stringMatching(/EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS/),
    });
    expect(byCheck(bare, "uninstall")).toMatchObject({ verdict: "PASS", reason: expect.stringMatching(/only signed/) });
    expect(byCheck(bare, "openframe secret")).toMatchObject({ verdict: "WARN" });
    expect(byCheck(bare, "openframe token path")).toMatchObject({ verdict: "WARN" });

    const secretFile = join(root, "openframe.secret");
    await writeFile(secretFile, "s3cret\n", { mode: 0o600 });
    const complete = verdicts(
      (
        await doctor({
          ...openframe,
          EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS: "github.com,release-assets.githubusercontent.com",
          EDGE_AGENT_ALLOW_UNSIGNED_UNINSTALL: "1",
          EDGE_AGENT_OPENFRAME_SECRET_FILE: secretFile,
          EDGE_AGENT_OPENFRAME_TOKEN_PATH: "/var/lib/openframe/shared_token.enc",
        })
      ).stdout,
    );
    expect(byCheck(complete, "downloads")).toMatchObject({
      verdict: "PASS",
      reason: expect.stringMatching(/over HTTPS from github\.com, release-assets\.githubusercontent\.com only/),
    });
    expect(byCheck(complete, "uninstall")).toMatchObject({
      verdict: "WARN",
      reason: expect.stringMatching(/^UNSIGNED remote uninstall accepted/),
    });
    expect(byCheck(complete, "openframe secret")?.verdict).toBe("PASS");
    expect(byCheck(complete, "openframe token path")?.verdict).toBe("PASS");
    expect(JSON.stringify(complete)).not.toContain("s3cret");

    // A data dir another user could change: no tool or update would ever run from it.
    const open = join(root, "open");
    await mkdir(join(open, "data"), { recursive: true });
    await chmod(open, 0o777);
    const unsafe = await doctor({ ...openframe, EDGE_AGENT_DATA_DIR: join(open, "data") });
    expect(unsafe.code).toBe(1);
    expect(byCheck(verdicts(unsafe.stdout), "program location")).toMatchObject({
      verdict: "FAIL",
      reason: expect.stringMatching(
        /tools and self-updates are refused .*open is writable by other users \(mode 0777\)/,
      ),
    });
  });

  it("fails the streams check without the streams, and names dev-setup", async () => {
    server = await startNatsServer();
    const result = await doctor({ EDGE_AGENT_NATS_URL: server.url });
    expect(result.code).toBe(1);
    const streams = byCheck(verdicts(result.stdout), "streams");
    expect(streams?.verdict).toBe("FAIL");
    expect(streams?.reason).toContain("TELEMETRY");
    expect(streams?.reason).toContain("key-value bucket agent-config");
    expect(streams?.action).toContain("edge-agent dev-setup");
    // Nothing stamped with the server's time came back: the check says why, not that the server is old.
    const skew = byCheck(verdicts(result.stdout), "clock skew");
    expect(skew?.verdict).toBe("WARN");
    expect(skew?.reason).toMatch(/no JetStream answer to this identity carried the server's time .*streams/);
    expect(skew?.reason).not.toContain("2.10 and later");
  });

  it("fails when the server cannot be reached, and when the settings are invalid", async () => {
    server = await startNatsServer();
    await server.stop();
    const unreachable = await doctor({ EDGE_AGENT_NATS_URL: server.url });
    expect(unreachable.code).toBe(1);
    const list = verdicts(unreachable.stdout);
    expect(byCheck(list, "server reachable")).toMatchObject({
      verdict: "FAIL",
      reason: expect.stringContaining("ECONNREFUSED"),
    });
    expect(byCheck(list, "auth")).toBeUndefined();

    const invalid = await doctor({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_HEARTBEAT_SECONDS: "often" });
    expect(invalid.code).toBe(1);
    expect(verdicts(invalid.stdout)).toEqual([
      expect.objectContaining({
        check: "settings",
        verdict: "FAIL",
        reason: expect.stringContaining("EDGE_AGENT_HEARTBEAT_SECONDS"),
      }),
    ]);
  });

  it("names the credentials file that is missing and the setting that names it, not TLS", async () => {
    server = await startNatsServer();
    const missing = join(root, "nowhere", "machine.creds");
    const result = await doctor({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_NATS_CREDS_FILE: missing });
    expect(result.code).toBe(1);
    expect(byCheck(verdicts(result.stdout), "auth")).toEqual({
      check: "auth",
      verdict: "FAIL",
      reason: `cannot read the file auth.credsFile names, ${missing}: no such file`,
      action:
        "put the file there (readable by the agent's user), or point the setting at it: EDGE_AGENT_NATS_CREDS_FILE, --creds-file, settings.json auth.credsFile",
    });
  });

  it("under least-privilege users: passes with the full set, and names the permission a restricted user lacks", async () => {
    const full = agentPermissions("doc-1");
    const lacking: NatsServerPermissions = {
      ...full,
      publish: {
        ...full.publish,
        // An event, and the fleet's tasks read in order (a site that copied an older set lacks it).
        allow: full.publish.allow.filter(
          (subject) => subject !== "machine.doc-1.telemetry" && subject !== "$JS.API.DIRECT.GET.FLEET_TASKS",
        ),
      },
      subscribe: {
        ...full.subscribe,
        allow: full.subscribe.allow.filter((subject) => subject !== "machine.doc-1.rpc.status"),
      },
    };
    const users = [
      "{ user: admin, password: admin }",
      `{ user: "full", password: "p1", permissions: ${JSON.stringify(full)} }`,
      `{ user: "lacking", password: "p2", permissions: ${JSON.stringify(lacking)} }`,
    ];
    server = await startNatsServer({ configLines: [`authorization { users: [ ${users.join(", ")} ] }`] });
    expect(
      (
        await runCli(["dev-setup"], {
          EDGE_AGENT_NATS_URL: server.url,
          EDGE_AGENT_NATS_USER: "admin",
          EDGE_AGENT_NATS_PASSWORD: "admin",
        })
      ).code,
    ).toBe(0);

    const allowed = await doctor({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_NATS_USER: "full",
      EDGE_AGENT_NATS_PASSWORD: "p1",
    });
    expect(allowed.code, allowed.stdout).toBe(0);
    expect(
      verdicts(allowed.stdout)
        .filter((entry) => entry.check.startsWith("permissions"))
        .map((entry) => entry.verdict),
    ).toEqual(["PASS", "PASS", "PASS", "PASS", "PASS"]);

    const restricted = await doctor({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_NATS_USER: "lacking",
      EDGE_AGENT_NATS_PASSWORD: "p2",
    });
    expect(restricted.code).toBe(1);
    const list = verdicts(restricted.stdout);
    expect(byCheck(list, "permissions: events")).toMatchObject({
      verdict: "FAIL",
      reason: "denied: publish machine.doc-1.telemetry",
      action: expect.stringContaining("edge-agent permissions doc-1"),
    });
    expect(byCheck(list, "permissions: rpc and discovery")).toMatchObject({
      verdict: "FAIL",
      reason: "denied: subscribe machine.doc-1.rpc.status",
    });
    expect(byCheck(list, "permissions: commands")).toMatchObject({
      verdict: "FAIL",
      reason: "denied: publish $JS.API.DIRECT.GET.FLEET_TASKS",
    });
    expect(byCheck(list, "permissions: remote config")?.verdict).toBe("PASS");

    const wrongPassword = await doctor({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_NATS_USER: "full",
      EDGE_AGENT_NATS_PASSWORD: "nope",
    });
    expect(wrongPassword.code).toBe(1);
    expect(byCheck(verdicts(wrongPassword.stdout), "auth")).toMatchObject({
      verdict: "FAIL",
      reason: expect.stringContaining("refused user full"),
    });
  });
});
