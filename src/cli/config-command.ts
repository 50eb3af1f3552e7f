import { readFile } from "node:fs/promises";
import { configDelete, configGet, configPush, configSet, ConfigRejectedError } from "../config/index.ts";
import type { Settings } from "../settings/index.ts";
import { CommandError, ExitCode } from "./exit-codes.ts";
import { connectOnce } from "./one-shot-connection.ts";

const USAGE = `usage: edge-agent config get [--machine ID]
       edge-agent config set [--machine ID] KEY VALUE [--signing-seed-file F]
       edge-agent config push [--machine ID] FILE.json [--signing-seed-file F]
       edge-agent config delete [--machine ID] [--signing-seed-file F]   (signed: a tombstone)
(no --machine: the fleet-wide "defaults" key)`;

async function readSeed(path: string | undefined): Promise<Uint8Array | undefined> {
  if (!path) return undefined;
  try {
    return new TextEncoder().encode((await readFile(path, "utf8")).trim());
  } catch (error) {
    throw new CommandError(`cannot read the signing seed ${path}: ${(error as Error).message}`, ExitCode.badSettings);
  }
}

/** `edge-agent config get|set|push|delete`: read and write the agent-config KV keys on EDGE_AGENT_NATS_URL. */
export async function configCommand(settings: Settings, args: readonly string[], flags: { machine?: string; signingSeedFile?: string }, print: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  const target = flags.machine ? { machineId: flags.machine } : {};
  if (action !== "get" && action !== "set" && action !== "push" && action !== "delete") throw new CommandError(USAGE, ExitCode.badSettings);
  if ((action === "set" && rest.length !== 2) || (action === "push" && rest.length !== 1) || ((action === "get" || action === "delete") && rest.length !== 0)) {
    throw new CommandError(USAGE, ExitCode.badSettings);
  }
  const seed = await readSeed(flags.signingSeedFile);
  const connection = await connectOnce(settings, "edge-agent-config");
  try {
    if (action === "get") {
      const entry = await configGet(connection, target);
      print(entry ? JSON.stringify(entry, null, 2) : "(no document)");
      return;
    }
    let written: { key: string; revision: number };
    if (action === "delete") {
      written = await configDelete(connection, target, seed ? { signingSeed: seed } : {});
    } else if (action === "set") {
      written = await configSet(connection, target, rest[0] as string, rest[1] as string, seed ? { signingSeed: seed } : {});
    } else {
      let document: unknown;
      try {
        document = JSON.parse(await readFile(rest[0] as string, "utf8"));
      } catch (error) {
        throw new CommandError(`cannot read ${rest[0]} as JSON: ${(error as Error).message}`, ExitCode.badSettings);
      }
      written = await configPush(connection, target, document, seed ? { signingSeed: seed } : {});
    }
    print(`${written.key}: revision ${written.revision}${seed ? " (signed)" : ""}`);
  } catch (error) {
    if (error instanceof ConfigRejectedError) throw new CommandError(error.message, ExitCode.badSettings);
    throw error;
  } finally {
    await connection.close();
  }
}
