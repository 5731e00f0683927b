/** Types for the parts of apt.mjs that test/ensure-docker.test.ts checks. */
export declare function parseProcLocks(
  text: string,
): Array<{ kind: string; pid: number; major: number; minor: number; inode: number }>;
export declare function aptLockHolders(
  paths?: string[],
  locksText?: string,
): Array<{ path: string; pid: number; command: string }>;
export declare function aptInstall(log: (line: string) => void, packages: string[]): Promise<void>;
