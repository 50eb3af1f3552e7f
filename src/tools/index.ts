export { toolsCapability } from "./capability.ts";
export { createToolManager, type ToolManager, type ToolManagerOptions, type ToolPolicy } from "./tool-manager.ts";
export type { ToolRecord } from "./tool-state.ts";
