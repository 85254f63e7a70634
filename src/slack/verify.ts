import { createHmac, timingSafeEqual } from "node:crypto";
import { SextantError } from "../db/errors.ts";

/** Slack's recommended window: a request signed more than five minutes ago is refused. */
export const MAX_AGE_SECONDS = 300;

/**
 * Checks Slack's request signature (https://api.slack.com/authentication/verifying-requests-from-slack):
 * HMAC-SHA256 over `v0:<timestamp>:<raw body>` with the signing secret, compared in constant
 * time, and a timestamp within five minutes of now. Throws SX401 otherwise. Returns the
 * signature, for the caller's replay check.
 */
export function verifySlackSignature(secret: string, headers: { timestamp?: string; signature?: string }, rawBody: Buffer, nowSeconds = Date.now() / 1000): string {
  const { timestamp, signature } = headers;
  if (!timestamp || !signature) throw new SextantError("SX401", "the request is not signed by Slack (no X-Slack-Signature or X-Slack-Request-Timestamp)");
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > MAX_AGE_SECONDS) {
    throw new SextantError("SX401", "the request's timestamp is more than five minutes away from now (an old or replayed request)");
  }
  const expected = Buffer.from(`v0=${createHmac("sha256", secret).update(`v0:${timestamp}:`).update(rawBody).digest("hex")}`);
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SextantError("SX401", "the request's Slack signature does not match (check SEXTANT_SLACK_SIGNING_SECRET)");
  }
  return signature;
}
