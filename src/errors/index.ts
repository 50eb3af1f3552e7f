export { EdgeError } from "./edge-error.ts";
