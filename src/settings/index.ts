export * from "./settings.ts";
export * from "./errors.ts";
export * from "./defaults.ts";
export * from "./load.ts";
export { settingsFlagOptions, type FlagValues } from "./sources.ts";
export * from "./enrollment.ts";
