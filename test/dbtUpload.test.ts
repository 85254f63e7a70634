import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import yazl from "yazl";
import { projectRoot } from "../src/db/paths.ts";
import { runCli } from "./helpers/cli.ts";
import { createToken } from "./helpers/db.ts";
import { useTestServer } from "./helpers/setup.ts";
import { callOk, connectHttp } from "./helpers/mcpClient.ts";

const FIXTURES = path.resolve(projectRoot, "test/fixtures/dbt");

const { db, server } = useTestServer();

function zipOf(files: Record<string, string>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, file] of Object.entries(files)) zip.addFile(file, name);
  zip.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    zip.outputStream.on("data", (c: Buffer) => chunks.push(c));
    zip.outputStream.on("end", () => resolve(Buffer.concat(chunks)));
  });
}

const upload = (token: string, body: Buffer | string, type: string, query = "") =>
  fetch(`${server.url}/dbt/upload${query}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": type }, body: typeof body === "string" ? body : new Uint8Array(body) });

describe("POST /dbt/upload", () => {
  test("a tenant admin uploads a zipped target directory; the project is searchable at once", async () => {
    const zip = await zipOf({
      "target/manifest.json": path.join(FIXTURES, "fivetran-recurly/manifest.json"),
      "target/catalog.json": path.join(FIXTURES, "fivetran-recurly/catalog.json"),
      "target/README.md": path.join(FIXTURES, "README.md"),
    });
    const res = await upload(await createToken(db, "globex", "up-admin", "admin"), zip, "application/zip");
    expect(res.status).toBe(200);
    // catalog.json: 67 nodes + 18 sources
    expect(await res.json()).toMatchObject({ project: "recurly_integration_tests", counts: { metadata: 1, catalog_node: 85 } });
    const { client } = await connectHttp(server.url, await createToken(db, "globex", "up-reader"));
    const models = (await callOk(client, "list_dbt_models", { max_results: 1000 })) as { rows: unknown[] };
    expect(models.rows).toHaveLength(49);
    await client.close();
  });

  test("a manifest alone may be sent as JSON, named by ?project=", async () => {
    const res = await upload(
      await createToken(db, "demo", "up-demo", "admin"),
      fs.readFileSync(path.join(FIXTURES, "cagov-dse-analytics/manifest.json"), "utf8"),
      "application/json",
      "?project=cagov",
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as { project: string }).project).toBe("cagov");
  });

  test.each([
    ["a viewer", "viewer", "application/zip", "x", 403, "SX403"],
    ["a wrong content type", "admin", "text/plain", "x", 400, "SX400"],
    ["a broken zip", "admin", "application/zip", "not a zip", 400, "SX400"],
    ["broken JSON", "admin", "application/json", '{"metadata": {', 400, "SX400"],
  ])("%s is refused with a clear error", async (_name, level, type, body, status, code) => {
    const res = await upload(await createToken(db, "acme", `up-${level}-${status}-${type}`, level), body, type);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ code });
  });

  test("a zip with a corrupt entry and a gzip body that is not gzip are refused with SX400, not an internal error", async () => {
    const token = await createToken(db, "acme", "up-corrupt", "admin");
    const zip = await zipOf({ "target/manifest.json": path.join(FIXTURES, "cagov-dse-analytics/manifest.json") });
    // Overwrite the middle of the deflated data: the entry's headers stay valid, inflating fails.
    zip.fill(0xff, 2000, 2400);
    const res = await upload(token, zip, "application/zip");
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "SX400", message: expect.stringMatching(/^the upload is not a readable zip archive/) });
    const gz = await upload(token, "plain text, not gzip", "application/gzip");
    expect(gz.status).toBe(400);
    expect(await gz.json()).toMatchObject({ code: "SX400", message: expect.stringMatching(/^an artifact is not valid gzip/) });
  });

  test("a zip without a manifest is refused", async () => {
    const zip = await zipOf({ "catalog.json": path.join(FIXTURES, "fivetran-recurly/catalog.json") });
    const res = await upload(await createToken(db, "acme", "up-nomanifest", "admin"), zip, "application/zip");
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/no manifest.json/);
  });
});

describe("dbt Cloud artifacts API", () => {
  let cloud: http.Server;
  let base: string;
  beforeAll(async () => {
    // A local stand-in for the dbt Cloud Administrative API v2, serving fixture files.
    cloud = http.createServer((req, res) => {
      const m = /^\/api\/v2\/accounts\/7\/runs\/42\/artifacts\/(manifest|run_results|catalog)\.json$/.exec(req.url ?? "");
      if (req.headers.authorization !== "Token secret-cloud-token") return void res.writeHead(401).end();
      if (!m || m[1] === "catalog") return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/json" });
      fs.createReadStream(path.join(FIXTURES, `cagov-dse-analytics/${m[1]}.json`)).pipe(res);
    });
    await new Promise<void>((r) => cloud.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(cloud.address() as { port: number }).port}`;
  });
  afterAll(() => void cloud?.close());

  test("sextant dbt load --cloud-account --cloud-run downloads and loads the run's artifacts", async () => {
    const r = await runCli(["dbt", "load", "--tenant", "acme", "--cloud-account", "7", "--cloud-run", "42", "--cloud-url", base],
      { DATABASE_URL: db.adminUrl, DBT_CLOUD_TOKEN: "secret-cloud-token" });
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/loaded dbt project dse_analytics for acme in \d+ ms: \d+ nodes, \d+ run results/);
  });

  test("a refused token and a missing run say so", async () => {
    const bad = await runCli(["dbt", "load", "--tenant", "acme", "--cloud-account", "7", "--cloud-run", "42", "--cloud-url", base],
      { DATABASE_URL: db.adminUrl, DBT_CLOUD_TOKEN: "wrong" });
    expect(bad.stderr).toMatch(/dbt Cloud refused the token \(401\)/);
    const missing = await runCli(["dbt", "load", "--tenant", "acme", "--cloud-account", "7", "--cloud-run", "43", "--cloud-url", base],
      { DATABASE_URL: db.adminUrl, DBT_CLOUD_TOKEN: "secret-cloud-token" });
    expect(missing.stderr).toMatch(/dbt Cloud has no manifest.json for runs\/43 \(HTTP 404\)/);
  });
});
