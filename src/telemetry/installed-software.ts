import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface SoftwarePackage {
  readonly name: string;
  readonly version: string;
}

const byName = (a: SoftwarePackage, b: SoftwarePackage): number =>
  a.name.localeCompare(b.name) || a.version.localeCompare(b.version);

/** Deduplicated and sorted, so the same machine hashes the same way every time. */
function normalized(list: readonly SoftwarePackage[]): SoftwarePackage[] {
  const seen = new Set<string>();
  const unique: SoftwarePackage[] = [];
  for (const entry of list) {
    const key = `${entry.name}\u0000${entry.version}`;
    if (entry.name === "" || seen.has(key)) continue;
    seen.add(key);
    unique.push(entry);
  }
  return unique.sort(byName);
}

/** `dpkg-query -W -f='${Package}\t${Version}\n'` or `rpm -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\n'`. */
export function parseTabSeparatedPackages(stdout: string): SoftwarePackage[] {
  return normalized(
    stdout
      .split("\n")
      .filter((line) => line.includes("\t"))
      .map((line) => {
        const [name = "", version = ""] = line.split("\t");
        return { name: name.trim(), version: version.trim() };
      }),
  );
}

/**
 * `reg query <Uninstall key> /s`: one block per program, `DisplayName` and `DisplayVersion` among
 * its values. Entries without a DisplayName (updates, components) are not programs a person
 * installed, and system components (`SystemComponent 0x1`) are hidden in Windows' own list too.
 */
export function parseWindowsUninstallKeys(stdout: string): SoftwarePackage[] {
  const programs: SoftwarePackage[] = [];
  let current: { name?: string; version?: string; hidden?: boolean } = {};
  const flush = (): void => {
    if (current.name && !current.hidden) programs.push({ name: current.name, version: current.version ?? "" });
    current = {};
  };
  for (const rawLine of stdout.split(/\r?\n/)) {
    if (/^HKEY_/i.test(rawLine)) {
      flush();
      continue;
    }
    const value =
      /^\s+(\S[^\t]*?)\s{2,}REG_\w+\s{2,}(.*)$/.exec(rawLine) ?? /^\s+(\S+)\s+REG_\w+\s+(.*)$/.exec(rawLine);
    if (!value) continue;
    const [, key = "", data = ""] = value;
    if (key === "DisplayName") current.name = data.trim();
    else if (key === "DisplayVersion") current.version = data.trim();
    else if (key === "SystemComponent") current.hidden = /^0x0*1$/i.test(data.trim());
  }
  flush();
  return normalized(programs);
}

/** `system_profiler SPApplicationsDataType -json`: every application bundle macOS knows of. */
export function parseMacApplications(stdout: string): SoftwarePackage[] {
  const parsed: unknown = JSON.parse(stdout);
  const list = (parsed as { SPApplicationsDataType?: unknown }).SPApplicationsDataType;
  if (!Array.isArray(list)) throw new Error("system_profiler gave no SPApplicationsDataType list");
  return normalized(
    list.flatMap((entry: unknown) => {
      if (typeof entry !== "object" || entry === null) return [];
      const { _name: name, version } = entry as { _name?: unknown; version?: unknown };
      return typeof name === "string" ? [{ name, version: typeof version === "string" ? version : "" }] : [];
    }),
  );
}

const UNINSTALL_KEYS = [
  "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
  "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
];

/** Installed software from the platform's own records; throws when none of them answers. */
export async function installedSoftware(platform: NodeJS.Platform): Promise<SoftwarePackage[]> {
  const options = { timeout: 60_000, maxBuffer: 64 * 1024 * 1024, windowsHide: true };
  if (platform === "linux") {
    try {
      return parseTabSeparatedPackages(
        (await run("dpkg-query", ["-W", "-f=${Package}\t${Version}\n"], options)).stdout,
      );
    } catch (dpkgError) {
      try {
        return parseTabSeparatedPackages(
          (await run("rpm", ["-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"], options)).stdout,
        );
      } catch {
        throw new Error(`no package manager answered (dpkg-query: ${(dpkgError as Error).message.split("\n")[0]})`);
      }
    }
  }
  if (platform === "win32") {
    const outputs = await Promise.all(
      // The 32-bit view is missing on 32-bit Windows: that is not an error.
      UNINSTALL_KEYS.map((key, index) =>
        run("reg", ["query", key, "/s"], options).then(
          (result) => result.stdout,
          (error: unknown) => (index === 0 ? Promise.reject(error) : ""),
        ),
      ),
    );
    return normalized(outputs.flatMap((stdout) => parseWindowsUninstallKeys(stdout)));
  }
  if (platform === "darwin") {
    return parseMacApplications(
      (await run("system_profiler", ["SPApplicationsDataType", "-json", "-detailLevel", "mini"], options)).stdout,
    );
  }
  return [];
}
