/**
 * A reader of server-sent events (the text/event-stream format, WHATWG HTML 9.2.6) for the API client: fed
 * chunks of text, it returns the complete events. `event:` names the event (default `message`), `data:` lines
 * are joined with newlines, lines starting with `:` are comments (pings), `id:` and `retry:` are ignored (the
 * client does not reconnect by itself). Lines end in LF, CRLF or CR.
 */
export interface ServerSentEvent {
  event: string;
  data: string;
}

export class SseReader {
  #buffer = '';
  #event = '';
  #data: string[] = [];

  /** The events completed by this chunk. */
  push(chunk: string): ServerSentEvent[] {
    this.#buffer += chunk;
    const out: ServerSentEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      // A lone CR at the end may be the first half of CRLF: wait for more.
      if (match === null || (match[0] === '\r' && match.index === this.#buffer.length - 1)) break;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (this.#data.length > 0) out.push({ event: this.#event || 'message', data: this.#data.join('\n') });
        this.#event = '';
        this.#data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.#event = value;
      else if (field === 'data') this.#data.push(value);
    }
    return out;
  }
}
