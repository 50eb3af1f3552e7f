import { Kvm } from "@nats-io/kv";
import { type ConnectionOptions, connect, type NatsConnection } from "@nats-io/transport-node";
import { setUpDeviceView } from "../../src/cli/device-view-setup.ts";
import { AGENT_CONFIG_BUCKET } from "../../src/contracts/index.ts";
import { accountLayoutConfig } from "../../src/identity/account-layout.ts";
import { agentPermissions, type NatsServerPermissions } from "../../src/identity/permissions.ts";
import { type NatsServerHandle, startNatsServer } from "./nats-server.ts";
import { createPlatformStreams } from "./streams.ts";

/**
 * A nats-server in the account layout (src/identity/account-layout.ts), as `edge-agent accounts`
 * prints it: the platform's user `platform` in PLATFORM, `viewer` in DEVICE_VIEW, one user per
 * machine in DEVICES with exactly its permission set (or the set given), and `sys` in the system
 * account. `setUp()` does what `edge-agent dev-setup` does there: the streams and the bucket in
 * PLATFORM, the mirrors in DEVICE_VIEW.
 */
export interface AccountLayoutServer {
  readonly server: NatsServerHandle;
  readonly platform: ConnectionOptions;
  readonly viewer: ConnectionOptions;
  readonly system: ConnectionOptions;
  /** The agent's settings for machine `id` (as environment variables). */
  agentEnv(id: string): Record<string, string>;
  connectAs(id: string): Promise<NatsConnection>;
  setUp(): Promise<void>;
  dispose(): Promise<void>;
}

export async function startAccountLayoutServer(
  machines: readonly string[],
  permissionsOf: (id: string) => NatsServerPermissions = (id) => agentPermissions(id),
): Promise<AccountLayoutServer> {
  const secret = (id: string): string => `secret-${id}`;
  const layout = accountLayoutConfig({
    platform: ["{ user: platform, password: platform }"],
    deviceView: ["{ user: viewer, password: viewer }"],
    devices: machines.map(
      (id) => `{ user: "${id}", password: "${secret(id)}", permissions: ${JSON.stringify(permissionsOf(id))} }`,
    ),
  });
  // The system account for $SYS events (presence), beside the layout's three.
  const withSystem = layout.replace(/^accounts \{\n/, "accounts {\n  SYS: { users: [{ user: sys, password: sys }] }\n");
  const server = await startNatsServer({ configLines: [withSystem, "system_account: SYS"] });
  const platform: ConnectionOptions = { servers: server.url, user: "platform", pass: "platform" };
  const viewer: ConnectionOptions = { servers: server.url, user: "viewer", pass: "viewer" };
  return {
    server,
    platform,
    viewer,
    system: { servers: server.url, user: "sys", pass: "sys" },
    agentEnv: (id) => ({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: id,
      EDGE_AGENT_NATS_USER: id,
      EDGE_AGENT_NATS_PASSWORD: secret(id),
    }),
    connectAs: (id) => connect({ servers: server.url, user: id, pass: secret(id), inboxPrefix: `_INBOX_${id}` }),
    async setUp() {
      const admin = await connect(platform);
      const view = await connect(viewer);
      try {
        await createPlatformStreams(admin);
        await new Kvm(admin).create(AGENT_CONFIG_BUCKET, { history: 10 });
        await setUpDeviceView(view, () => undefined);
      } finally {
        await admin.close();
        await view.close();
      }
    },
    dispose: () => server.dispose(),
  };
}
