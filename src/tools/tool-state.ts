import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as z from "zod";
import {
  DownloadRecord,
  ToolConnectionState,
  ToolInstallationMessage,
  ToolInstallationState,
} from "../contracts/index.ts";
import { writeFileAtomic } from "../runtime/index.ts";

/** What the agent knows of one tool, persisted beside (not inside) its folder. */
export const ToolRecord = z.object({
  toolAgentId: z.string(),
  version: z.string().nullable(),
  state: ToolInstallationState,
  error: z.string().nullable(),
  updatedAt: z.string(),
  /** The message that installed it: its uninstall and id commands are needed later. */
  message: ToolInstallationMessage,
  /** The tool's main file, relative to its folder. */
  mainFile: z.string().nullable(),
  agentToolId: z.string().nullable(),
  connection: ToolConnectionState.nullable(),
  /**
   * The last commands (event ids) whose work finished, installed or failed for good: a copy the
   * server delivers again (its ack was lost) is recognised and acked without doing the work twice.
   */
  commandIds: z.array(z.string()).default([]),
  /** The files the installed version was made of, as they arrived (size, sha256, whether one was promised). */
  downloads: z.array(DownloadRecord).default([]),
});
export type ToolRecord = z.infer<typeof ToolRecord>;

const STATE_SUFFIX = ".state.json";
/** How many finished commands a tool's record remembers. */
const REMEMBERED_COMMANDS = 16;

/** `commandIds` with `commandId` added (the oldest forgotten beyond a few). */
export function rememberCommand(commandIds: readonly string[], commandId: string | null): string[] {
  if (commandId === null) return [...commandIds];
  return [...commandIds.filter((id) => id !== commandId), commandId].slice(-REMEMBERED_COMMANDS);
}

export function toolStore(toolsDir: string): {
  read(toolAgentId: string): Promise<ToolRecord | null>;
  write(record: ToolRecord): Promise<void>;
  list(): Promise<ToolRecord[]>;
} {
  const pathOf = (toolAgentId: string): string => join(toolsDir, `${toolAgentId}${STATE_SUFFIX}`);
  const read = async (toolAgentId: string): Promise<ToolRecord | null> => {
    try {
      return ToolRecord.parse(JSON.parse(await readFile(pathOf(toolAgentId), "utf8")));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw new Error(`tool state ${pathOf(toolAgentId)} is unreadable: ${(error as Error).message}`);
    }
  };
  return {
    read,
    write: (record) => writeFileAtomic(pathOf(record.toolAgentId), `${JSON.stringify(record, null, 2)}\n`, 0o600),
    async list() {
      let names: string[];
      try {
        names = await readdir(toolsDir);
      } catch {
        return [];
      }
      const records = await Promise.all(
        names
          .filter((name) => name.endsWith(STATE_SUFFIX))
          .map((name) => read(name.slice(0, -STATE_SUFFIX.length)).catch(() => null)),
      );
      return records.filter((record) => record !== null);
    },
  };
}
