export { type TasksCapabilityOptions, tasksCapability } from "./capability.ts";
