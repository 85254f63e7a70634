/**
 * Reads a response body as UTF-8 text, at most `maxBytes`. A larger body — declared in
 * Content-Length, or found while reading — is cancelled, never buffered, and the caller's own
 * error is thrown: `tooLarge(declared)`, with the declared length when the headers gave it.
 * Every HTTP client in Sextant that reads a body it did not write reads it here.
 */
export async function readLimited(res: Response, maxBytes: number, tooLarge: (declared?: number) => Error): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge(declared);
  }
  const reader = res.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
