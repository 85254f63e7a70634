import { expect, test } from "vitest";
import { fenceUntrusted } from "../../src/mcp/formatUntrusted.ts";

// Markers are drawn from a block of random bytes refilled when used up (src/mcp/formatUntrusted.ts):
// across several refills every marker is new, 12 hex digits, and opens and closes its own fence.
test("every fence's marker is fresh, across refills of the random block", () => {
  const markers = new Set<string>();
  for (let i = 0; i < 3000; i++) { // 3000 × 6 bytes: four refills of the 4 KB block
    const text = fenceUntrusted(`row ${i}`);
    const m = /^<<<(DATA-[0-9a-f]{12})\nrow \d+\n\1>>>$/m.exec(text);
    expect(m, text).not.toBeNull();
    markers.add(m![1]!);
  }
  expect(markers.size).toBe(3000);
});
