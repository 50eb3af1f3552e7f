import { CommandError, ExitCode } from "../cli-kit/index.ts";
import { agentPermissions, inboxPrefixOf, toJwtPermissions } from "../identity/index.ts";

const USAGE = "usage: edge-agent permissions <machineId> [--inbox-prefix PREFIX] [--json]";

/**
 * `edge-agent permissions <machineId>`: the exact NATS permission set the platform gives a machine's
 * identity. With `--json`, only nats-server's permissions object (for `authorization.users[].permissions`).
 */
export function permissionsCommand(
  args: readonly string[],
  flags: { json: boolean; inboxPrefix?: string },
  print: (text: string) => void,
): void {
  if (args.length !== 1) throw new CommandError(USAGE, ExitCode.badSettings);
  const machineId = args[0] as string;
  const permissions = agentPermissions(
    machineId,
    flags.inboxPrefix === undefined ? {} : { inboxPrefix: flags.inboxPrefix },
  );
  if (flags.json) {
    print(JSON.stringify(permissions, null, 2));
    return;
  }
  const indent = (text: string, spaces: number): string => text.replace(/\n/g, `\n${" ".repeat(spaces)}`);
  print(
    [
      `# NATS permissions of machine ${machineId} (inbox prefix ${inboxPrefixOf(machineId, flags.inboxPrefix)}: give the agent the same`,
      "# with EDGE_AGENT_INBOX_PREFIX when it is not the default). The account must have JetStream enabled.",
      "",
      `# The identity is named after the machine (user ${JSON.stringify(machineId)}, or a user JWT named so): the bridge's`,
      "# presence follows the server's $SYS CONNECT/DISCONNECT by that name, never by the connection name.",
      "",
      "# nats-server configuration: the machine's user in the authorization block (a password, or an nkey instead).",
      "authorization {",
      "  users: [",
      "    {",
      `      user: ${JSON.stringify(machineId)}`,
      '      password: "<a secret of this machine\'s own>"',
      `      permissions: ${indent(JSON.stringify(permissions, null, 2), 6)}`,
      "    }",
      "  ]",
      "}",
      "",
      `# Decentralized auth (operator / account / user JWT, named ${JSON.stringify(machineId)}): the permission claims of the machine's user JWT`,
      '# (its "nats" object holds them; the account signs it; the agent reads the .creds file: EDGE_AGENT_NATS_CREDS_FILE).',
      "# Such a JWT is 6-8 KB and travels in CONNECT: the servers need max_control_line: 16384 (the default is 4 KB).",
      JSON.stringify(toJwtPermissions(permissions), null, 2),
    ].join("\n"),
  );
}
