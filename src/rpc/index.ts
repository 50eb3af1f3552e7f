export { rpcCapability } from "./capability.ts";
