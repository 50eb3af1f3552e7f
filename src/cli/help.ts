import type { ProcessHost } from "../cli-kit/index.ts";
import { EXIT_CODE_MEANINGS, type ExitCodeValue } from "../cli-kit/index.ts";
import { defaultSettings, SETTING_SPECS, type SettingSpec } from "../settings/index.ts";
import { HELP_FLAG } from "./command-line.ts";
import type { CommandSpec, FlagSpec } from "./command-spec.ts";

const FLAG_COLUMN = 30;

function flagLine(name: string, flag: FlagSpec, extra = ""): string {
  const shown = `${flag.short ? `-${flag.short}, ` : ""}--${name}${flag.valueName ? ` ${flag.valueName}` : ""}`;
  const note = [flag.help, flag.default === undefined ? "" : `(default ${flag.default})`, extra]
    .filter((part) => part !== "")
    .join(" ");
  return `  ${shown.padEnd(FLAG_COLUMN - 3)} ${note}`;
}

function valueAt(settings: Record<string, unknown>, path: string): unknown {
  let node: unknown = settings;
  for (const part of path.split("."))
    node = node !== null && typeof node === "object" ? (node as Record<string, unknown>)[part] : undefined;
  return node;
}

/** The default a setting has for whoever asks (root gets the system paths, a user their own). */
function defaultOf(spec: SettingSpec, host: ProcessHost, env: NodeJS.ProcessEnv): string | undefined {
  const value = valueAt(
    defaultSettings(host.platform, env, host.privileged) as unknown as Record<string, unknown>,
    spec.path,
  );
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.join(",");
  if (value !== null && typeof value === "object")
    return Object.keys(value).length === 0 ? undefined : JSON.stringify(value);
  return String(value);
}

/** Every setting: its flag (if it has one), its environment variables and its default. */
function settingsLines(specs: readonly SettingSpec[], host: ProcessHost, env: NodeJS.ProcessEnv): string[] {
  return specs.map((spec) => {
    const fallback = defaultOf(spec, host, env);
    const flag: FlagSpec = {
      type: "string",
      help: spec.help ?? spec.path,
      ...(spec.valueName ? { valueName: spec.valueName } : {}),
      ...(fallback === undefined ? {} : { default: fallback }),
    };
    if (spec.flag) return flagLine(spec.flag, flag, `[${spec.env.join(", ")}]`);
    // No flag: only the environment (or settings.json) sets it.
    const [variable, ...others] = spec.env;
    const note = [
      flag.help,
      flag.default === undefined ? "" : `(default ${flag.default})`,
      others.length > 0 ? `[${others.join(", ")}]` : "",
    ].filter((part) => part !== "");
    return `  ${`${variable ?? spec.path}=${spec.valueName ?? "VALUE"}`.padEnd(FLAG_COLUMN - 3)} ${note.join(" ")}`;
  });
}

function exitCodeLines(codes: readonly ExitCodeValue[]): string[] {
  return codes.map((code) => `  ${String(code).padEnd(4)}${EXIT_CODE_MEANINGS[code]}`);
}

/** `edge-agent <command> --help`: usage, what it does, its options with defaults, examples, exit codes. */
export function commandHelp(command: CommandSpec, host: ProcessHost, env: NodeJS.ProcessEnv): string {
  const lines = [
    `usage: edge-agent ${command.name}${command.usage ? ` ${command.usage}` : ""}`,
    "",
    `${command.summary}.`,
  ];
  if (command.description) lines.push(command.description);
  lines.push(
    "",
    "options:",
    ...Object.entries(command.flags).map(([name, flag]) => flagLine(name, flag)),
    flagLine("help", HELP_FLAG),
  );
  const settings =
    command.settingsFlags === "all"
      ? SETTING_SPECS
      : SETTING_SPECS.filter((spec) => spec.flag !== undefined && command.settingsFlags.includes(spec.flag));
  if (settings.length > 0) {
    lines.push(
      "",
      command.settingsFlags === "all"
        ? "settings options (each also an environment variable, in brackets; flags win over the environment, which wins over settings.json):"
        : "settings options:",
    );
    lines.push(...settingsLines(settings, host, env));
  }
  lines.push(
    "",
    "examples:",
    ...command.examples.map((example) => `  ${example}`),
    "",
    "exit codes:",
    ...exitCodeLines(command.exitCodes),
  );
  return lines.join("\n");
}

/** `edge-agent --help`: every command with its own options, every setting, the exit codes. */
export function overallHelp(commands: readonly CommandSpec[], host: ProcessHost, env: NodeJS.ProcessEnv): string {
  const width = Math.max(...commands.map((command) => command.name.length)) + 2;
  const lines = [
    "usage: edge-agent <command> [options]     (edge-agent <command> --help: that command in full)",
    "",
    "commands:",
  ];
  for (const command of commands) {
    lines.push(`  ${command.name.padEnd(width)}${command.summary}`);
    if (command.usage !== "" && command.usage !== "[settings options]")
      lines.push(`  ${"".padEnd(width)}  ${command.name} ${command.usage}`);
  }
  const ownFlags = new Map<string, FlagSpec & { commands: string[] }>();
  for (const command of commands) {
    for (const [name, flag] of Object.entries(command.flags)) {
      const seen = ownFlags.get(name);
      if (seen) seen.commands.push(command.name);
      else ownFlags.set(name, { ...flag, commands: [command.name] });
    }
  }
  lines.push(
    "",
    "command options:",
    ...[...ownFlags].map(([name, flag]) => flagLine(name, flag, `[${flag.commands.join(", ")}]`)),
    flagLine("help", HELP_FLAG, "[every command]"),
  );
  lines.push(
    "",
    "settings options (every command that reads settings; each also an environment variable, in brackets; see README.md):",
  );
  lines.push(...settingsLines(SETTING_SPECS, host, env));
  lines.push("", "exit codes:", ...exitCodeLines(Object.keys(EXIT_CODE_MEANINGS).map(Number) as ExitCodeValue[]));
  return lines.join("\n");
}
