export {
  defaultServiceLayout,
  ExecutableUnreachableError,
  installService,
  uninstallService,
} from "./install-service.ts";
export { removeAgent, wasUninstalled } from "./remote-uninstall.ts";
export { SYSTEMD_UNIT_TEMPLATE } from "./unit-template.ts";
