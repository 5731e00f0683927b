/** Types of build-web.mjs (plain JavaScript: it runs before anything is compiled). */
export declare const ROOT: string;
export declare const WEB_DIR: string;
export declare const WEB_OUT_DIR: string;
export declare function isWebFresh(): boolean;
export declare function buildWeb(): Promise<{ files: number; inputs: number; ms: number }>;
