import {
  agentFeeds,
  assertMachineId,
  COMMAND_STREAMS,
  catchUpConsumerName,
  defaultInboxPrefix,
  EventType,
  fleetSubjects,
  hintSubjects,
  inboxPrefixProblem,
  legacyMachineConsumers,
  machineSubjects,
  PLATFORM_STREAMS,
  SERVICE_NAME,
  SHARED_INBOX_PREFIX,
  subjectFor,
} from "../contracts/index.ts";
import { EdgeError } from "../errors/index.ts";

/**
 * The least-privilege NATS permission set of one machine: everything the agent does, and nothing
 * that touches another machine. Built only from the contracts the agent itself uses (subjects,
 * command feeds, the KV bucket), so it cannot drift from what the agent sends and reads.
 *
 * What it allows, and why that is all:
 * - publish its own events (`machine.{id}.<event>`, the heartbeat): never a command subject, never
 *   `machine.all.>`, never `$KV.>`;
 * - read its command feeds (contracts/command-feeds.ts): the newest message of each feed's subject
 *   by direct get with the subject in the request's subject (`DIRECT.GET.<stream>.<subject>`; the
 *   server refuses a body there), which no other subject can be read through; and, for its own
 *   queue feeds only, a catch-up consumer of its one name, created only in the
 *   `CONSUMER.CREATE.<stream>.<name>.<subject>` form (which pins the filter), read, and deleted.
 *   Fleet-wide subjects get no consumer right at all, so no machine can read, or copy, an old
 *   fleet-wide message; the one exception is FLEET_TASKS, the fleet's tasks, read in order by a
 *   direct get in the request's body (`DIRECT.GET.FLEET_TASKS`), which can name any message of that
 *   stream: it holds nothing but fleet-wide tasks, and a copy of one stored elsewhere is refused;
 * - once, on upgrade: read and delete the durable consumers earlier versions kept for it (by name);
 * - subscribe to its own inbox prefix (every reply, JetStream API answer and delivery lands there),
 *   its rpc endpoints, the `$SRV` discovery subjects of the `edge-agent` service, and the subjects
 *   of its feeds (word of a new command: a hint it checks, never trusts);
 * - answer requests it received (`allow_responses`): rpc replies go to the caller's inbox.
 *
 * nats-server does not check reply subjects against permissions: what a machine's requests are
 * answered on is its own choice. The account layout (identity/account-layout.ts) is what keeps such
 * answers out of every stream; in one account, signing is (DESIGN, "Trust").
 *
 * Not covered here: `nats-obj://` downloads (an object store read needs consumers of generated
 * names on `OBJ_<bucket>`); a site that uses them grants those rights itself.
 */

/** nats-server's permissions object, as it goes into `authorization.users[].permissions`. */
export interface NatsServerPermissions {
  readonly publish: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly subscribe: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly allow_responses: { readonly max: number; readonly expires: string };
}

/** The same set as the `nats` permissions of a decentralized (JWT) user: `pub`, `sub`, `resp`. */
export interface JwtUserPermissions {
  readonly pub: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly sub: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly resp: { readonly max: number; readonly ttl: number };
}

export class InboxPrefixError extends EdgeError {
  readonly code = "EDGE_BAD_INBOX_PREFIX";
  constructor(prefix: string, problem: string) {
    super(`inbox prefix ${JSON.stringify(prefix)} ${problem}`);
    this.name = "InboxPrefixError";
  }
}

/** The inbox prefix a machine uses: the configured one, else `_INBOX_<machineId>`. */
export function inboxPrefixOf(machineId: string, configured?: string): string {
  if (configured === undefined) return defaultInboxPrefix(machineId);
  const problem = inboxPrefixProblem(configured);
  if (problem) throw new InboxPrefixError(configured, problem);
  return configured;
}

/** One rpc reply may take a while (a telemetry collection); a minute covers it. */
const RESPONSE_WINDOW = { max: 1, expires: "1m", ttlNanos: 60_000_000_000 } as const;
const JS_API = "$JS.API";

/**
 * A stream read by direct gets in the request's body (a `sequence` feed): the right covers every
 * message of the stream, so the stream must hold nothing but fleet-wide subjects.
 */
function bodyFormStream(stream: string): string {
  const subjects = PLATFORM_STREAMS.find((each) => each.name === stream)?.subjects ?? [];
  if (subjects.length === 0 || !subjects.every((subject) => subject.startsWith("machine.all.")))
    throw new Error(`stream ${stream} is read in order by direct get, so it must hold only machine.all.* subjects`);
  return `${JS_API}.DIRECT.GET.${stream}`;
}

/** The JetStream API subjects a machine's command reading uses (feeds, catch-ups, the upgrade takeover). */
export function commandReadRights(machineId: string): string[] {
  const feeds = agentFeeds(machineId);
  const reader = catchUpConsumerName(machineId);
  const directGets = [
    ...feeds.map((feed) => `${JS_API}.DIRECT.GET.${feed.stream}.${feed.subject}`),
    `${JS_API}.DIRECT.GET.${COMMAND_STREAMS.toolUpdate}.${fleetSubjects.toolUpdates}`,
    // The next message after a position, asked in the body (`next_by_subj`): fleet tasks, read in order.
    ...new Set(feeds.filter((feed) => feed.mode === "sequence").map((feed) => bodyFormStream(feed.stream))),
  ];
  const queues = feeds.filter((feed) => feed.mode === "queue");
  const catchUps = [
    ...queues.map((feed) => `${JS_API}.CONSUMER.CREATE.${feed.stream}.${reader}.${feed.subject}`),
    ...[...new Set(queues.map((feed) => feed.stream))].flatMap((stream) =>
      ["INFO", "MSG.NEXT", "DELETE"].map((verb) => `${JS_API}.CONSUMER.${verb}.${stream}.${reader}`),
    ),
  ];
  const takeover = legacyMachineConsumers(machineId).flatMap(({ stream, name }) =>
    ["INFO", "DELETE"].map((verb) => `${JS_API}.CONSUMER.${verb}.${stream}.${name}`),
  );
  return [...directGets, ...catchUps, ...takeover];
}

export function agentPermissions(machineId: string, options: { inboxPrefix?: string } = {}): NatsServerPermissions {
  const id = assertMachineId(machineId);
  const inboxPrefix = inboxPrefixOf(id, options.inboxPrefix);
  const subjects = machineSubjects(id);
  const events = [...Object.values(EventType).map((type) => subjectFor(subjects, type)), subjects.heartbeat];
  const rpc = [subjects.rpcHealth, subjects.rpcStatus, subjects.rpcCollect, subjects.rpcConfig];
  // The micro service answers discovery for all services, for its name, and for its instance id
  // (a generated one, hence the last `*`; nats.js does not let us choose it).
  const discovery = ["PING", "INFO", "STATS"].flatMap((verb) => [
    `$SRV.${verb}`,
    `$SRV.${verb}.${SERVICE_NAME}`,
    `$SRV.${verb}.${SERVICE_NAME}.*`,
  ]);
  return {
    publish: {
      allow: [...events, ...commandReadRights(id)],
      // Nothing above matches these; they stay denied even if a site adds a broader allow.
      deny: ["machine.all.>", "$KV.>", `${SHARED_INBOX_PREFIX}.>`],
    },
    subscribe: {
      allow: [`${inboxPrefix}.>`, ...rpc, ...discovery, ...hintSubjects(id)],
      deny: [`${SHARED_INBOX_PREFIX}.>`],
    },
    allow_responses: { max: RESPONSE_WINDOW.max, expires: RESPONSE_WINDOW.expires },
  };
}

export function toJwtPermissions(permissions: NatsServerPermissions): JwtUserPermissions {
  return {
    pub: { allow: [...permissions.publish.allow], deny: [...permissions.publish.deny] },
    sub: { allow: [...permissions.subscribe.allow], deny: [...permissions.subscribe.deny] },
    resp: { max: permissions.allow_responses.max, ttl: RESPONSE_WINDOW.ttlNanos },
  };
}
