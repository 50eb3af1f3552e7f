import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Agent, createAgent } from "../../../src/agent/create-agent.ts";
import { ToolInstallationStatus } from "../../../src/contracts/index.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { loadSettings } from "../../../src/settings/index.ts";
import { startFileServer } from "../../fixtures/tools/tool-kit.ts";
import { type HttpsFileServer, type ServedOverHttps, startHttpsFileServer } from "../../helpers/https-file-server.ts";
import { type CapturedLog, captureLog } from "../../helpers/log-capture.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/** A tool that writes the arguments of its install beside itself, and whose `fail` prints them back. */
const TOOL = Buffer.from(`#!/bin/sh
here="$(cd "$(dirname "$0")" && pwd)"
case "$1" in
  fail) echo "refusing secret $3" >&2; exit 3 ;;
  *) printf '%s\\n' "$@" > "$here/args" ;;
esac
`);
const SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const TOKEN_PATH = "/var/lib/openframe/secured/shared_token.enc";

/**
 * A tool installation the way OpenFrame's management service sends one (our own fixture, written
 * from its documented ToolInstallationMessage): no sha256 anywhere, its own placeholders in the
 * arguments, an asset served by its tool API.
 */
const openFrameInstall = (
  toolAgentId: string,
  tool: { url: string },
  asset: { url: string },
  installationCommandArgs: string[],
): Record<string, unknown> => ({
  toolAgentId,
  toolId: "meshcentral-server",
  toolType: "MESHCENTRAL",
  version: "1.1.0",
  sessionType: "CONSOLE",
  downloadConfigurations: [
    { os: "windows", fileName: "meshagent.zip", agentFileName: "meshagent.exe", link: "https://example.invalid/m.zip" },
    { os: "linux", fileName: "meshagent", agentFileName: "meshagent", link: tool.url, installationType: "STANDARD" },
  ],
  assets: [
    {
      id: "msh-configuration",
      localFilenameConfiguration: [{ filename: "meshagent.msh", os: "linux" }],
      source: "TOOL_API",
      path: "/generate-msh?host=${client.serverUrl}",
      executable: false,
      downloadConfigurations: [{ os: "linux", fileName: "meshagent.msh", link: asset.url }],
    },
  ],
  installationCommandArgs,
  runCommandArgs: [],
  toolAgentIdCommandArgs: [],
  uninstallationCommandArgs: ["-uninstall"],
});

const OPENFRAME_ARGUMENTS = [
  "-install",
  "--openframe-mode",
  "--openframe-secret",
  "${client.openframeSecret}",
  "--openframe-token-path",
  "${client.openframeTokenPath}",
];

describe("OpenFrame's tools under its conventions (platform openframe), on a real nats-server", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let https: HttpsFileServer;
  let root: string;
  let agent: Agent | null = null;
  let log: CapturedLog;
  let tool: ServedOverHttps;
  let asset: ServedOverHttps;

  const start = async (env: NodeJS.ProcessEnv, dataDir = join(root, "data")): Promise<Agent> => {
    const { settings } = loadSettings({
      env: {
        EDGE_AGENT_NATS_URL: server.url,
        EDGE_AGENT_MACHINE_ID: "of1",
        EDGE_AGENT_DATA_DIR: dataDir,
        EDGE_AGENT_CONFIG_DIR: join(root, "config"),
        ...env,
      },
      platform: "linux",
      privileged: false,
    });
    log = captureLog("info");
    agent = await createAgent(settings, { clock: systemClock, logger: log.logger, telemetry: false });
    await agent.start();
    return agent;
  };
  const install = async (body: Record<string, unknown>): Promise<void> => {
    await jetstream(operator).publish("machine.of1.tool-installation", JSON.stringify(body));
  };
  const statuses = async (): Promise<ToolInstallationStatus[]> =>
    (await readStream(operator, "TOOL_STATUS"))
      .map((message) => ToolInstallationStatus.parse(message.body))
      .filter((status) => !status.connection);
  /** The status that settled the tool's command: INSTALLED or FAILED. */
  const outcome = (toolAgentId: string): Promise<ToolInstallationStatus> =>
    waitFor(`the outcome of ${toolAgentId}`, async () =>
      (await statuses()).find(
        (status) => status.toolAgentId === toolAgentId && (status.state === "INSTALLED" || status.state === "FAILED"),
      ),
    );
  const openFrameEnv = (): NodeJS.ProcessEnv => ({
    EDGE_AGENT_PLATFORM: "openframe",
    EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS: "127.0.0.1",
    EDGE_AGENT_OPENFRAME_SECRET_FILE: join(root, "config", "openframe.secret"),
  });

  beforeEach(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    https = await startHttpsFileServer();
    https.trustInThisProcess();
    tool = https.add("meshagent", TOOL);
    asset = https.add("meshagent.msh", Buffer.from("MeshName=of\n"));
    root = await mkdtemp(join(tmpdir(), "edge-agent-openframe-"));
    await mkdir(join(root, "config"), { mode: 0o700 });
    await writeFile(join(root, "config", "openframe.secret"), `${SECRET}\n`, { mode: 0o600 });
  });

  afterEach(async () => {
    await agent?.stop();
    agent = null;
    await operator.close();
    await https.close();
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it("installs a tool without a sha256 from an allowed HTTPS host, fills OpenFrame's placeholders, and reports what it received", async () => {
    await start({ ...openFrameEnv(), EDGE_AGENT_OPENFRAME_TOKEN_PATH: TOKEN_PATH });
    await install(openFrameInstall("meshcentral-agent", tool, asset, OPENFRAME_ARGUMENTS));

    const installed = await outcome("meshcentral-agent");
    expect(installed).toMatchObject({ state: "INSTALLED", error: null, toolType: "MESHCENTRAL" });
    expect(installed.downloads).toEqual([
      { file: "tool", link: tool.url, size: tool.size, sha256: tool.sha256, verified: false },
      { file: "asset:msh-configuration", link: asset.url, size: asset.size, sha256: asset.sha256, verified: false },
    ]);
    const toolDir = join(root, "data", "tools", "meshcentral-agent");
    expect((await readFile(join(toolDir, "args"), "utf8")).trim().split("\n")).toEqual([
      "-install",
      "--openframe-mode",
      "--openframe-secret",
      SECRET,
      "--openframe-token-path",
      TOKEN_PATH,
    ]);
    expect(await readFile(join(toolDir, "assets", "meshagent.msh"), "utf8")).toBe("MeshName=of\n");

    // What status shows: the conventions, and the tool's files as received.
    const status = agent?.status();
    expect(status?.platform).toEqual({
      platform: "openframe",
      commands: "unsigned",
      downloadsWithoutChecksum: { allowed: true, hosts: ["127.0.0.1"] },
      uninstall: "signed",
      openframeArguments: { secretFile: join(root, "config", "openframe.secret"), tokenPath: TOKEN_PATH },
    });
    const tools = (await waitFor("the tools' status", async () => {
      const current = (await agent?.status())?.capabilities.tools as Array<{ downloads: unknown[] }> | undefined;
      return current && current.length > 0 ? current : undefined;
    })) as Array<{ toolAgentId: string; downloads: unknown[] }>;
    expect(tools[0]?.downloads).toEqual(installed.downloads);

    // The secret went to the tool only: in no status the platform got, in no log line.
    const everything = JSON.stringify(await readStream(operator, "TOOL_STATUS"));
    expect(everything).not.toContain(SECRET);
    expect(JSON.stringify(log.lines())).not.toContain(SECRET);
    expect(log.matching("without a sha256")).not.toEqual([]);
  });

  it("refuses for good, saying why, what breaks a rule: plain HTTP, a host not on the list, a redirect off it, a placeholder it cannot fill", async () => {
    const plain = await startFileServer();
    try {
      const overHttp = plain.add("meshagent", TOOL);
      await start(openFrameEnv());
      await install(openFrameInstall("over-http", overHttp, asset, ["-install"]));
      await install(openFrameInstall("unlisted-host", { url: tool.urlByName }, asset, ["-install"]));
      const offList = https.redirect("moved", tool.urlByName);
      await install(openFrameInstall("redirected", { url: offList }, asset, ["-install"]));
      await install(openFrameInstall("no-token-path", tool, asset, OPENFRAME_ARGUMENTS));

      expect(await outcome("over-http")).toMatchObject({
        state: "FAILED",
        error: expect.stringMatching(/has no sha256, and a download without one is taken over HTTPS only/),
      });
      expect(await outcome("unlisted-host")).toMatchObject({
        state: "FAILED",
        error: expect.stringMatching(
          /"localhost:\d+" is not one of the hosts allowed.*allowedDownloadHosts: 127\.0\.0\.1/,
        ),
      });
      expect(await outcome("redirected")).toMatchObject({
        state: "FAILED",
        error: expect.stringMatching(
          /redirected to "https:\/\/localhost:\d+\/meshagent".*not one of the hosts allowed/,
        ),
      });
      // Refused before anything is downloaded, naming the setting.
      expect(await outcome("no-token-path")).toMatchObject({
        state: "FAILED",
        error: expect.stringMatching(
          /\$\{client\.openframeTokenPath\} needs the setting openframe\.tokenPath \(EDGE_AGENT_OPENFRAME_TOKEN_PATH/,
        ),
      });
    } finally {
      await plain.close();
    }
  });

  it("refuses a tool whose arguments need the secret when no secret file is set, and keeps the secret out of a failing tool's words", async () => {
    await start({
      EDGE_AGENT_PLATFORM: "openframe",
      EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS: "127.0.0.1",
      EDGE_AGENT_OPENFRAME_TOKEN_PATH: TOKEN_PATH,
    });
    await install(openFrameInstall("no-secret", tool, asset, OPENFRAME_ARGUMENTS));
    expect(await outcome("no-secret")).toMatchObject({
      state: "FAILED",
      error: expect.stringMatching(
        /\$\{client\.openframeSecret\} needs the setting openframe\.secretFile \(EDGE_AGENT_OPENFRAME_SECRET_FILE/,
      ),
    });
    await agent?.stop();
    agent = null;

    await start({ ...openFrameEnv(), EDGE_AGENT_OPENFRAME_TOKEN_PATH: TOKEN_PATH }, join(root, "data-2"));
    await install(
      openFrameInstall("tells-secret", tool, asset, ["fail", "--openframe-secret", "${client.openframeSecret}"]),
    );
    const failed = await outcome("tells-secret");
    expect(failed.state).toBe("FAILED");
    expect(failed.error).toMatch(/install command failed: .*refusing secret \[openframe secret\]/);
    expect(JSON.stringify(await readStream(operator, "TOOL_STATUS"))).not.toContain(SECRET);
    expect(JSON.stringify(log.lines())).not.toContain(SECRET);
  });

  it("never runs a tool from a data dir another user could change", async () => {
    const open = join(root, "open");
    await mkdir(open);
    await chmod(open, 0o777);
    await start({ ...openFrameEnv(), EDGE_AGENT_OPENFRAME_TOKEN_PATH: TOKEN_PATH }, join(open, "data"));
    await install(openFrameInstall("meshcentral-agent", tool, asset, OPENFRAME_ARGUMENTS));
    expect(await outcome("meshcentral-agent")).toMatchObject({
      state: "FAILED",
      error: expect.stringMatching(
        /install command: .*meshagent is not run: .*open is writable by other users \(mode 0777\).*EDGE_UNSAFE_EXECUTABLE_LOCATION/,
      ),
    });
  });

  it("under our own conventions (platform edge) the same tool is refused: every download needs a sha256", async () => {
    await start({ EDGE_AGENT_ALLOW_UNSIGNED: "1", EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS: "127.0.0.1" });
    await install(openFrameInstall("meshcentral-agent", tool, asset, ["-install"]));
    expect(await outcome("meshcentral-agent")).toMatchObject({
      state: "FAILED",
      error: expect.stringMatching(/no sha256 given .*toolPolicy\.allowMissingChecksum is off/),
    });
  });
});
