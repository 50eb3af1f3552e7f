export { selfUpdateCapability } from "./capability.ts";
export { abandonActive, decideLaunch, type LaunchContext, rollBackTrial } from "./launch-decision.ts";
export {
  type InstalledBinary,
  readUpdateState,
  type UpdateState,
  updatePaths,
  writeUpdateState,
} from "./update-state.ts";
