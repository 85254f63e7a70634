import type { Command } from "commander";
import { loadDemo } from "../../demo/loadDemo.ts";
import { startShopApi } from "../../demo/shopApi.ts";
import { describeError, withContext } from "../context.ts";

/** `sextant demo` (the demo tenant's data) and `sextant demo-api` (the shop API its pipeline reads). */
export default function register(program: Command): void {
  program
    .command("demo")
    .description("(re)load the demo tenant `demo` with generated shop data")
    .action(() =>
      withContext(async ({ admin }) => {
        await loadDemo(admin, { force: true });
        process.stdout.write("demo tenant loaded (schema shop)\n");
      }),
    );

  program
    .command("demo-api")
    .description("serve the small shop API that the example pipeline reads (src/demo/pipeline), on 127.0.0.1, until stopped")
    .option("--port <n>", "port", "8080")
    .option("--token <t>", "require `Authorization: Bearer <t>` on every request")
    .action(async (opts: { port: string; token?: string }) => {
      try {
        const api = await startShopApi({ port: Number(opts.port), token: opts.token });
        process.stdout.write(`shop API on ${api.url}\n`);
        for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void api.close().then(() => process.exit(0)));
      } catch (error) {
        process.stderr.write(describeError(error));
        process.exit(1);
      }
    });
}
