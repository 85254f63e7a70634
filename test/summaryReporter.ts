import type { SerializedError } from "vitest";
import type { Reporter, TestModule } from "vitest/node";

/**
 * Prints "tests: N passed, N failed, N skipped" as the very last line of a run. A file whose
 * setup failed (its tests then show as skipped) and an unhandled error each count as a failure,
 * so the line never says "0 failed" for a run that failed.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError> = []): void {
    const counts = { passed: 0, failed: 0, skipped: 0, pending: 0 };
    for (const mod of testModules) {
      const tests = [...mod.children.allTests()];
      for (const test of tests) counts[test.result().state] += 1;
      if (mod.state() === "failed" && !tests.some((t) => t.result().state === "failed")) counts.failed += 1;
    }
    counts.failed += unhandledErrors.length;
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped + counts.pending} skipped\n`);
  }
}
