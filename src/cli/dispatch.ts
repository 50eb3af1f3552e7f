import { CommandError, ExitCode, exitWhenWritten, type ProcessHost, processHost } from "../cli-kit/index.ts";
import { ReservedMachineIdError, UnsafeSubjectTokenError } from "../contracts/index.ts";
import { InboxPrefixError, MachineIdError } from "../identity/index.ts";
import { didYouMean } from "../runtime/index.ts";
import { loadSettings, type Settings, SettingsError } from "../settings/index.ts";
import { parseCommandLine } from "./command-line.ts";
import type { CommandSpec } from "./command-spec.ts";
import { COMMANDS } from "./commands.ts";
import { commandHelp, overallHelp } from "./help.ts";

export interface CommandLineIo {
  readonly env: NodeJS.ProcessEnv;
  readonly host: ProcessHost;
  readonly stdout: (text: string) => void;
}

function findCommand(name: string, commands: readonly CommandSpec[]): CommandSpec {
  const command = commands.find((candidate) => candidate.name === name);
  if (command) return command;
  const hint = didYouMean(
    name,
    commands.map((candidate) => candidate.name),
    (word) => `"${word}"`,
  );
  throw new CommandError(
    `unknown command ${JSON.stringify(name)}${hint} (edge-agent --help lists the commands)`,
    ExitCode.badSettings,
  );
}

/**
 * `edge-agent <args>`: finds the command, prints its help when asked (and does nothing else), or
 * runs it. Answers the exit code; errors are thrown (see `exitCodeFor`).
 */
export async function runCommandLine(
  args: readonly string[],
  io: CommandLineIo,
  commands: readonly CommandSpec[] = COMMANDS,
): Promise<number> {
  const print = (text: string): void => io.stdout(`${text}\n`);
  const [first, ...rest] = args;
  if (first === undefined)
    throw new CommandError("no command given (edge-agent --help lists the commands)", ExitCode.badSettings);
  if (first === "--help" || first === "-h") {
    print(overallHelp(commands, io.host, io.env));
    return ExitCode.ok;
  }
  if (first === "help") {
    if (rest.length === 0) print(overallHelp(commands, io.host, io.env));
    else print(commandHelp(findCommand(rest[0] as string, commands), io.host, io.env));
    return ExitCode.ok;
  }
  if (first.startsWith("-"))
    throw new CommandError(
      `the command comes first: edge-agent <command> ${first} ... (edge-agent --help lists the commands)`,
      ExitCode.badSettings,
    );
  const command = findCommand(first, commands);
  const parsed = parseCommandLine(command, rest, commands);
  if (parsed.help) {
    print(commandHelp(command, io.host, io.env));
    return ExitCode.ok;
  }
  let settings: Settings | undefined;
  return command.run({
    args,
    flags: parsed.flags,
    positionals: parsed.positionals,
    env: io.env,
    host: io.host,
    settings: () => (settings ??= loadSettings({ env: io.env, flags: parsed.flags, ...io.host }).settings),
    print,
  });
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof CommandError) return error.exitCode;
  if (
    error instanceof SettingsError ||
    error instanceof UnsafeSubjectTokenError ||
    error instanceof ReservedMachineIdError ||
    error instanceof InboxPrefixError
  )
    return ExitCode.badSettings;
  if (error instanceof MachineIdError) return ExitCode.failure;
  return ExitCode.failure;
}

/** The whole program: runs the command line and exits with its code once its output is out, one line on stderr on error. */
export function main(args: readonly string[]): void {
  runCommandLine(args, { env: process.env, host: processHost, stdout: (text) => void process.stdout.write(text) }).then(
    (code) => exitWhenWritten(code),
    (error: unknown) => {
      process.stderr.write(`edge-agent: ${error instanceof Error ? error.message : String(error)}\n`);
      exitWhenWritten(exitCodeFor(error));
    },
  );
}
