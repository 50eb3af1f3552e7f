export {
  DownloadError,
  type DownloadedFile,
  type DownloadRequest,
  download,
  isPolicyRefusal,
  MAX_REDIRECTS,
} from "./downloader.ts";
export { DEFAULT_DOWNLOAD_DEADLINE_MS, DEFAULT_STALL_TIMEOUT_MS } from "./transfer-watchdog.ts";
