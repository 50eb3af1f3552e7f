import { describe, expect, it } from "vitest";
import { permissionsCommand } from "../../../src/cli/permissions-command.ts";
import {
  machineConsumers,
  machineSubjects,
  ReservedMachineIdError,
  UnsafeSubjectTokenError,
} from "../../../src/contracts/index.ts";
import {
  agentPermissions,
  InboxPrefixError,
  inboxPrefixOf,
  type NatsServerPermissions,
  toJwtPermissions,
} from "../../../src/identity/permissions.ts";

/** Whether some subject matches both patterns (NATS wildcards: `*` one token, `>` the rest). */
function overlaps(left: string, right: string): boolean {
  const a = left.split(".");
  const b = right.split(".");
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    const x = a[index];
    const y = b[index];
    if (x === ">" || y === ">") return x !== undefined && y !== undefined;
    if (x === undefined || y === undefined) return false;
    if (x !== "*" && y !== "*" && x !== y) return false;
  }
  return true;
}

const allowed = (permissions: NatsServerPermissions): string[] => [
  ...permissions.publish.allow,
  ...permissions.subscribe.allow,
];

describe("agentPermissions", () => {
  const a = agentPermissions("m-a");

  it("lets a machine publish its own events, read its own keys and run its own consumers, by exact names", () => {
    expect(a.publish.allow).toEqual(
      expect.arrayContaining([
        "machine.m-a.telemetry",
        "machine.m-a.heartbeat",
        "machine.m-a.tool-installation.status",
        "machine.m-a.config.status",
        "$JS.API.DIRECT.GET.KV_agent-config.$KV.agent-config.machine.m-a",
        "$JS.API.DIRECT.GET.KV_agent-config.$KV.agent-config.defaults",
        "$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.machine_m-a_tool-installation_consumer.machine.m-a.tool-installation",
        "$JS.API.CONSUMER.CREATE.TOOL_UPDATE.machine_m-a_tool-update_consumer.machine.all.tool.*.update",
        "$JS.API.CONSUMER.CREATE.KV_agent-config.machine_m-a_config_consumer.$KV.agent-config.machine.m-a",
        "$JS.API.CONSUMER.MSG.NEXT.CLIENT_UPDATE.machine_m-a_client-update-all_consumer",
        "$JS.ACK.CONFIG_PUSH.machine_m-a_download-configuration_consumer.>",
      ]),
    );
    expect(a.subscribe.allow).toEqual(
      expect.arrayContaining(["_INBOX_m-a.>", "machine.m-a.rpc.health", "$SRV.PING.edge-agent"]),
    );
    expect(a.allow_responses).toEqual({ max: 1, expires: "1m" });
  });

  it("grants no command subject, no fleet-wide publish, no KV write, no key-in-body read and no other consumer right", () => {
    const forbidden = [
      "machine.m-a.tool-installation",
      "machine.m-a.client-update",
      "machine.all.client-update",
      "machine.all.tool.x.update",
      "$KV.agent-config.machine.m-a",
      "$JS.API.DIRECT.GET.KV_agent-config",
      "$JS.API.STREAM.MSG.GET.KV_agent-config",
      "$JS.API.STREAM.CREATE.TOOL_UPDATE",
      "$JS.API.CONSUMER.DELETE.TOOL_INSTALLATION.machine_m-a_tool-installation_consumer",
      "$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION",
      "$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.machine_m-a_tool-installation_consumer",
      "$JS.API.CONSUMER.DURABLE.CREATE.TOOL_INSTALLATION.machine_m-a_tool-installation_consumer",
      "$JS.API.CONSUMER.CREATE.KV_agent-config.KV_WATCHER_x.$KV.agent-config.machine.m-a",
      "$JS.API.CONSUMER.LIST.TOOL_INSTALLATION",
      "$JS.API.INFO",
      "_INBOX.abc",
    ];
    for (const subject of forbidden)
      expect(
        a.publish.allow.filter((pattern) => overlaps(pattern, subject)),
        subject,
      ).toEqual([]);
    expect(
      a.subscribe.allow.filter(
        (pattern) => overlaps(pattern, "_INBOX.abc.1") || overlaps(pattern, "$KV.agent-config.defaults"),
      ),
    ).toEqual([]);
    expect(a.publish.deny).toEqual(expect.arrayContaining(["machine.all.>", "$KV.>"]));
  });

  it("never lets a machine publish where it subscribes (a message to itself would let it answer to any reply subject)", () => {
    for (const publish of a.publish.allow)
      for (const subscribe of a.subscribe.allow)
        expect(overlaps(publish, subscribe), `${publish} / ${subscribe}`).toBe(false);
  });

  it.each([
    ["m-a", "m-b"],
    // Ids with '_' must not make one machine's consumer names another's.
    ["x", "x_tool-update"],
    ["x", "x_config"],
    ["x_config", "x"],
    ["a", "a-b"],
  ])("shares nothing between %s and %s but fleet-wide reads and service discovery", (first, second) => {
    const one = agentPermissions(first);
    const other = agentPermissions(second);
    // What both may do by design: read the same fleet-wide stream subjects through their own consumers, and the discovery subjects.
    const sharedByDesign = (pattern: string): boolean =>
      pattern.startsWith("$SRV.") || pattern === "$JS.API.DIRECT.GET.KV_agent-config.$KV.agent-config.defaults";
    const theirs = [
      ...allowed(other),
      ...Object.values(machineSubjects(second)),
      ...Object.values(machineConsumers(second)).map((binding) => binding.name),
    ];
    for (const mine of allowed(one).filter((pattern) => !sharedByDesign(pattern))) {
      for (const pattern of theirs.filter((each) => !sharedByDesign(each)))
        expect(overlaps(mine, pattern), `${first}: ${mine} / ${second}: ${pattern}`).toBe(false);
    }
  });

  it("follows a configured inbox prefix, and refuses the shared one", () => {
    expect(agentPermissions("m-a", { inboxPrefix: "site1.m-a" }).subscribe.allow[0]).toBe("site1.m-a.>");
    expect(inboxPrefixOf("m-a")).toBe("_INBOX_m-a");
    expect(() => inboxPrefixOf("m-a", "_INBOX")).toThrow(InboxPrefixError);
    expect(() => inboxPrefixOf("m-a", "_INBOX.m-a")).toThrow(/shared _INBOX/);
    expect(() => inboxPrefixOf("m-a", "a.*")).toThrow(/no wildcards/);
  });

  it("refuses the fleet-wide id and unsafe ids", () => {
    expect(() => agentPermissions("all")).toThrow(ReservedMachineIdError);
    expect(() => agentPermissions("a.b")).toThrow(UnsafeSubjectTokenError);
  });

  it("says the same as JWT user permissions", () => {
    expect(toJwtPermissions(a)).toEqual({
      pub: { allow: a.publish.allow, deny: a.publish.deny },
      sub: { allow: a.subscribe.allow, deny: a.subscribe.deny },
      resp: { max: 1, ttl: 60_000_000_000 },
    });
  });

  it("is what `edge-agent permissions` prints: the nats-server user block and the JWT claims, or with --json the permissions object only", () => {
    const printed: string[] = [];
    permissionsCommand(["m-a"], { json: true }, (text) => printed.push(text));
    expect(JSON.parse(printed[0] as string)).toEqual(a);
    permissionsCommand(["m-a"], { json: false, inboxPrefix: "site.m-a" }, (text) => printed.push(text));
    const text = printed[1] as string;
    expect(text).toMatch(/authorization \{\n {2}users: \[\n {4}\{\n {6}user: "m-a"/);
    expect(text).toContain('"site.m-a.>"');
    expect(text).toContain('"resp": {');
    expect(text).toMatch(/max_control_line/);
    expect(() => permissionsCommand([], { json: true }, () => undefined)).toThrow(
      /usage: edge-agent permissions <machineId>/,
    );
  });
});
