import { execFile } from "node:child_process";
import { MachineInventory } from "../contracts/index.ts";
import { assembleInventory, type InventoryCollector } from "./inventory.ts";

const INVENTORY_TIMEOUT_MS = 120_000;

/**
 * Runs `<command> inventory --json` in a short-lived child and validates what it prints. The
 * daemon uses this so systeminformation, and everything an inventory allocates, never stays in
 * its memory, and a collection stuck on a dead mount is killed with its child.
 */
export function childInventoryCollector(
  command: readonly string[],
  timeoutMs = INVENTORY_TIMEOUT_MS,
): InventoryCollector {
  const [file, ...prefix] = command;
  if (!file) throw new Error("childInventoryCollector needs a command");
  return (request) =>
    new Promise((resolve, reject) => {
      execFile(
        file,
        [...prefix, "inventory", "--json"],
        { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024, windowsHide: true, encoding: "utf8" },
        (error, stdout, stderr) => {
          if (error) {
            const why = error.killed ? `did not finish within ${timeoutMs / 1000} s` : error.message.split("\n")[0];
            reject(new Error(`inventory child ${why}${stderr ? `: ${stderr.trim().slice(0, 300)}` : ""}`));
            return;
          }
          try {
            resolve(assembleInventory(MachineInventory.parse(JSON.parse(stdout)), request));
          } catch (parseError) {
            reject(
              new Error(
                `inventory child printed something that is not an inventory: ${(parseError as Error).message.slice(0, 300)}`,
              ),
            );
          }
        },
      );
    });
}
