import { RunStopped } from "./errors.ts";

/**
 * A pass-through stage for stream pipelines that counts bytes and lines and, at most every
 * `everyMs`, reports them; when the report says stop (cancelled), the pipeline is destroyed,
 * which aborts the COPY and rolls its transaction back.
 */
export function meter(report: (bytes: number, lines: number) => Promise<boolean>, everyMs = 500) {
  return async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    let bytes = 0;
    let lines = 0;
    let last = Date.now();
    for await (const chunk of source) {
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      if (Date.now() - last >= everyMs) {
        last = Date.now();
        if (await report(bytes, lines)) throw new RunStopped("cancelled");
      }
      yield chunk;
    }
    await report(bytes, lines);
  };
}
