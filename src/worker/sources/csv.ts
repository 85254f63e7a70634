import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parse } from "csv-parse/sync";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { RunError } from "../errors.ts";
import { sourceFetch } from "../hostGuard.ts";
import { meter } from "../meter.ts";
import { uniqueColumnName, widen } from "../stageWriter.ts";
import { meterReport, type SourceKind } from "./kind.ts";

export interface CsvSource {
  kind: "csv";
  /** Files are relative to this directory, inside SEXTANT_SOURCE_FILE_DIR. */
  directory?: string;
  base_url?: string;
  delimiter?: string;
  headers?: Record<string, string>;
}

export interface CsvEntity {
  name: string;
  file?: string;
  url?: string;
  delimiter?: string;
}

const quote = pg.escapeIdentifier;

type CsvType = "bigint" | "numeric" | "boolean" | "date" | "timestamptz" | "text";

function typeOfText(value: string): CsvType | undefined {
  if (value === "") return undefined;
  if (/^-?\d{1,18}$/.test(value)) return "bigint";
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value)) return "numeric";
  if (/^(true|false)$/i.test(value)) return "boolean";
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return "date";
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/.test(value)) return "timestamptz";
  return "text";
}

/** The sampled type so far widened by one more value's type (an empty value tells nothing). */
function widenSample(a: CsvType | undefined, b: CsvType | undefined): CsvType | undefined {
  return !a ? b : !b ? a : (widen(a, b) as CsvType);
}

/** The file or URL of an entity as a byte stream; files only inside the allowed directory. */
async function open(source: CsvSource, entity: CsvEntity, opts: { fileDir: string; allowHosts: string[]; signal: AbortSignal }): Promise<Readable> {
  if (entity.url || (source.base_url && !entity.file)) {
    let url: URL;
    try {
      url = new URL(entity.url ?? "", source.base_url);
    } catch {
      throw new RunError(`CSV URL ${entity.url ?? source.base_url} is not a valid URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new RunError(`CSV URL scheme ${url.protocol} is not http or https`);
    // The source's headers (often secrets) go to base_url's origin only.
    if (source.headers && Object.keys(source.headers).length > 0 && (!source.base_url || url.origin !== new URL(source.base_url).origin)) {
      throw new RunError(`the URL of ${entity.name} is not on the source's base_url origin, where its headers go`, false,
        "Set base_url to the origin the headers are for, and make entity URLs relative to it.");
    }
    const res = await sourceFetch(url, { headers: source.headers ?? {}, signal: opts.signal }, opts.allowHosts).catch((e: Error) => {
      if (e instanceof RunError) throw e;
      throw new RunError(`GET ${url.pathname}: ${e.message}`, true);
    });
    if (!res.ok || !res.body) throw new RunError(`GET ${url.pathname} answered ${res.status} ${res.statusText}`, res.status === 429 || res.status >= 500);
    return Readable.fromWeb(res.body as import("node:stream/web").ReadableStream);
  }
  if (!entity.file) throw new RunError(`CSV entity ${entity.name} needs a file or a url`);
  const root = fs.existsSync(opts.fileDir) ? fs.realpathSync(opts.fileDir) : path.resolve(opts.fileDir);
  const wanted = path.resolve(root, source.directory ?? "", entity.file);
  let real: string;
  try {
    real = fs.realpathSync(wanted);
  } catch {
    throw new RunError(`CSV file ${entity.file} does not exist in the source directory`, false, `Files are read from ${root} (SEXTANT_SOURCE_FILE_DIR).`);
  }
  if (real !== root && !real.startsWith(root + path.sep)) {
    throw new RunError(`CSV file ${entity.file} is outside the source directory`, false, `Files are read from ${root} (SEXTANT_SOURCE_FILE_DIR).`);
  }
  return fs.createReadStream(real, { highWaterMark: 1 << 20 });
}

/**
 * Loads one CSV entity with a single COPY: the header and up to 2,000 sampled rows decide the
 * column names and types; if a later value does not fit, the load is redone with text columns.
 */
export async function loadCsv(
  client: pg.ClientBase,
  schema: string,
  table: string,
  source: CsvSource,
  entity: CsvEntity,
  opts: { fileDir: string; allowHosts: string[]; signal: AbortSignal; report: (bytes: number, lines: number) => Promise<boolean> },
): Promise<number> {
  const delimiter = entity.delimiter ?? source.delimiter ?? ",";
  const attempt = async (allText: boolean): Promise<number> => {
    const stream = await open(source, entity, opts);
    const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const head: Buffer[] = [];
    let size = 0;
    let ended = false;
    while (size < 256 * 1024) {
      const { done, value } = await it.next();
      if (done) {
        ended = true;
        break;
      }
      head.push(value);
      size += value.length;
    }
    const headText = Buffer.concat(head).toString("utf8");
    const cut = ended ? headText : headText.slice(0, headText.lastIndexOf("\n") + 1);
    let rows: string[][];
    try {
      rows = parse(cut, { delimiter, relax_quotes: true, relax_column_count: true, skip_records_with_error: true, to_line: 2001, bom: true }) as string[][];
    } catch (error) {
      stream.destroy();
      throw new RunError(`${entity.name} is not readable as CSV: ${(error as Error).message}`);
    }
    const header = rows[0];
    if (!header || header.length === 0 || header.every((h) => h.trim() === "")) {
      stream.destroy();
      throw new RunError(`${entity.name} has no header row`);
    }
    const taken = new Set<string>();
    const names = header.map((h) => uniqueColumnName(h, taken));
    const types = names.map((_, i) => (allText ? "text" : (rows.slice(1).reduce<CsvType | undefined>((t, r) => widenSample(t, typeOfText(r[i] ?? "")), undefined) ?? "text")));
    const target = `${quote(schema)}.${quote(table)}`;
    await client.query(`create table ${target} (${names.map((n, i) => `${quote(n)} ${types[i]}`).join(", ")})`);
    const copy = client.query(
      copyFrom(`copy ${target} (${names.map(quote).join(", ")}) from stdin with (format csv, header true, delimiter ${client.escapeLiteral(delimiter)})`),
    );
    const rest = Readable.from(
      (async function* () {
        yield Buffer.concat(head);
        for (;;) {
          const { done, value } = await it.next();
          if (done) return;
          yield value;
        }
      })(),
    );
    await pipeline(rest, meter(opts.report), copy);
    return copy.rowCount;
  };
  await client.query("savepoint sextant_csv");
  try {
    return await attempt(false);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (!code?.startsWith("22")) throw error;
    // A value later in the file does not fit the sampled type: load everything as text.
    await client.query("rollback to savepoint sextant_csv");
    return await attempt(true);
  }
}

/** Source kind `csv`: files under the source directory or URLs, one COPY per entity (loadCsv). */
export const csvSource: SourceKind = {
  open(source, deps) {
    return ({ client, schema, entity, progress }) =>
      loadCsv(client, schema, entity.name, source as unknown as CsvSource, entity as unknown as CsvEntity, {
        fileDir: deps.fileDir, allowHosts: deps.allowHosts, signal: deps.signal, report: meterReport(progress, 1),
      });
  },
};
