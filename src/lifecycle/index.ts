export { lifecycleCapability } from "./capability.ts";
