import type { ExitCodeValue, ProcessHost } from "../cli-kit/index.ts";
import type { FlagValues, Settings } from "../settings/index.ts";

/** One flag a command takes of its own (the settings flags are described by the settings). */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly multiple?: boolean;
  readonly short?: string;
  /** The value's name in help: `--server URL`. */
  readonly valueName?: string;
  readonly help: string;
  /** What applies when the flag is not given, when that is worth saying. */
  readonly default?: string;
}

/** What a command gets when it runs. */
export interface CommandContext {
  /** Every argument after `edge-agent`, the command's name included (`run` hands them to an installed update). */
  readonly args: readonly string[];
  readonly flags: FlagValues;
  /** The positional arguments after the command's name. */
  readonly positionals: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** The process's platform and privilege, which pick the default paths. */
  readonly host: ProcessHost;
  /** The settings (defaults < settings file < environment < flags), resolved on first use. */
  settings(): Settings;
  /** One or more lines to stdout. */
  print(text: string): void;
}

/**
 * One `edge-agent` command: everything `--help` says about it and how it runs. `run` imports what
 * it needs when called, so a command starts without loading the others' modules.
 */
export interface CommandSpec {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** What follows `edge-agent <name>` on the usage line (positionals and notable flags). */
  readonly usage: string;
  /** A few lines more, when the summary is not enough. */
  readonly description?: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Which settings flags it takes: all of them (it reads the settings), or the listed ones. */
  readonly settingsFlags: "all" | readonly string[];
  /** How many positional arguments it takes at most. */
  readonly maxPositionals: number;
  readonly examples: readonly string[];
  readonly exitCodes: readonly ExitCodeValue[];
  run(context: CommandContext): Promise<number>;
}
