export * from "./settings.ts";
export * from "./errors.ts";
export * from "./defaults.ts";
export * from "./load.ts";
export { SETTING_SPECS, settingsFlagOptions, type FlagValues } from "./sources.ts";
export type { SettingSpec } from "./layers.ts";
export * from "./enrollment.ts";
export { parseMetricsListen, METRICS_LISTEN_EXAMPLE, type MetricsListen } from "./metrics-listen.ts";
