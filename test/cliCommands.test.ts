import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram, COMMANDS } from "../src/cli/program.ts";

// src/cli/program.ts loads only the module of the command a run names, found by the names in
// COMMANDS: each entry must list exactly the commands its module registers.
describe("the CLI's command table", () => {
  it("names each module's commands exactly", async () => {
    for (const [names, load] of COMMANDS) {
      const program = new Command();
      (await load()).default(program);
      expect(program.commands.map((c) => c.name())).toEqual(names);
    }
  });

  it("loads the named command's module only, and every module otherwise", async () => {
    const all = COMMANDS.flatMap(([names]) => names);
    expect(new Set(all).size).toBe(all.length);
    expect((await buildProgram(["node", "sextant", "serve"])).commands.map((c) => c.name())).toEqual(["serve"]);
    expect((await buildProgram(["node", "sextant", "demo-api", "--port", "1"])).commands.map((c) => c.name())).toEqual(["demo", "demo-api"]);
    for (const argv of [[], ["--help"], ["help", "serve"], ["serv"]]) {
      expect((await buildProgram(["node", "sextant", ...argv])).commands.map((c) => c.name())).toEqual(all);
    }
  });
});
