/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat. */
export declare const CLK_TCK: number;
/** utime + stime of one process (all its threads), in ms; null if it does not exist. */
export declare function processCpuMs(pid: number): number | null;
/** utime + stime (ms) of the given processes and all their live descendants; null if none exists. */
export declare function treeCpuMs(rootPids: readonly number[]): number | null;
