import { CommandError, ExitCode } from "../cli-kit/index.ts";
import { ACCOUNTS, accountLayoutConfig, agentPermissions } from "../identity/index.ts";

const USAGE = "usage: edge-agent accounts MACHINE_ID [MACHINE_ID ...]";

/**
 * `edge-agent accounts <machineId>...`: the nats-server `accounts` block of the account layout
 * (identity/account-layout.ts), with each machine's user and exact permission set in DEVICES, and
 * placeholders for the platform's users and the device view's admin.
 */
export function accountsCommand(machineIds: readonly string[], print: (text: string) => void): void {
  if (machineIds.length === 0) throw new CommandError(USAGE, ExitCode.badSettings);
  const devices = machineIds.map(
    (id) =>
      `{ user: ${JSON.stringify(id)}, password: "<a secret of this machine's own>", permissions: ${JSON.stringify(agentPermissions(id))} }`,
  );
  print(
    [
      `# The account layout (docs/DESIGN.md, "Accounts"): the platform in ${ACCOUNTS.platform}, read-only mirrors of the`,
      `# commands in ${ACCOUNTS.deviceView}, the machines in ${ACCOUNTS.devices}. Replace the <...> placeholders; add a`,
      "# `system_account` of your own for $SYS events. Then make the streams and the mirrors:",
      `#   edge-agent dev-setup --nats-user <platform user> --nats-password <...> --device-view-user <viewer> --device-view-password <...>`,
      "# (a platform that makes its own streams needs only the mirrors; see docs/DESIGN.md).",
      accountLayoutConfig({
        platform: ['{ user: "<platform user>", password: "<...>" }'],
        deviceView: ['{ user: "<viewer>", password: "<...>" }'],
        devices,
      }),
    ].join("\n"),
  );
}
