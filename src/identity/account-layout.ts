import { AGENT_CONFIG_STREAM, EventType, machineSubjects, PLATFORM_STREAMS, subjectFor } from "../contracts/index.ts";

/**
 * The account layout that keeps every answer a machine's request gets out of every stream
 * (DESIGN, "Accounts"). nats-server answers a request on the reply subject the REQUESTER chose,
 * without checking it against permissions; an answer is stored wherever a stream of the account
 * it is published in captures that subject. So the machines get an account in which nothing
 * captures anything, and every path out of it is a service import, whose answers come back as
 * responses (and a response is delivered to the requester, never through an import again):
 *
 * - PLATFORM: the platform (OpenFrame's services, the bridge, operators) and every stream as the
 *   platform keeps it, commands and events alike. Unchanged for the platform.
 * - DEVICE_VIEW: read-only copies of the command streams and the `agent-config` bucket: mirrors
 *   (a mirror captures no subject) that answer direct gets and republish what they store on its
 *   own subject, which machines hear as word of a new command. Only the platform's admin of it logs in.
 * - DEVICES: the machines, each with exactly `edge-agent permissions <id>`; no JetStream of its own.
 *   It imports the event subjects from PLATFORM and the reads from DEVICE_VIEW as services, the
 *   republished command subjects as streams, and exports the machines' rpc and discovery services.
 *
 * The names of the accounts are this layout's; a site may call them otherwise (then it renames
 * them here too). What a platform sends and reads, and how, does not change.
 */
export const ACCOUNTS = { platform: "PLATFORM", deviceView: "DEVICE_VIEW", devices: "DEVICES" } as const;

/** Where DEVICE_VIEW's mirrors reach PLATFORM's JetStream (an import prefix), and what they are delivered on. */
export const PLATFORM_API_PREFIX = "$JS.PLATFORM.API";
export const MIRROR_DELIVER_PREFIX = "deliver.device-view";

/** The stream names DEVICE_VIEW mirrors: the command streams and the configuration bucket's. */
export function mirroredStreams(): string[] {
  return [...PLATFORM_STREAMS.filter((stream) => stream.commands).map((stream) => stream.name), AGENT_CONFIG_STREAM];
}

/** `machine.*.<event>` for every subject a machine publishes (its events and its heartbeat). */
export function eventSubjectPatterns(): string[] {
  const sample = machineSubjects("SAMPLE");
  const toPattern = (subject: string): string => subject.replace(/^machine\.SAMPLE\./, "machine.*.");
  return [...Object.values(EventType).map((type) => toPattern(subjectFor(sample, type))), toPattern(sample.heartbeat)];
}

/** The subjects DEVICE_VIEW republishes commands on, as DEVICES imports them. */
export function commandHintPatterns(): string[] {
  const commandSubjects = PLATFORM_STREAMS.filter((stream) => stream.commands).flatMap((stream) => stream.subjects);
  return [...commandSubjects, `$KV.agent-config.>`].filter(
    // `machine.*.client-update` already covers `machine.all.client-update`; the tool updates are their own stream's.
    (subject, index, all) => all.indexOf(subject) === index,
  );
}

export interface AccountLayoutUsers {
  /** nats-server user entries of PLATFORM, as config text (e.g. `{ user: admin, password: "..." }`). */
  readonly platform: readonly string[];
  /** The user entry that manages DEVICE_VIEW's mirrors (dev-setup connects as it). */
  readonly deviceView: readonly string[];
  /** One entry per machine, with its permissions (`edge-agent permissions <id> --json`). */
  readonly devices: readonly string[];
}

const quote = (text: string): string => JSON.stringify(text);
const block = (lines: readonly string[], indent: string): string => lines.map((line) => `${indent}${line}`).join("\n");

/** The `accounts { ... }` block of a nats-server configuration for this layout. */
export function accountLayoutConfig(users: AccountLayoutUsers): string {
  const { platform, deviceView, devices } = ACCOUNTS;
  const mirrored = mirroredStreams();
  const events = eventSubjectPatterns();
  const hints = commandHintPatterns();
  // What a mirror of another account needs of its origin's JetStream: to make its consumer, read the
  // stream's info, answer flow control; and the deliveries. Nothing else of PLATFORM's API is reachable.
  const mirrorApi = mirrored.flatMap((stream) => [
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.STREAM.INFO.${stream}`,
  ]);
  // What machines may ask of DEVICE_VIEW (their permissions narrow it to their own subjects and names).
  // `$JS.API.INFO` too, though no machine may ask it: an account that imports it gets no JetStream
  // answers of the server's own, which would otherwise race DEVICE_VIEW's ("not enabled for account").
  const readApi: ReadonlyArray<{ subject: string; stream?: true }> = [
    { subject: "$JS.API.INFO" },
    { subject: "$JS.API.DIRECT.GET.>" },
    { subject: "$JS.API.CONSUMER.CREATE.>" },
    { subject: "$JS.API.CONSUMER.INFO.>" },
    { subject: "$JS.API.CONSUMER.DELETE.>" },
    { subject: "$JS.API.CONSUMER.MSG.NEXT.>", stream: true },
  ];
  const machineServices = ["machine.*.rpc.>", `$SRV.>`];
  const lines = [
    "accounts {",
    `  ${platform}: {`,
    "    jetstream: enabled",
    `    users: [\n${block(users.platform, "      ")}\n    ]`,
    "    exports: [",
    ...events.map((subject) => `      { service: ${quote(subject)} }`),
    ...mirrorApi.map((subject) => `      { service: ${quote(subject)} }`),
    `      { service: "$JS.FC.>" }`,
    `      { stream: ${quote(`${MIRROR_DELIVER_PREFIX}.>`)} }`,
    "    ]",
    "    imports: [",
    `      { service: { account: ${devices}, subject: "machine.*.rpc.>" } }`,
    `      { service: { account: ${devices}, subject: "$SRV.>" } }`,
    "    ]",
    "  }",
    `  ${deviceView}: {`,
    "    jetstream: enabled",
    `    users: [\n${block(users.deviceView, "      ")}\n    ]`,
    "    imports: [",
    ...mirrorApi.map(
      (subject) =>
        `      { service: { account: ${platform}, subject: ${quote(subject)} }, to: ${quote(subject.replace(/^\$JS\.API/, PLATFORM_API_PREFIX))} }`,
    ),
    `      { service: { account: ${platform}, subject: "$JS.FC.>" } }`,
    `      { stream: { account: ${platform}, subject: ${quote(`${MIRROR_DELIVER_PREFIX}.>`)} } }`,
    "    ]",
    "    exports: [",
    ...readApi.map(
      ({ subject, stream }) => `      { service: ${quote(subject)}${stream ? ", response_type: stream" : ""} }`,
    ),
    ...hints.map((subject) => `      { stream: ${quote(subject)} }`),
    "    ]",
    "  }",
    `  ${devices}: {`,
    `    users: [\n${block(users.devices, "      ")}\n    ]`,
    "    imports: [",
    ...events.map((subject) => `      { service: { account: ${platform}, subject: ${quote(subject)} } }`),
    ...readApi.map(({ subject }) => `      { service: { account: ${deviceView}, subject: ${quote(subject)} } }`),
    ...hints.map((subject) => `      { stream: { account: ${deviceView}, subject: ${quote(subject)} } }`),
    "    ]",
    "    exports: [",
    ...machineServices.map((subject) => `      { service: ${quote(subject)}, response_type: stream }`),
    "    ]",
    "  }",
    "}",
  ];
  return `${lines.join("\n")}\n`;
}
