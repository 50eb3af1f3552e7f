export { toolsCapability } from "./capability.ts";
export type { ToolPolicy } from "./tool-commands.ts";
export { createToolManager, type ToolManager, type ToolManagerOptions } from "./tool-manager.ts";
export type { ToolRecord } from "./tool-state.ts";
