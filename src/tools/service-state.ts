import { execFile } from "node:child_process";
import { existsSync } from "node:fs";

export type ServiceState = "active" | "inactive" | "unknown";

/**
 * How a service's state is read on `platform`: from systemd on Linux; "unknown" where systemd does
 * not run (containers, other OSes).
 */
export function serviceStateReader(platform: NodeJS.Platform): (serviceName: string) => Promise<ServiceState> {
  return (serviceName) => (platform === "linux" ? systemdServiceState(serviceName) : Promise.resolve("unknown"));
}

function systemdServiceState(serviceName: string): Promise<ServiceState> {
  if (!existsSync("/run/systemd/system")) return Promise.resolve("unknown");
  return new Promise((resolve) => {
    execFile("systemctl", ["is-active", "--quiet", serviceName], { timeout: 5_000 }, (error) => {
      if (!error) return resolve("active");
      resolve((error as NodeJS.ErrnoException).code === "ENOENT" ? "unknown" : "inactive");
    });
  });
}
