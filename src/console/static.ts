import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { type Express, type Response } from "express";

/** Where `npm run build:console` (console/build.mjs) writes the bundle; shipped in the package. */
export const CONSOLE_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/console");

/** Headers of every console page: a strict CSP (no inline script, no other origin), no framing, no sniffing. */
function securityHeaders(res: Response, nonce: string): void {
  res.setHeader(
    "Content-Security-Policy",
    [
      "default-src 'none'",
      "script-src 'self'",
      // CodeMirror adds its styles as <style> elements: allowed by this response's nonce only.
      `style-src 'self' 'nonce-${nonce}'`,
      "img-src 'self' data: blob:",
      "connect-src 'self'",
      "font-src 'self'",
      "base-uri 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join("; "),
  );
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
}

/** GET /console (the one page; its script routes by URL hash) and /console/assets/*. */
export function serveConsoleFiles(app: Express): void {
  let template: string | undefined;
  app.get(["/console", "/console/"], (_req, res) => {
    try {
      template ??= fs.readFileSync(path.join(CONSOLE_DIST, "index.html"), "utf8");
    } catch {
      res.status(503).type("text/plain").send("The console is not built: run `npm run build:console` (npm install does it).");
      return;
    }
    const nonce = randomBytes(16).toString("base64");
    securityHeaders(res, nonce);
    res.setHeader("Cache-Control", "no-store");
    res.type("html").send(template.replace(/__CSP_NONCE__/g, nonce));
  });
  app.use(
    "/console/assets",
    (_req, res, next) => {
      securityHeaders(res, "none");
      next();
    },
    express.static(path.join(CONSOLE_DIST, "assets"), { fallthrough: false, index: false, dotfiles: "deny", maxAge: "5m" }),
  );
}
