import {
  AGENT_CONFIG_STREAM,
  assertMachineId,
  CONFIG_DEFAULTS_KEY,
  type ConsumerBinding,
  configKeyForMachine,
  configKeySubject,
  defaultInboxPrefix,
  EventType,
  inboxPrefixProblem,
  machineConsumers,
  machineSubjects,
  SERVICE_NAME,
  SHARED_INBOX_PREFIX,
  subjectFor,
} from "../contracts/index.ts";

/**
 * The least-privilege NATS permission set of one machine: everything the agent does, and nothing
 * that touches another machine. Built only from the contracts the agent itself uses (subjects,
 * consumers, the KV bucket), so it cannot drift from what the agent sends and reads.
 *
 * What it allows, and why that is all:
 * - publish its own events (`machine.{id}.<event>`, the heartbeat): never a command subject, never
 *   `machine.all.>`, never a subject it subscribes to (with `allow_responses`, a message to itself
 *   with a chosen reply subject would let it answer anywhere);
 * - its own consumers, by name: info, create (only in the `CONSUMER.CREATE.<stream>.<name>.<filter>`
 *   form, which pins the filter: nats-server refuses a body whose name or filter differs), pull the
 *   next messages, ack; never delete, never list, never another name;
 * - its own KV keys by direct get in the form that names the key in the subject
 *   (`DIRECT.GET.KV_agent-config.$KV.agent-config.<key>`); never the form with the key in the body,
 *   never a write (`$KV.>`), never a KV watcher (it needs consumers of generated names);
 * - subscribe to its own inbox prefix (every reply, JetStream API answer and delivery lands there),
 *   its rpc endpoints and the `$SRV` discovery subjects of the `edge-agent` service;
 * - answer requests it received (`allow_responses`): rpc replies go to the caller's inbox.
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

export class InboxPrefixError extends Error {
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

function consumerRights(binding: ConsumerBinding): string[] {
  const { stream, name, filterSubject } = binding;
  return [
    `${JS_API}.CONSUMER.INFO.${stream}.${name}`,
    `${JS_API}.CONSUMER.CREATE.${stream}.${name}.${filterSubject}`,
    `${JS_API}.CONSUMER.MSG.NEXT.${stream}.${name}`,
    `$JS.ACK.${stream}.${name}.>`,
  ];
}

export function agentPermissions(machineId: string, options: { inboxPrefix?: string } = {}): NatsServerPermissions {
  const id = assertMachineId(machineId);
  const inboxPrefix = inboxPrefixOf(id, options.inboxPrefix);
  const subjects = machineSubjects(id);
  const events = [...Object.values(EventType).map((type) => subjectFor(subjects, type)), subjects.heartbeat];
  const consumers = Object.values(machineConsumers(id)).flatMap(consumerRights);
  const configReads = [CONFIG_DEFAULTS_KEY, configKeyForMachine(id)].map(
    (key) => `${JS_API}.DIRECT.GET.${AGENT_CONFIG_STREAM}.${configKeySubject(key)}`,
  );
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
      allow: [...events, ...consumers, ...configReads],
      // Nothing above matches these; they stay denied even if a site adds a broader allow.
      deny: ["machine.all.>", "$KV.>", `${SHARED_INBOX_PREFIX}.>`],
    },
    subscribe: {
      allow: [`${inboxPrefix}.>`, ...rpc, ...discovery],
      deny: [`${SHARED_INBOX_PREFIX}.>`, "$KV.>"],
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
