export * from "./ordered-stream-source.ts";
