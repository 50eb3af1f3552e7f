export { DownloadError, type DownloadedFile, type DownloadRequest, download } from "./downloader.ts";
export { DEFAULT_DOWNLOAD_DEADLINE_MS, DEFAULT_STALL_TIMEOUT_MS } from "./transfer-watchdog.ts";
