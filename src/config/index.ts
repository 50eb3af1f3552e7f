export { type ApplyOutcome, applyToComponents, type ConfigurableComponent } from "./apply.ts";
export { remoteConfigCapability } from "./capability.ts";
export type { ConfigEntry } from "./config-keys.ts";
export { type ConfigEntryMeaning, readConfigEntry } from "./kv-entry.ts";
export { LAST_GOOD_FILE } from "./last-good-store.ts";
export {
  type ConfigTarget,
  configDelete,
  configGet,
  configPush,
  configSet,
  configUnset,
  documentSetting,
  parseCliValue,
  type SigningOptions,
  settingValue,
} from "./operator.ts";
export {
  createRemoteConfig,
  type RemoteConfig,
  type RemoteConfigOptions,
  remoteConfigRoute,
} from "./remote-config.ts";
export { CONFIG_SETTING_PATHS, settingPathProblem, unknownSettingProblem } from "./setting-paths.ts";
export { ConfigRejectedError, validateDocument } from "./validate.ts";
