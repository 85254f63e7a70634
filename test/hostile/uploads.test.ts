import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import yazl from "yazl";
import { projectRoot } from "../../src/db/paths.ts";
import pg from "pg";
import { dbtLoad } from "../../src/cli/dbtLoad.ts";
import { readUploadLimits } from "../../src/dbt/uploadLimits.ts";
import { createToken } from "../helpers/db.ts";
import { useTestServer } from "../helpers/setup.ts";

// Decompression bombs against POST /dbt/upload and `sextant dbt load`, built here. The server
// runs with small bounds (4 MB after decompression, 500 zip entries) so each bomb crosses one
// after a few MB; the bounds are counted while inflating, so the size is all that matters.
const FIXTURES = path.resolve(projectRoot, "test/fixtures/dbt");
const MB = 1024 * 1024;

// The server makes its temporary directories in os.tmpdir(), which reads TMPDIR on every call:
// a directory of this file's own shows whether a refused upload left anything behind.
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "sextant-hostile-uploads-"));
process.env.TMPDIR = TMP;

const { db, server } = useTestServer({ SEXTANT_UPLOAD_EXPANDED_LIMIT_MB: "4", SEXTANT_UPLOAD_MAX_ENTRIES: "500" });
let admin: string;

/** Valid JSON of about `bytes` bytes, nearly all whitespace: compresses about 1000:1. */
function whitespaceManifest(bytes: number): Buffer {
  const buf = Buffer.alloc(bytes, " ");
  buf.write('{"nodes": {', 0);
  buf.write("}}", bytes - 2);
  return buf;
}

function zipOf(entries: [string, Buffer | string][], options: { compress?: boolean } = {}): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of entries) {
    if (Buffer.isBuffer(content)) zip.addBuffer(content, name, options);
    else zip.addFile(content, name);
  }
  zip.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    zip.outputStream.on("data", (c: Buffer) => chunks.push(c));
    zip.outputStream.on("end", () => resolve(Buffer.concat(chunks)));
  });
}

/** Rewrites every entry's declared uncompressed size (central directory, local header, data descriptor). */
function lieAboutSizes(zip: Buffer, size: number): Buffer {
  const out = Buffer.from(zip);
  const eocd = out.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const entries = out.readUInt16LE(eocd + 10);
  let at = out.readUInt32LE(eocd + 16);
  for (let i = 0; i < entries; i++) {
    const compressed = out.readUInt32LE(at + 20);
    out.writeUInt32LE(size, at + 24);
    const local = out.readUInt32LE(at + 42);
    out.writeUInt32LE(size, local + 22);
    if (out.readUInt16LE(local + 6) & 0x08) {
      let dd = local + 30 + out.readUInt16LE(local + 26) + out.readUInt16LE(local + 28) + compressed;
      if (out.readUInt32LE(dd) === 0x08074b50) dd += 4;
      out.writeUInt32LE(size, dd + 8);
    }
    at += 46 + out.readUInt16LE(at + 28) + out.readUInt16LE(at + 30) + out.readUInt16LE(at + 32);
  }
  return out;
}

const upload = (body: Buffer, type: string, token = admin) =>
  fetch(`${server.url}/dbt/upload?project=bomb`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": type },
    body: new Uint8Array(body),
  });

/** What a refused upload must leave unchanged, read from the owner connection. */
async function dbtState() {
  const { rows } = await db.admin.query(`
    select (select string_agg(project_name || ':' || id, ',' order by project_name) from sextant.dbt_projects where tenant_slug = 'acme') as projects,
           (select count(*) from sextant.dbt_nodes where tenant_slug = 'acme')::int as nodes,
           (select count(*) from sextant_private.dbt_load_items)::int as staged`);
  return rows[0];
}

/** Each bomb: 413 with SX413 naming the limit, nothing loaded, no temporary file, the server still answering. */
async function expectRefused(res: Response, before: unknown, message: RegExp) {
  expect(res.status).toBe(413);
  const body = (await res.json()) as { code: string; message: string };
  expect(body.code).toBe("SX413");
  expect(body.message).toMatch(message);
  expect(await dbtState()).toEqual(before);
  expect(fs.readdirSync(TMP)).toEqual([]);
  expect((await fetch(`${server.url}/health`)).status).toBe(200);
}

beforeAll(async () => {
  admin = await createToken(db, "acme", "bomber", "admin");
  // Something for a bomb to (fail to) replace.
  const res = await upload(fs.readFileSync(path.join(FIXTURES, "cagov-dse-analytics/manifest.json")), "application/json");
  expect(res.status).toBe(200);
});
afterAll(async () => {
  fs.rmSync(TMP, { recursive: true, force: true });
});

describe("upload bombs are refused while inflating", () => {
  test("a zip whose manifest inflates past the limit is refused with 413", async () => {
    const before = await dbtState();
    const zip = await zipOf([["target/manifest.json", whitespaceManifest(32 * MB)]]);
    expect(zip.length).toBeLessThan(MB);
    await expectRefused(await upload(zip, "application/zip"), before, /expand to more than 4 MB, the limit after decompression/);
  });

  test("a zip that declares a tiny size for a huge entry is stopped at the limit, not trusted", async () => {
    const before = await dbtState();
    const zip = lieAboutSizes(await zipOf([["target/manifest.json", whitespaceManifest(32 * MB)]]), 1000);
    await expectRefused(await upload(zip, "application/zip"), before, /expand to more than 4 MB/);
  });

  test("a zip with very many entries is refused before any is read", async () => {
    const before = await dbtState();
    const many: [string, Buffer][] = Array.from({ length: 5000 }, (_, i) => [`target/compiled/m${i}.sql`, Buffer.from("select 1")]);
    const zip = await zipOf([["target/manifest.json", path.join(FIXTURES, "cagov-dse-analytics/manifest.json")], ...many], { compress: false });
    await expectRefused(await upload(zip, "application/zip"), before, /the zip holds 5001 entries; the limit is 500/);
  });

  test("a gzip body that inflates past the limit is refused with 413", async () => {
    const before = await dbtState();
    const gz = gzipSync(whitespaceManifest(32 * MB));
    expect(gz.length).toBeLessThan(MB);
    await expectRefused(await upload(gz, "application/gzip"), before, /expand to more than 4 MB/);
  });

  test("a gzip bomb stored inside a zip (manifest.json.gz) is refused with 413", async () => {
    const before = await dbtState();
    const zip = await zipOf([["target/manifest.json.gz", gzipSync(whitespaceManifest(32 * MB))]]);
    await expectRefused(await upload(zip, "application/zip"), before, /expand to more than 4 MB/);
  });

  test("a plain JSON body larger than the limit after decompression is refused with 413", async () => {
    const before = await dbtState();
    await expectRefused(await upload(whitespaceManifest(5 * MB), "application/json"), before, /expand to more than 4 MB/);
  });

  test("after the bombs, a normal zipped upload still loads", async () => {
    const zip = await zipOf([
      ["target/manifest.json", path.join(FIXTURES, "fivetran-recurly/manifest.json")],
      ["target/catalog.json", path.join(FIXTURES, "fivetran-recurly/catalog.json")],
    ]);
    const res = await upload(zip, "application/zip");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { project: string }).project).toBe("bomb");
    expect(fs.readdirSync(TMP)).toEqual([]);
  });
});

/**
 * The body of `sextant dbt load` (src/cli/dbtLoad.ts) with the limits the CLI reads from its
 * environment; called in-process because the CLI's own start re-applies sql/ first.
 */
async function cliLoad(dir: string, env: Record<string, string>) {
  const admin = new pg.Client({ connectionString: db.adminUrl });
  await admin.connect();
  try {
    await dbtLoad(admin, dir, { tenant: "acme", cloudUrl: "", limits: readUploadLimits(env) });
    return undefined;
  } catch (error) {
    return error as { code?: string; message: string };
  } finally {
    await admin.end();
  }
}

describe("sextant dbt load of gzipped files", () => {
  test("a .gz manifest that inflates past the limit stops the CLI with SX413 and loads nothing", async () => {
    const dir = fs.mkdtempSync(path.join(TMP, "cli-"));
    try {
      fs.writeFileSync(path.join(dir, "manifest.json.gz"), gzipSync(whitespaceManifest(32 * MB)));
      const before = await dbtState();
      const error = await cliLoad(dir, { SEXTANT_UPLOAD_EXPANDED_LIMIT_MB: "4" });
      expect(error).toMatchObject({ code: "SX413", message: expect.stringMatching(/expand to more than 4 MB, the limit after decompression/) });
      expect(await dbtState()).toEqual(before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a .gz that expands more than 100 times its size is refused even under the byte limit", async () => {
    const dir = fs.mkdtempSync(path.join(TMP, "cli-"));
    try {
      fs.writeFileSync(path.join(dir, "manifest.json.gz"), gzipSync(whitespaceManifest(64 * MB)));
      const before = await dbtState();
      const error = await cliLoad(dir, {});
      expect(error).toMatchObject({ code: "SX413", message: expect.stringMatching(/expands more than 100 times its size/) });
      expect(await dbtState()).toEqual(before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
