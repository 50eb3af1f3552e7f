export { runPinotSetup } from "./pinot-setup.ts";
