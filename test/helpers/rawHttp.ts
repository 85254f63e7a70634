import net from "node:net";
import { Writable } from "node:stream";
import pino from "pino";

/** What a raw exchange received: the status, head and body of the text, and when the server closed the socket. */
export interface RawAnswer { status: number | undefined; head: string; body: string; closedAfterMs: number; text: string }

/**
 * Writes `bytes` on a fresh socket to `url`'s port on loopback and reads until the server closes
 * it (or `waitMs` passes: `closedAfterMs` is then Infinity). How a hostile client sees an HTTP
 * door: what it answers, and whether it lets go of the connection.
 */
export function rawExchange(url: string, bytes: (string | Buffer)[], waitMs = 4000): Promise<RawAnswer> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const started = performance.now();
    let text = "";
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const [head = "", ...rest] = text.split("\r\n\r\n");
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1]) || undefined, head, body: rest.join("\r\n\r\n"), closedAfterMs: closed ? performance.now() - started : Infinity, text });
    };
    const socket = net.connect(Number(port), "127.0.0.1", () => { for (const b of bytes) socket.write(b); });
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on("data", (d) => void (text += String(d)));
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
  });
}

/** `text` as one chunk of a chunked body. */
export const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;

/**
 * A logger that keeps every line the server logs (debug and up), for tests that check what a
 * hostile request left in the log; `failuresSince(from)` is the lines after index `from` that
 * report a failure (error level, or 'request failed').
 */
export function capturedLog() {
  const lines: string[] = [];
  const logger = pino({ level: "debug" }, new Writable({ write(line, _enc, done) { lines.push(String(line)); done(); } }));
  const failuresSince = (from: number) => lines.slice(from).filter((l) => /"level":50/.test(l) || /request failed/.test(l));
  return { logger, lines, failuresSince };
}
