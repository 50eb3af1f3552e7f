export { METRICS_LISTEN_EXAMPLE, METRICS_OFF, type MetricsListen, parseMetricsListen } from "../metrics-kit/index.ts";
export { type SettingSpec, SettingsError } from "../settings-kit/index.ts";
export * from "./conventions.ts";
export * from "./defaults.ts";
export * from "./enrollment.ts";
export * from "./load.ts";
export * from "./settings.ts";
export { type FlagValues, SETTING_SPECS, settingsFlagOptions } from "./sources.ts";
