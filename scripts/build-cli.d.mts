/** Types of build-cli.mjs (plain JavaScript: it runs before anything is compiled). */
export declare const ROOT: string;
export declare const OUT_DIR: string;
export declare const ENTRY: string;
export declare function isFresh(): boolean;
export declare function buildCli(): Promise<{ files: number; inputs: number; ms: number }>;
