import { ProgressType, RequestType } from 'vscode-languageserver-protocol';
import type { WorkDoneProgressBegin, WorkDoneProgressEnd, WorkDoneProgressParams, WorkDoneProgressReport } from 'vscode-languageserver-protocol';

export interface GpuInstallParams extends WorkDoneProgressParams {
  /** The only provider so far. */
  provider: 'cuda';
  /** Download and install again even when a whole install is present. */
  force?: boolean;
}

/** One line of `vlcache gpu doctor`. */
export interface GpuCheck {
  id: string;
  status: 'ok' | 'missing' | 'problem' | 'info';
  detail: string;
  /** What to do, when status is missing or problem. */
  fix?: string;
}

export interface GpuInstallResult {
  /** A whole install is in place now. */
  installed: boolean;
  /** False when it was already installed and nothing was downloaded. */
  changed: boolean;
  /** The per-user install folder. */
  dir?: string;
  /** The npm registry it came from (npm's registry setting). */
  registry?: string;
  /** The machine checks after the install (driver, CUDA 13 libraries, Vulkan). */
  checks: GpuCheck[];
  /**
   * The daemon runs the provider only after a restart: ONNX Runtime is loaded once, at
   * start, from the provider's folder when one is installed.
   */
  restartNeeded: boolean;
}

/** The work-done progress values on `workDoneToken` (for the client's onProgress). */
export const GpuInstallProgressType = new ProgressType<WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd>();

/**
 * Client → server. "VLCache: Install CUDA Provider": downloads ONNX Runtime's CUDA
 * provider from the npm registry (integrity checked, resumable) into the per-user provider
 * folder. Work-done progress: `percentage` and a message per phase (download with MiB,
 * verify, extract). Cancellable: a cancelled install leaves nothing installed (the
 * partial download is kept and resumed by the next one). A failure (registry unreachable,
 * checksum mismatch, another install running, unsupported platform) is an InternalError
 * response whose message says what happened.
 */
export namespace GpuInstallRequest {
  export const method = 'vlcache/gpuInstall' as const;
  export const type = new RequestType<GpuInstallParams, GpuInstallResult, void>(method);
}
