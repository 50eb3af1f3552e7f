import { EdgeError } from "../errors/index.ts";

/** A setting that cannot be used. `setting` names it the way the operator wrote it. */
export class SettingsError extends EdgeError {
  readonly code = "EDGE_BAD_SETTING";
  readonly setting: string;
  constructor(setting: string, problem: string, options?: { readonly cause?: unknown }) {
    super(`invalid setting ${setting}: ${problem}`, options);
    this.name = "SettingsError";
    this.setting = setting;
  }
}
