/** Types for test/swarm/busybox.mjs. */
export declare const BUSYBOX_CACHE: string;
export declare function ensureBusyboxStatic(log?: (line: string) => void): Promise<string>;
export declare function busyboxRootfs(
  outputTar: string,
  files?: Record<string, { content: string; mode?: number }>,
  log?: (line: string) => void,
): Promise<string>;
