/** The ports `ferry up` listens on unless told otherwise. A module of its own: the CLI reads them at start. */
export const DEFAULT_API_PORT = 7070;
export const DEFAULT_GATEWAY_PORT = 8080;
