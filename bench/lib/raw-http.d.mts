/** The bytes of one HTTP/1.1 request: request line, host, the given headers, content-length, body. */
export declare function buildRequest(o: {
  method?: string;
  /** host:port for the Host header. */
  host: string;
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}): Buffer;

/** Where the first complete response in buf ends and its status; null when more bytes are needed. */
export declare function frameResponse(buf: Buffer): { status: number; end: number; bodyStart: number } | null;

/** One keep-alive connection to 127.0.0.1, one request in flight at a time. */
export declare class RawHttpConnection {
  static connect(host: '127.0.0.1', port: number): Promise<RawHttpConnection>;
  /** This end's port. */
  readonly localPort: number;
  /** The connection: its 'close' event says when it ends (this client closes it only in close()). */
  readonly socket: import('node:net').Socket;
  /** Write the request bytes (one write) and resolve with the whole response. */
  request(bytes: Uint8Array): Promise<{ status: number; body: Buffer }>;
  close(): void;
}
