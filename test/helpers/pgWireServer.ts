import net from "node:net";

/** A column a hostile server reports: any name, any type OID. */
export interface WireColumn {
  name: string;
  typeOid: number;
}

export interface HostilePgServer {
  url: string;
  port: number;
  /** Every connection that reached the server (startup parameters and the password it was sent). */
  connections: { params: Record<string, string>; password?: string }[];
  /** Every query text it was asked (simple and extended protocol). */
  queries: string[];
  close(): Promise<void>;
}

function msg(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const cstr = (s: string) => Buffer.from(s + "\0", "utf8");
const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };

function rowDescription(cols: WireColumn[]): Buffer {
  return msg("T", Buffer.concat([i16(cols.length), ...cols.map((c) => Buffer.concat([cstr(c.name), i32(0), i16(0), i32(c.typeOid), i16(-1), i32(-1), i16(0)]))]));
}
function dataRow(values: (string | null)[]): Buffer {
  return msg("D", Buffer.concat([i16(values.length), ...values.map((v) => (v === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(v)), Buffer.from(v)])))]));
}
const ready = () => msg("Z", Buffer.from("I"));
const complete = (tag: string) => msg("C", cstr(tag));

/**
 * A PostgreSQL wire-protocol (v3) server on 127.0.0.1 that a test controls: it asks for a
 * cleartext password (and records it), answers a source query's `limit 0` probe with the
 * columns given — names and type OIDs of its choosing — streams `rows` for `copy ... to stdout`,
 * and answers a catalog query on pg_type with `typeName` for every OID (the name a hostile
 * server would put in front of a client that trusts it).
 */
export async function startHostilePgServer(opts: { columns: WireColumn[]; rows: string[]; typeName: string }): Promise<HostilePgServer> {
  const connections: HostilePgServer["connections"] = [];
  const queries: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buf = Buffer.alloc(0);
    let started = false;
    let conn: HostilePgServer["connections"][number] | undefined;
    let pending = ""; // the statement of the extended-protocol exchange in progress
    const answer = (sql: string, describe: boolean) => {
      const q = sql.toLowerCase();
      if (/pg_type/.test(q)) {
        const cols = [{ name: "oid", typeOid: 23 }, { name: "name", typeOid: 25 }, { name: "builtin", typeOid: 16 }];
        return { desc: rowDescription(cols), rows: opts.columns.map((c) => dataRow([String(c.typeOid), opts.typeName, "t"])), tag: `SELECT ${opts.columns.length}` };
      }
      if (/^\s*copy\b/.test(q)) return { copy: true as const };
      if (/^\s*(begin|start)/.test(q)) return { tag: "BEGIN" };
      if (/^\s*(commit|end)/.test(q)) return { tag: "COMMIT" };
      if (/^\s*rollback/.test(q)) return { tag: "ROLLBACK" };
      return { desc: rowDescription(opts.columns), rows: [] as Buffer[], tag: "SELECT 0", describe };
    };
    const copyOut = () => Buffer.concat([
      msg("H", Buffer.concat([Buffer.from([0]), i16(opts.columns.length), ...opts.columns.map(() => i16(0))])),
      ...opts.rows.map((r) => msg("d", Buffer.from(r + "\n"))),
      msg("c", Buffer.alloc(0)),
      complete(`COPY ${opts.rows.length}`),
    ]);
    socket.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!started) {
          if (buf.length < 8) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const code = buf.readInt32BE(4);
          const body = buf.subarray(8, len);
          buf = buf.subarray(len);
          if (code === 80877103 || code === 80877104) {
            socket.write("N"); // no TLS, no GSS
            continue;
          }
          const parts = body.toString("utf8").split("\0");
          const params: Record<string, string> = {};
          for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i]) params[parts[i]!] = parts[i + 1]!;
          conn = { params };
          connections.push(conn);
          started = true;
          socket.write(msg("R", i32(3))); // AuthenticationCleartextPassword
          continue;
        }
        if (buf.length < 5) return;
        const type = String.fromCharCode(buf[0]!);
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) return;
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        switch (type) {
          case "p":
            conn!.password = body.toString("utf8").replace(/\0$/, "");
            socket.write(Buffer.concat([
              msg("R", i32(0)),
              msg("S", Buffer.concat([cstr("server_version"), cstr("16.0")])),
              msg("S", Buffer.concat([cstr("client_encoding"), cstr("UTF8")])),
              msg("S", Buffer.concat([cstr("standard_conforming_strings"), cstr("on")])),
              msg("K", Buffer.concat([i32(4242), i32(1)])),
              ready(),
            ]));
            break;
          case "Q": {
            const sql = body.toString("utf8").replace(/\0$/, "");
            queries.push(sql);
            const a = answer(sql, false);
            if ("copy" in a) socket.write(Buffer.concat([copyOut(), ready()]));
            else socket.write(Buffer.concat([...(a.desc ? [a.desc] : []), ...(a.rows ?? []), complete(a.tag), ready()]));
            break;
          }
          case "P": {
            const name = body.indexOf(0);
            pending = body.subarray(name + 1, body.indexOf(0, name + 1)).toString("utf8");
            queries.push(pending);
            socket.write(msg("1", Buffer.alloc(0)));
            break;
          }
          case "B":
            socket.write(msg("2", Buffer.alloc(0)));
            break;
          case "D": {
            const a = answer(pending, true);
            socket.write("desc" in a && a.desc ? a.desc : msg("n", Buffer.alloc(0)));
            break;
          }
          case "E": {
            const a = answer(pending, true);
            if ("copy" in a) socket.write(copyOut());
            else socket.write(Buffer.concat([...(a.rows ?? []), complete(a.tag)]));
            break;
          }
          case "S":
            socket.write(ready());
            break;
          case "X":
            socket.end();
            return;
          default:
            break; // Flush, Close: nothing to say
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `postgres://hostile@127.0.0.1:${port}/hostile`,
    port,
    connections,
    queries,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
