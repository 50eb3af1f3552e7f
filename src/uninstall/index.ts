export { remoteUninstallCapability, type UninstallAgent } from "./capability.ts";
