export { createToolManager, TOOL_STREAM, type ToolManager, type ToolManagerOptions, type ToolPolicy } from "./tool-manager.ts";
export type { ToolRecord } from "./tool-state.ts";
