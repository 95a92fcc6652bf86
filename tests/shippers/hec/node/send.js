// Sends HEC_COUNT events through splunk-logging's SplunkLogger (batches of
// HEC_BATCH) to HEC_URL with HEC_TOKEN, and prints, as its last line, what
// the client reported: the body of each answer and each error its error
// hook saw ({message, code}).
"use strict";

const SplunkLogger = require("splunk-logging").Logger;

const count = Number(process.env.HEC_COUNT || "1");
const batch = Number(process.env.HEC_BATCH || "1");
const baseMs = Number(process.env.HEC_BASE_MS || "1765108800123");
const tag = process.env.HEC_TAG || "node";

const logger = new SplunkLogger({
  token: process.env.HEC_TOKEN,
  url: process.env.HEC_URL,
  maxBatchCount: batch,
  maxRetries: 0,
});

const errors = [];
logger.error = (err) => {
  errors.push({ message: err.message, code: err.code === undefined ? null : err.code });
};

const answers = [];
let pending = 0;
let sent = 0;

function done() {
  console.log(JSON.stringify({ answers, errors, sent }));
}

function onAnswer(err, response, body) {
  answers.push({
    status: response ? response.statusCode : null,
    body: body === undefined ? null : body,
    error: err ? String(err) : null,
  });
  pending -= 1;
  if (pending === 0 && sent === count) {
    done();
  }
}

for (let i = 0; i < count; i++) {
  const willFlush = (i + 1) % batch === 0 || i + 1 === count;
  if (willFlush) {
    pending += 1;
  }
  sent += 1;
  const payload = {
    message: { text: `${tag} message ${i}`, n: i, tags: ["a", "b"] },
    metadata: {
      time: new Date(baseMs + i),
      host: "node-host",
      source: "send.js",
      sourcetype: "node:test",
      index: "main",
    },
    severity: "warn",
  };
  if (i + 1 === count && (i + 1) % batch !== 0) {
    // The last partial batch: queue it, then flush it explicitly.
    logger.send(payload);
    logger.flush(onAnswer);
  } else {
    logger.send(payload, willFlush ? onAnswer : undefined);
  }
}
