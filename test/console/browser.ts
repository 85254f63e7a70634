import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { expect } from "vitest";

// Debian's chromium (installed by .ci/run); Playwright's own browser download is not used.
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SHOTS = process.env.SEXTANT_SCREENSHOT_DIR ?? path.join(os.tmpdir(), "sextant-screenshots");

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  fs.mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

const AXE = fs.readFileSync(path.resolve("node_modules/axe-core/axe.min.js"), "utf8");

/**
 * axe-core on the page as it is now (evaluated through the DevTools protocol, which the page's
 * CSP does not govern; the page itself runs no inline script). Returns serious and critical
 * violations, each as "rule: first target".
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, target: v.nodes[0]?.target.join(" ") ?? "" }));
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.target}`);
}

/** A full-page screenshot saved under SHOTS, checked to be a real rendering (a PNG with content, not one colour). */
export async function screenshot(page: Page, name: string): Promise<Buffer> {
  const png = await page.screenshot({ path: path.join(SHOTS, `console-${name}.png`), fullPage: true });
  expect(png.subarray(1, 4).toString()).toBe("PNG");
  expect(png.readUInt32BE(16)).toBeGreaterThan(300);
  // A blank page of this size compresses to a few KB; a page with text and tables does not.
  expect(png.length).toBeGreaterThan(12_000);
  return png;
}
