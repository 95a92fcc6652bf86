// Sends log records to a collector with winston-loki (the Winston transport
// for Grafana Loki: snappy-compressed protobuf by default, JSON with
// `json: true`), driven by the Python tests through the environment:
//
//   LOKI_HOST        collector base URL (winston-loki appends /loki/api/v1/push)
//   LOKI_AUTH        "user:key" for Basic auth
//   LOKI_RECORDS     JSON array of Winston info objects
//                    ({level, message, timestamp, labels, ...meta})
//   LOKI_OPTIONS     JSON object of extra LokiTransport options
//                    (json, batching, interval, clearOnError, labels)
//   LOKI_MESSAGE_BYTES  when set, every record's message becomes that many
//                    "x" (too long to pass through the environment)
//   LOKI_HANDSHAKE   "1": after the first connection error print
//                    {"event":"error",...} and wait for a line on stdin
//                    before closing (the test lifts the backpressure then)
//
// Prints one JSON line last: {"errors": [{statusCode, message}], "closed": true}.
'use strict'

const readline = require('readline')
const winston = require('winston')
const LokiTransport = require('winston-loki')

const records = JSON.parse(process.env.LOKI_RECORDS || '[]')
if (process.env.LOKI_MESSAGE_BYTES) {
  const message = 'x'.repeat(Number(process.env.LOKI_MESSAGE_BYTES))
  for (const record of records) record.message = message
}
const options = JSON.parse(process.env.LOKI_OPTIONS || '{}')
const handshake = process.env.LOKI_HANDSHAKE === '1'
const errors = []
let firstError = null
const errorSeen = new Promise(resolve => { firstError = resolve })

const transport = new LokiTransport({
  host: process.env.LOKI_HOST,
  basicAuth: process.env.LOKI_AUTH,
  // The record's own `timestamp` is the entry's time, not the send time.
  replaceTimestamp: false,
  gracefulShutdown: false,
  timeout: 10000,
  onConnectionError: err => {
    errors.push({
      statusCode: err.statusCode === undefined ? null : err.statusCode,
      message: String(err.message)
    })
    firstError()
  },
  ...options
})
const logger = winston.createLogger({ transports: [transport] })

function waitForStdinLine () {
  return new Promise(resolve => {
    const rl = readline.createInterface({ input: process.stdin })
    rl.once('line', () => { rl.close(); resolve() })
  })
}

async function main () {
  for (const record of records) {
    logger.log(record)
  }
  if (handshake) {
    await errorSeen
    console.log(JSON.stringify({ event: 'error', errors }))
    await waitForStdinLine()
  } else if (options.batching === false) {
    // Unbatched sends start at once; flush() resolves once all answered.
    await new Promise(resolve => setImmediate(resolve))
    await transport.flush()
  }
  // close() sends what is batched (including a batch put back after a
  // failed send) and waits for the answer.
  await transport.close()
  console.log(JSON.stringify({ errors, closed: true }))
}

main().catch(err => {
  console.log(JSON.stringify({ errors, fatal: String(err && err.stack) }))
  process.exit(1)
})
