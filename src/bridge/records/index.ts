export { type RouterOptions, routeMessage, tooLargeDeadLetter } from "./event-router.ts";
export { provenanceOf } from "./provenance.ts";
export { headerValue, type OutputRecord, recordSize, type SourceMessage, textOf } from "./source-message.ts";
