/**
 * The settings flags `edge-agent task` takes: how to reach and authenticate to NATS, nothing of a
 * machine's own (its `--tag` setting is the task's selector here). No imports: the command list
 * reads it at every start.
 */
export const TASK_CONNECTION_FLAGS: readonly string[] = [
  "nats-url",
  "user",
  "password",
  "token",
  "nkey-seed-file",
  "creds-file",
  "tls-ca",
  "tls-cert",
  "tls-key",
  "inbox-prefix",
  "config-dir",
];

/** Each action's own flags: another action's is refused by name rather than ignored. */
export const TASK_ACTION_FLAGS: Readonly<Record<"run" | "cancel" | "list", readonly string[]>> = {
  run: [
    "machine",
    "tag",
    "all",
    "timeout",
    "ttl",
    "wait",
    "max-output",
    "env",
    "workdir",
    "task-id",
    "requested-by",
    "script",
    "interpreter",
    "signing-seed-file",
    "no-follow",
    "json",
  ],
  cancel: ["machine", "fleet", "reason", "ttl", "signing-seed-file", "json"],
  list: ["machine", "since", "json"],
};
