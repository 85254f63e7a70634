import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["test/globalSetup.ts"],
    include: ["test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // The plain summary line last, so CI can read the counts.
    reporters: ["default", "./test/summaryReporter.ts"],
  },
});
