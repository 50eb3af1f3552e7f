/**
 * The JetStream streams the platform keeps (docs/DESIGN.md). The agent never creates them in
 * production; `edge-agent dev-setup` does, for development and tests. Subjects never overlap
 * across streams: JetStream refuses that.
 */
export interface StreamDefinition {
  readonly name: string;
  readonly subjects: readonly string[];
}

export const PLATFORM_STREAMS: readonly StreamDefinition[] = [
  { name: "TOOL_INSTALLATION", subjects: ["machine.*.tool-installation", "machine.*.tool-uninstall"] },
  { name: "TOOL_CONNECTIONS", subjects: ["machine.*.tool-connection"] },
  { name: "INSTALLED_AGENTS", subjects: ["machine.*.installed-agent"] },
  { name: "CLIENT_UPDATE", subjects: ["machine.*.client-update"] },
  { name: "CLIENT_UNINSTALL", subjects: ["machine.*.client-uninstall"] },
  { name: "TOOL_UPDATE", subjects: ["machine.all.tool.*.update"] },
  { name: "MACHINE_HOSTNAME", subjects: ["machine.*.hostname"] },
  { name: "CLIENT_CONNECTIONS", subjects: ["machine.*.client-connection"] },
  { name: "TELEMETRY", subjects: ["machine.*.telemetry", "machine.*.outbox"] },
  { name: "INVENTORY", subjects: ["machine.*.inventory"] },
  { name: "TOOL_STATUS", subjects: ["machine.*.tool-installation.status"] },
  { name: "CONFIG_STATUS", subjects: ["machine.*.config.status"] },
  { name: "CONFIG_PUSH", subjects: ["machine.*.download-configuration"] },
  { name: "CLIENT_UPDATE_STATUS", subjects: ["machine.*.client-update.status"] },
  { name: "CLIENT_UNINSTALL_STATUS", subjects: ["machine.*.client-uninstall.status"] },
];

/** The event streams the bridge reads device state from (names above). */
export const DEVICE_STATE_STREAMS = { connections: "CLIENT_CONNECTIONS", inventory: "INVENTORY" } as const;

/** Two minutes at least, per docs/DESIGN.md, so a redelivery after a reconnect is still deduplicated. */
export const STREAM_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;
