export { download, DownloadError, type DownloadRequest, type DownloadedFile } from "./downloader.ts";
export { DEFAULT_DOWNLOAD_DEADLINE_MS, DEFAULT_STALL_TIMEOUT_MS } from "./transfer-watchdog.ts";
