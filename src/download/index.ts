export { download, DownloadError, type DownloadRequest, type DownloadedFile } from "./downloader.ts";
