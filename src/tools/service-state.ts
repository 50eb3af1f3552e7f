import { execFile } from "node:child_process";
import { existsSync } from "node:fs";

export type ServiceState = "active" | "inactive" | "unknown";

/** A service's state from systemd; "unknown" where systemd does not run (containers, other OSes). */
export function systemdServiceState(serviceName: string): Promise<ServiceState> {
  if (process.platform !== "linux" || !existsSync("/run/systemd/system")) return Promise.resolve("unknown");
  return new Promise((resolve) => {
    execFile("systemctl", ["is-active", "--quiet", serviceName], { timeout: 5_000 }, (error) => {
      if (!error) return resolve("active");
      resolve((error as NodeJS.ErrnoException).code === "ENOENT" ? "unknown" : "inactive");
    });
  });
}
