import type Conf from "conf";

/**
 * The settings file as `conf` keeps it: atomic writes, mode 0600 (it may hold a password or a
 * token). Loaded on demand: only the commands that write settings need it.
 */
export async function openSettingsStore(configDir: string): Promise<Conf<Record<string, unknown>>> {
  const { default: ConfStore } = await import("conf");
  return new ConfStore<Record<string, unknown>>({
    cwd: configDir,
    configName: "settings",
    // A damaged settings file must stop the agent with a clear line, never be wiped.
    clearInvalidConfig: false,
    watch: false,
    configFileMode: 0o600,
  });
}
