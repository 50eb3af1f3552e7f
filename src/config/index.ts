export { createRemoteConfig, type RemoteConfig, type RemoteConfigOptions } from "./remote-config.ts";
export { applyToComponents, type ConfigurableComponent, type ApplyOutcome } from "./apply.ts";
export { configDelete, configGet, configPush, configSet, configUnset, parseCliValue, settingValue, type ConfigTarget, type SigningOptions } from "./operator.ts";
export { ConfigRejectedError, validateDocument } from "./validate.ts";
export { readConfigEntry, type ConfigEntryMeaning } from "./kv-entry.ts";
export type { ConfigEntry } from "./config-keys.ts";
export { LAST_GOOD_FILE } from "./last-good-store.ts";
export { CONFIG_SETTING_PATHS, settingPathProblem, unknownSettingProblem } from "./setting-paths.ts";
