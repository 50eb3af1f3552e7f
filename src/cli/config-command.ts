import { readFile } from "node:fs/promises";
import { CommandError, connectOnce, ExitCode } from "../cli-kit/index.ts";
import {
  ConfigRejectedError,
  configDelete,
  configGet,
  configPush,
  configSet,
  configUnset,
  documentSetting,
  settingPathProblem,
  settingValue,
  validateDocument,
} from "../config/index.ts";
import { SETTING_SPECS, type Settings } from "../settings/index.ts";

const USAGE = `usage: edge-agent config get [--machine ID]
       edge-agent config set [--machine ID] KEY VALUE [--signing-seed-file F]
       edge-agent config unset [--machine ID] KEY [--signing-seed-file F]
       edge-agent config push [--machine ID] FILE.json [--signing-seed-file F]
       edge-agent config delete [--machine ID] [--signing-seed-file F]   (signed: a tombstone)
(no --machine: the fleet-wide "defaults" key; edge-agent config --help lists the keys)`;

const ARGUMENT_COUNTS = { get: 0, set: 2, unset: 1, push: 1, delete: 0 } as const;
type Action = keyof typeof ARGUMENT_COUNTS;

/** Names a machine's own settings file or environment can set, which no remote document can. */
const LOCAL_ONLY = new Set(["natsUrl", ...SETTING_SPECS.map((spec) => spec.path)]);

async function readSeed(path: string | undefined): Promise<Uint8Array | undefined> {
  if (!path) return undefined;
  try {
    return new TextEncoder().encode((await readFile(path, "utf8")).trim());
  } catch (error) {
    throw new CommandError(`cannot read the signing seed ${path}: ${(error as Error).message}`, ExitCode.badSettings, {
      cause: error,
    });
  }
}

/** Refuses, before anything is sent, a key no agent would take (exit 2, with the closest key). */
function assertKnownKey(path: string): void {
  const problem = settingPathProblem(path);
  if (problem === null) return;
  if (LOCAL_ONLY.has(path)) {
    throw new CommandError(
      `${JSON.stringify(path)} is a local setting of each machine (its settings.json or environment): remote configuration cannot change it; ${problem}`,
      ExitCode.badSettings,
    );
  }
  throw new CommandError(problem, ExitCode.badSettings);
}

/** `edge-agent config get|set|unset|push|delete`: read and write the agent-config KV keys on EDGE_AGENT_NATS_URL. */
export async function configCommand(
  settings: Settings,
  args: readonly string[],
  flags: { machine?: string; signingSeedFile?: string },
  print: (line: string) => void,
): Promise<void> {
  const [action, ...rest] = args;
  if (action === undefined || !(action in ARGUMENT_COUNTS) || rest.length !== ARGUMENT_COUNTS[action as Action])
    throw new CommandError(USAGE, ExitCode.badSettings);
  const target = flags.machine ? { machineId: flags.machine } : {};
  const keyName = flags.machine ? `machine.${flags.machine}` : "defaults";
  if (action === "set" || action === "unset") assertKnownKey(rest[0] as string);
  let document: unknown;
  if (action === "push") {
    try {
      document = JSON.parse(await readFile(rest[0] as string, "utf8"));
    } catch (error) {
      throw new CommandError(`cannot read ${rest[0]} as JSON: ${(error as Error).message}`, ExitCode.badSettings, {
        cause: error,
      });
    }
  }
  try {
    // The value too is checked before connecting, as every agent would check it: a bad one is the
    // operator's to fix, not the link's.
    if (action === "set") {
      const path = rest[0] as string;
      validateDocument(documentSetting(path, settingValue(path, rest[1] as string)), keyName);
    }
    const seed = await readSeed(flags.signingSeedFile);
    const signing = seed ? { signingSeed: seed } : {};
    const connection = await connectOnce(settings, "edge-agent-config");
    try {
      if (action === "get") {
        const entry = await configGet(connection, target);
        print(entry ? JSON.stringify(entry, null, 2) : "(no document)");
        return;
      }
      let written: { key: string; revision: number } | null;
      if (action === "delete") written = await configDelete(connection, target, signing);
      else if (action === "set")
        written = await configSet(connection, target, rest[0] as string, rest[1] as string, signing);
      else if (action === "unset") written = await configUnset(connection, target, rest[0] as string, signing);
      else written = await configPush(connection, target, document, signing);
      if (written === null) print(`${rest[0]} is not set in ${keyName}: nothing written`);
      else print(`${written.key}: revision ${written.revision}${seed ? " (signed)" : ""}`);
    } finally {
      await connection.close();
    }
  } catch (error) {
    if (error instanceof ConfigRejectedError)
      throw new CommandError(error.message, ExitCode.badSettings, { cause: error });
    throw error;
  }
}
