import { readFileSync } from "node:fs";
import type { PlatformState } from "./platform-state.ts";

/** Whether `pid` runs a program of this platform: its command line names the state dir. */
function runsFrom(pid: number, stateDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(stateDir);
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}

const STOP_WAIT_MS = 15_000;

/**
 * Stops what a platform that did not stop cleanly (killed, or its terminal closed) left running on
 * this state dir. Called with the state dir's lock held: the platform that started them is gone.
 * A pid is only signalled while its command line still names this state dir (pids are reused).
 */
export async function stopLeftovers(state: PlatformState, report: (line: string) => void): Promise<void> {
  const leftovers = state.readProcesses().filter(({ pid }) => runsFrom(pid, state.dir));
  for (const { name, pid } of leftovers) {
    report(`${name} (pid ${pid}) is still running from a platform that did not stop cleanly: stopping it`);
    signalGroup(pid, "SIGTERM");
  }
  const until = performance.now() + STOP_WAIT_MS;
  for (const { name, pid } of leftovers) {
    while (runsFrom(pid, state.dir) && performance.now() < until) await new Promise((r) => setTimeout(r, 100));
    if (runsFrom(pid, state.dir)) {
      report(`${name} (pid ${pid}) did not stop in ${STOP_WAIT_MS / 1000} s: killing it`);
      signalGroup(pid, "SIGKILL");
    }
  }
  state.writeProcesses([]);
}
