/**
 * The oldest Node the agent runs on from sources (package.json `engines`; a test keeps the two
 * equal): it must strip TypeScript types by itself and have node:sqlite.
 */
export const MINIMUM_NODE_VERSION = "24.0.0";

function parts(version: string): [number, number, number] | null {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version.trim());
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : null;
}

/** One line saying which Node is needed when `running` is older than `minimum`; null when it will do. */
export function nodeVersionProblem(running: string, minimum: string = MINIMUM_NODE_VERSION): string | null {
  const have = parts(running);
  const need = parts(minimum);
  if (have === null || need === null) return null;
  for (let index = 0; index < 3; index++) {
    if ((have[index] as number) > (need[index] as number)) return null;
    if ((have[index] as number) < (need[index] as number)) {
      return `edge-agent needs Node ${minimum} or newer, and this is Node ${running.replace(/^v/, "")}; npm start and npm run agent use the project's pinned Node (run npm install first), or install the packaged edge-agent`;
    }
  }
  return null;
}
