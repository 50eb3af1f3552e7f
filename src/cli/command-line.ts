import { parseArgs } from "node:util";
import { CommandError, ExitCode } from "../cli-kit/index.ts";
import { didYouMean } from "../runtime/index.ts";
import { type FlagValues, SETTING_SPECS } from "../settings/index.ts";
import type { CommandSpec, FlagSpec } from "./command-spec.ts";

/** `--help` and `-h`: every command takes them, and does nothing else when given them. */
export const HELP_FLAG: FlagSpec = { type: "boolean", short: "h", help: "print this help and do nothing else" };

type ParseOptions = Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>;

/** The settings flags of a command, with what `--help` says about each. */
export function settingsFlagsOf(command: CommandSpec): Record<string, FlagSpec> {
  const flags: Record<string, FlagSpec> = {};
  for (const spec of SETTING_SPECS) {
    if (!spec.flag || (command.settingsFlags !== "all" && !command.settingsFlags.includes(spec.flag))) continue;
    flags[spec.flag] = {
      type: "string",
      ...(spec.kind === "tags" ? { multiple: true } : {}),
      ...(spec.valueName ? { valueName: spec.valueName } : {}),
      help: spec.help ?? spec.path,
    };
  }
  return flags;
}

/** Every flag the command takes: its own, its settings flags and `--help`. */
export function flagsOf(command: CommandSpec): Record<string, FlagSpec> {
  return { ...settingsFlagsOf(command), ...command.flags, help: HELP_FLAG };
}

/** A negative number is a value (`config set heartbeatSeconds -5`), never an option: no option is a digit. */
const NEGATIVE_NUMBER = /^-\d+(\.\d+)?$/;
/** What a negative number stands in as while parseArgs reads the line (it takes any `-x` for an option). */
const NEGATIVE_MARK = "\u0000";
const shield = (word: string): string => (NEGATIVE_NUMBER.test(word) ? `${NEGATIVE_MARK}${word}` : word);
const unshield = (word: string): string => (word.startsWith(NEGATIVE_MARK) ? word.slice(NEGATIVE_MARK.length) : word);

function unshieldFlags(values: FlagValues): FlagValues {
  const restored: FlagValues = {};
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === "string") restored[name] = unshield(value);
    else if (Array.isArray(value) && value.every((entry) => typeof entry === "string"))
      restored[name] = (value as string[]).map(unshield);
    else restored[name] = value;
  }
  return restored;
}

export type ParsedCommandLine =
  | { readonly help: true }
  | { readonly help: false; readonly flags: FlagValues; readonly positionals: readonly string[] };

/**
 * Reads one command's arguments (`args`: those after its name). `--help` wins over everything
 * else; an option the command does not take is refused with the closest one it does, or with the
 * commands that take it.
 */
export function parseCommandLine(
  command: CommandSpec,
  args: readonly string[],
  allCommands: readonly CommandSpec[],
): ParsedCommandLine {
  const flags = flagsOf(command);
  const words = args.map(shield);
  const options: ParseOptions = {};
  for (const [name, flag] of Object.entries(flags)) {
    options[name] = {
      type: flag.type,
      ...(flag.multiple ? { multiple: true } : {}),
      ...(flag.short ? { short: flag.short } : {}),
    };
  }
  // Loosely first: to see --help before anything can fail, and to name unknown options our way.
  const { tokens } = parseArgs({ args: words, options, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((token) => token.kind === "option" && token.name === "help")) return { help: true };
  for (const token of tokens) {
    if (token.kind !== "option" || token.name in flags) continue;
    const others = allCommands.filter((other) => token.name in flagsOf(other)).map((other) => other.name);
    const known = Object.keys(flags).map((name) => `--${name}`);
    const hint =
      others.length > 0
        ? ` (${others.join(", ")} take${others.length === 1 ? "s" : ""} it)`
        : didYouMean(`--${token.name}`, known);
    throw new CommandError(
      `${command.name} has no option ${token.rawName}${hint} (edge-agent ${command.name} --help lists its options)`,
      ExitCode.badSettings,
    );
  }
  let parsed: { values: FlagValues; positionals: string[] };
  try {
    const raw = parseArgs({ args: words, options, strict: true, allowPositionals: true }) as {
      values: FlagValues;
      positionals: string[];
    };
    parsed = { values: unshieldFlags(raw.values), positionals: raw.positionals.map(unshield) };
  } catch (error) {
    // parseArgs's own lines, for a missing value or a value given to a switch, are clear enough.
    throw new CommandError(`${command.name}: ${(error as Error).message}`, ExitCode.badSettings, { cause: error });
  }
  if (parsed.positionals.length > command.maxPositionals) {
    const extra = parsed.positionals
      .slice(command.maxPositionals)
      .map((word) => JSON.stringify(word))
      .join(" ");
    throw new CommandError(
      `${command.name} takes ${command.maxPositionals === 0 ? "no arguments" : `at most ${command.maxPositionals}`} but got ${extra} too (usage: edge-agent ${[command.name, command.usage].filter((part) => part !== "").join(" ")})`,
      ExitCode.badSettings,
    );
  }
  return { help: false, flags: parsed.values, positionals: parsed.positionals };
}
