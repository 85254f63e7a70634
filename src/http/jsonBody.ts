import type { Transform } from "node:stream";
import zlib from "node:zlib";
import express, { type Response } from "express";
import { SextantError } from "../db/errors.ts";

/** express.json's size limit (the `bytes` notation: "1mb" is 1,048,576 bytes); undefined for a notation not read here. */
export function limitBytes(limit: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(limit);
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * 1024 ** ["b", "kb", "mb", "gb"].indexOf((m[2] ?? "b").toLowerCase()));
}

const PLAIN_JSON = /^application\/json\s*(;\s*charset="?utf-8"?\s*)?$/i;
/** The media type express.json reads (any parameters). */
const JSON_TYPE = /^application\/json\s*(;|$)/i;

/** The Content-Encodings express.json inflates, decoded here as it would (zstd where Node has it). */
const DECODERS: Record<string, (() => Transform) | undefined> = {
  gzip: () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
  zstd: (zlib as { createZstdDecompress?: () => Transform }).createZstdDecompress,
};

/** What a refused body should have been, for every SX400 here. */
const BODY_HINT = "Send the whole body in UTF-8, plain or compressed with gzip, deflate or br.";

const failed = (message: string, type: string, status: number) => Object.assign(new Error(message), { type, status, expose: true });

/** 413 (body-parser's own error, which every door's error handler answers) with Connection: close: the rest of the body is not read. */
function tooLarge(res: Response, next: express.NextFunction): void {
  res.setHeader("Connection", "close");
  next(failed("request entity too large", "entity.too.large", 413));
}

/**
 * The raw bytes a body within `max` decoded bytes may take: as many, or compressed, a little
 * more (a stream of empty blocks inflates to nothing; a body within the limit compresses to about
 * its size or less, deflate adds ~0.03%).
 */
function rawBound(max: number, coding: string | undefined): number {
  return coding === undefined || coding === "identity" ? max : max + (max >> 6) + 1024;
}

/**
 * `parser` (a body-parser middleware: express.json, urlencoded or raw, whose limit is `limit`)
 * with the bytes it reads bounded at once: a declared Content-Length past the limit (for a
 * compressed body, past `rawBound`) is 413 before anything is read, and so is a body streamed
 * past it, with Connection: close. body-parser answers only once it has read and thrown away the
 * whole body, so a client that declared 10^16 bytes or sent chunks without end was held until the
 * request timeout; its late answer is dropped. Its other refusals (a charset or Content-Encoding
 * it does not read: 415; a body cut short: 400) carry only a status, which the final handler took
 * for an internal error (500): they become SX400. A request it does not read (not its type) is
 * passed on as it came.
 */
export function boundedBody(parser: express.RequestHandler, limit: string | number): express.RequestHandler {
  const max = typeof limit === "number" ? limit : limitBytes(limit);
  return (req, res, next) => {
    let answered = false;
    let refused = false;
    const bound = max === undefined ? Infinity : rawBound(max, req.headers["content-encoding"]?.toLowerCase());
    if (Number(req.headers["content-length"]) > bound) return tooLarge(res, next);
    parser(req, res, (error?: unknown) => {
      answered = true;
      if (refused) return;
      const e = error as { type?: string; status?: number; message?: string } | undefined;
      if (!e || e.type === "entity.too.large" || e.type === "entity.parse.failed" || !(Number(e.status) < 500)) return next(error);
      next(new SextantError("SX400", `request body refused: ${e.message}`, BODY_HINT));
    });
    if (answered || !req.readableFlowing) return;
    let seen = 0;
    const count = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen <= bound || answered || refused) return;
      refused = true;
      req.off("data", count);
      tooLarge(res, next);
    };
    req.on("data", count);
  };
}

/**
 * The JSON body parser of /mcp and /ask: what express.json({ limit }) makes of a request — the
 * same req.body, and the same errors for the final handler (entity.too.large 413,
 * entity.parse.failed 400, strict: only an object or array) — read straight from the socket for
 * the common body (JSON in UTF-8, a Content-Length within the limit or chunked, plain or in a
 * Content-Encoding express.json inflates); every other request goes to express.json itself. Its
 * stream decoding and checks were ~5% of a point lookup's CPU. A body past the limit is refused
 * as soon as that is known, with Connection: close: express.json answers only once the whole
 * body has been read and thrown away, so a client that declared 10^16 bytes, streamed chunks
 * without end or sent a small gzip that inflates past the limit was held until the request
 * timeout while the server read what it sent.
 */
export function jsonBody(limit: string): express.RequestHandler {
  const general = boundedBody(express.json({ limit }), limit);
  const max = limitBytes(limit);
  return (req, res, next) => {
    const length = req.headers["content-length"];
    const type = req.headers["content-type"] ?? "";
    const coding = req.headers["content-encoding"]?.toLowerCase();
    const transfer = req.headers["transfer-encoding"];
    if (max === undefined) return general(req, res, next);
    const identity = coding === undefined || coding === "identity";
    const bound = rawBound(max, coding);
    // A declared length is the body's size unless it is compressed (express.json's limit is then
    // on the decoded body, and the compressed bytes are bounded as below). Any method, any type: a
    // GET's JSON body went to express.json, another type's to the SDK's reader (which reads 4 MB
    // before answering 415).
    if (length !== undefined && Number(length) > bound) return tooLarge(res, next);
    if (req.method !== "POST" || !JSON_TYPE.test(type)) return general(req, res, next);
    // Node's parser knows only chunked and passes any other coding through undecoded (a
    // proxy in front might decode it): the body would not be the bytes the client meant.
    if (transfer !== undefined && !/^chunked$/i.test(transfer)) {
      return next(new SextantError("SX400", `request body refused: unsupported transfer coding "${transfer.slice(0, 40)}"`, "Send the body with Content-Length or Transfer-Encoding: chunked."));
    }
    // A compressed body is decoded here too: express.json's limit is on the decoded bytes, and it
    // answers 413 only once it has read all the compressed ones (a small gzip of spaces inflating
    // past the limit, declared as 20 MB and sent slowly, held the connection until they came).
    const decode = identity ? undefined : Object.hasOwn(DECODERS, coding) ? DECODERS[coding] : undefined;
    if (!PLAIN_JSON.test(type) || (!identity && !decode) || (length === undefined && transfer === undefined)) return general(req, res, next);
    const decoder = decode?.();
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    // The listeners stay: an 'error' after 'aborted' must find one (an unheard 'error' ends the process).
    const done = (error?: Error) => {
      if (settled) return;
      settled = true;
      next(error);
    };
    const refuse = () => {
      settled = true; // a chunked or compressed body past the limit
      chunks.length = 0;
      if (decoder) {
        req.unpipe(decoder);
        decoder.destroy();
      }
      tooLarge(res, next);
    };
    const onData = (chunk: Buffer) => {
      if (settled) return;
      received += chunk.length;
      if (received <= max) return void chunks.push(chunk);
      refuse();
    };
    // A body cut short (the client closed before Content-Length bytes came) is the client's
    // doing: SX400 as express.json's path answers it, not an internal error with a logged stack.
    const cut = () => {
      decoder?.destroy(); // its buffers go now, not at the next collection
      done(new SextantError("SX400", "request body refused: request aborted", "Send the whole body: the bytes its Content-Length announces, or chunks up to the last."));
    };
    const onError = cut;
    const onAborted = cut;
    const onEnd = () => {
      const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8");
      const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // as iconv-lite's UTF-8 decoder
      if (body.length === 0) {
        req.body = {};
        return done();
      }
      const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(body)?.[1];
      try {
        if (first !== "{" && first !== "[") throw new SyntaxError("not an object or array");
        req.body = JSON.parse(body);
      } catch {
        return done(failed("request body is not valid JSON", "entity.parse.failed", 400));
      }
      done();
    };
    if (!decoder) {
      req.on("data", onData).on("end", onEnd).on("error", onError).on("aborted", onAborted);
      return;
    }
    let compressed = 0; // bounded too: empty blocks inflate to nothing (rawBound)
    req.on("data", (chunk: Buffer) => {
      compressed += chunk.length;
      if (!settled && compressed > bound) refuse();
    }).on("error", onError).on("aborted", onAborted);
    decoder.on("data", onData).on("end", onEnd).on("error", (error: Error) =>
      done(new SextantError("SX400", `request body refused: its ${coding} encoding is not valid (${error.message})`, BODY_HINT)));
    req.pipe(decoder);
  };
}
