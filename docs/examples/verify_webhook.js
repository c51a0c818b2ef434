// Verify an smshub webhook (Standard Webhooks) with Node.js's standard library only.
//
//   WEBHOOK_SECRET=whsec_... node verify_webhook.js WEBHOOK_ID WEBHOOK_TIMESTAMP \
//       WEBHOOK_SIGNATURE < body.json
//
// The three arguments are the request's webhook-id, webhook-timestamp and
// webhook-signature headers, stdin is the raw body exactly as received. Exit code 0 and
// "ok" when the delivery is genuine, 1 and the reason otherwise. In Express, read the raw
// body (express.raw({type: "application/json"})) and call verify() before JSON.parse.
"use strict";

const crypto = require("node:crypto");

// Deliveries signed more than this many seconds away from our clock are refused (replays).
const TOLERANCE_S = 5 * 60;

function verify(secret, webhookId, timestamp, signatures, body) {
  if (!/^\d+$/.test(timestamp)) throw new Error("webhook-timestamp is not a number");
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_S) {
    throw new Error("webhook-timestamp is more than 5 minutes away");
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto
    .createHmac("sha256", key)
    .update(Buffer.concat([Buffer.from(`${webhookId}.${timestamp}.`), body]))
    .digest("base64");
  // During a secret rotation the header holds two signatures, space-separated.
  for (const candidate of signatures.split(" ")) {
    const [version, value = ""] = candidate.split(",", 2);
    const a = Buffer.from(value);
    const b = Buffer.from(expected);
    if (version === "v1" && a.length === b.length && crypto.timingSafeEqual(a, b)) return;
  }
  throw new Error("no signature matches");
}

function main() {
  const args = process.argv.slice(2);
  if (args.length !== 3) {
    console.error("usage: WEBHOOK_SECRET=whsec_... node verify_webhook.js ID TIMESTAMP SIGNATURE < body");
    process.exit(2);
  }
  const chunks = [];
  process.stdin.on("data", (chunk) => chunks.push(chunk));
  process.stdin.on("end", () => {
    try {
      verify(process.env.WEBHOOK_SECRET || "", args[0], args[1], args[2], Buffer.concat(chunks));
    } catch (err) {
      console.error(`rejected: ${err.message}`);
      process.exit(1);
    }
    console.log("ok");
  });
}

module.exports = { verify };
if (require.main === module) main();
