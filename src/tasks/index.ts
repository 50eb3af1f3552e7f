export { type TasksCapabilityOptions, tasksCapability } from "./capability.ts";
export { SandboxCheck } from "./sandbox.ts";
