/** Types for the pure parts of ensure-docker.mjs that test/ensure-docker.test.ts checks. */
export interface EngineAddress {
  kind: 'unix' | 'tcp';
  socketPath?: string;
  host?: string;
  port?: number;
  local: boolean;
  /** True when DOCKER_HOST named it (not the default socket). */
  explicit: boolean;
}
export interface RunningDockerd {
  pid: number;
  hosts: string[];
  /** Ferry's own test engine. */
  ours: boolean;
}
export type EnginePlan =
  | { action: 'use' }
  | { action: 'wait'; pid: number }
  | { action: 'start' }
  | { action: 'private'; foreign: RunningDockerd[] }
  | { action: 'fail'; reason: string; foreign?: RunningDockerd[] };
export declare const TEST_ENGINE: Readonly<{
  dir: string;
  socket: string;
  pidFile: string;
  execRoot: string;
  config: string;
  leases: string;
  dataRoot: string;
  log: string;
  lock: string;
}>;
export declare const DOCKERD_LOG: string;
export declare function testEngineArgs(): string[];
export declare function engineAddress(env?: Record<string, string | undefined>): EngineAddress;
export declare function dockerdHosts(argv: string[], readConfig?: (file: string) => unknown): string[];
export declare function serves(
  hosts: string[],
  address: EngineAddress,
  canonical?: (path: string) => string,
): boolean;
export declare function planEngine(state: {
  address: EngineAddress;
  answers: boolean;
  dockerds: RunningDockerd[];
  canonical?: (path: string) => string;
}): EnginePlan;
export declare function debianPackagesMissing(): string[];
export declare function ping(address: EngineAddress, timeoutMs?: number): Promise<boolean>;
export declare function installDebianPackages(log: (line: string) => void, packages: string[]): Promise<void>;

export declare function argvOf(pid: number): string[];
