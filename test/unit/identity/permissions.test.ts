import { describe, expect, it } from "vitest";
import { permissionsCommand } from "../../../src/cli/permissions-command.ts";
import {
  catchUpConsumerName,
  legacyMachineConsumers,
  machineSubjects,
  PLATFORM_STREAMS,
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

  it("lets a machine publish its own events and read its own command feeds, by exact subjects and names", () => {
    expect(a.publish.allow).toEqual(
      expect.arrayContaining([
        "machine.m-a.telemetry",
        "machine.m-a.heartbeat",
        "machine.m-a.tool-installation.status",
        "machine.m-a.config.status",
        // The newest message of each feed: the subject in the request's subject.
        "$JS.API.DIRECT.GET.KV_agent-config.$KV.agent-config.machine.m-a",
        "$JS.API.DIRECT.GET.KV_agent-config.$KV.agent-config.defaults",
        "$JS.API.DIRECT.GET.TOOL_INSTALLATION.machine.m-a.tool-installation",
        "$JS.API.DIRECT.GET.CLIENT_UPDATE.machine.all.client-update",
        "$JS.API.DIRECT.GET.TOOL_UPDATE.machine.all.tool.*.update",
        // A catch-up of its own queues: one name, the filter pinned by the create subject.
        "$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.machine_m-a_reader.machine.m-a.tool-installation",
        "$JS.API.CONSUMER.CREATE.CONFIG_PUSH.machine_m-a_reader.machine.m-a.download-configuration",
        "$JS.API.CONSUMER.MSG.NEXT.TOOL_INSTALLATION.machine_m-a_reader",
        "$JS.API.CONSUMER.DELETE.CLIENT_UNINSTALL.machine_m-a_reader",
        // Once, on upgrade: an earlier version's durable consumers, taken over and removed.
        "$JS.API.CONSUMER.INFO.TOOL_INSTALLATION.machine_m-a_tool-installation_consumer",
        "$JS.API.CONSUMER.DELETE.KV_agent-config.machine_m-a_config_consumer",
        // Remote tasks: its output and its ends; its own tasks and cancels as queues; the fleet's in order.
        "machine.m-a.task.output",
        "machine.m-a.task.result",
        "$JS.API.DIRECT.GET.TASKS.machine.m-a.task",
        "$JS.API.DIRECT.GET.TASKS.machine.m-a.task.cancel",
        "$JS.API.CONSUMER.CREATE.TASKS.machine_m-a_reader.machine.m-a.task",
        "$JS.API.CONSUMER.CREATE.TASKS.machine_m-a_reader.machine.m-a.task.cancel",
        "$JS.API.CONSUMER.MSG.NEXT.TASKS.machine_m-a_reader",
        "$JS.API.DIRECT.GET.FLEET_TASKS.machine.all.fleet-task",
        "$JS.API.DIRECT.GET.FLEET_TASKS.machine.all.fleet-task.cancel",
        "$JS.API.DIRECT.GET.FLEET_TASKS",
      ]),
    );
    expect(a.subscribe.allow).toEqual(
      expect.arrayContaining([
        "_INBOX_m-a.>",
        "machine.m-a.rpc.health",
        "$SRV.PING.edge-agent",
        // Word of a new command on its feeds (a hint, checked against the stream).
        "machine.m-a.tool-installation",
        "machine.all.client-update",
        "$KV.agent-config.machine.m-a",
        "machine.m-a.task",
        "machine.m-a.task.cancel",
        "machine.all.fleet-task",
        "machine.all.fleet-task.cancel",
      ]),
    );
    expect(a.allow_responses).toEqual({ max: 1, expires: "1m" });
  });

  it("grants no command publish, no fleet-wide publish, no KV write, no key-in-body read (but the fleet's tasks), no consumer on a fleet-wide subject and no other consumer right", () => {
    const forbidden = [
      "machine.m-a.tool-installation",
      "machine.m-a.task",
      "machine.m-a.task.cancel",
      "machine.all.fleet-task",
      "machine.m-b.task.result",
      "$JS.API.DIRECT.GET.TASKS",
      "$JS.API.DIRECT.GET.TASKS.machine.m-b.task",
      "$JS.API.DIRECT.GET.CLIENT_UPDATE",
      "$JS.API.CONSUMER.CREATE.FLEET_TASKS.machine_m-a_reader.machine.all.fleet-task",
      "$JS.API.CONSUMER.CREATE.TASKS.machine_m-a_reader.machine.m-b.task",
      "machine.m-a.client-update",
      "machine.all.client-update",
      "machine.all.tool.x.update",
      "$KV.agent-config.machine.m-a",
      "$JS.API.DIRECT.GET.KV_agent-config",
      "$JS.API.DIRECT.GET.TOOL_INSTALLATION.machine.m-b.tool-installation",
      "$JS.API.STREAM.MSG.GET.KV_agent-config",
      "$JS.API.STREAM.CREATE.TOOL_UPDATE",
      "$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION",
      "$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.machine_m-a_reader",
      "$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.machine_m-a_reader.machine.m-b.tool-installation",
      "$JS.API.CONSUMER.CREATE.CLIENT_UPDATE.machine_m-a_reader.machine.all.client-update",
      "$JS.API.CONSUMER.CREATE.TOOL_UPDATE.machine_m-a_reader.machine.all.tool.x.update",
      "$JS.API.CONSUMER.CREATE.KV_agent-config.machine_m-a_reader.$KV.agent-config.defaults",
      "$JS.API.CONSUMER.CREATE.CONFIG_PUSH.machine_m-a_reader.machine.all.download-configuration",
      "$JS.API.CONSUMER.DURABLE.CREATE.TOOL_INSTALLATION.machine_m-a_reader",
      "$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.machine_m-a_tool-installation_consumer.machine.m-a.tool-installation",
      "$JS.API.CONSUMER.CREATE.KV_agent-config.KV_WATCHER_x.$KV.agent-config.machine.m-a",
      "$JS.API.CONSUMER.LIST.TOOL_INSTALLATION",
      "$JS.API.INFO",
      "$JS.ACK.TOOL_INSTALLATION.machine_m-a_reader.1.1.1.1.0",
      "_INBOX.abc",
    ];
    // The one read whose body names the message: on a stream of the fleet's tasks only.
    for (const pattern of a.publish.allow.filter((each) => /^\$JS\.API\.DIRECT\.GET\.[^.]+$/.test(each))) {
      const stream = PLATFORM_STREAMS.find((each) => each.name === pattern.split(".")[4]);
      expect(
        stream?.subjects.every((subject) => subject.startsWith("machine.all.")),
        pattern,
      ).toBe(true);
    }
    for (const subject of forbidden)
      expect(
        a.publish.allow.filter((pattern) => overlaps(pattern, subject)),
        subject,
      ).toEqual([]);
    expect(
      a.subscribe.allow.filter(
        (pattern) =>
          overlaps(pattern, "_INBOX.abc.1") ||
          overlaps(pattern, "$KV.agent-config.machine.m-b") ||
          overlaps(pattern, "machine.m-b.tool-installation"),
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
    // What both may do by design: read the newest fleet-wide messages (and hear of new ones), and discovery.
    const fleetWide = [
      "machine.all.client-update",
      "machine.all.download-configuration",
      "machine.all.tool.*.update",
      "$KV.agent-config.defaults",
      "machine.all.fleet-task",
      "machine.all.fleet-task.cancel",
    ];
    const sharedByDesign = (pattern: string): boolean =>
      pattern.startsWith("$SRV.") ||
      pattern === "$JS.API.DIRECT.GET.FLEET_TASKS" ||
      fleetWide.some((subject) => pattern === subject || pattern.endsWith(`.${subject}`));
    const theirs = [
      ...allowed(other),
      ...Object.values(machineSubjects(second)),
      catchUpConsumerName(second),
      ...legacyMachineConsumers(second).map((consumer) => consumer.name),
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
