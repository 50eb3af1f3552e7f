export { configPushCapability } from "./config-push.ts";
