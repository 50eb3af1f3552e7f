import type { OsName } from "../contracts/index.ts";

/** The machine an agent runs on, as the agent sees it: injected, so one process can pose as many. */
export interface Host {
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  readonly pid: number;
}

/** The platform's name for an OS (DownloadConfiguration's `os`). */
export function osNameOf(platform: NodeJS.Platform): OsName {
  return platform === "win32" ? "windows" : platform === "darwin" ? "macos" : "linux";
}
