// Sends log records through the OpenTelemetry JS SDK's OTLP/HTTP logs
// exporter (OTLP/JSON; with HELIOS_COMPRESSION=gzip the body is gzipped as
// a stream, so it goes chunked) to a helios-collector, then prints one JSON
// line: the exporter's result for each export call, and its errors.
//
// Environment: HELIOS_URL (collector base URL), HELIOS_KEY (ingest key),
// HELIOS_RUN (a tag put on every record), HELIOS_COUNT (records),
// HELIOS_COMPRESSION (gzip or none), HELIOS_TIMEOUT_MS (export timeout),
// HELIOS_PAD_BYTES (random hex added to each body, so gzip cannot shrink it).
'use strict';

const crypto = require('node:crypto');
const { context, trace, TraceFlags } = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');

const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const SPAN_ID = 'eee19b7ec3c1b174';
// 2025-12-07T12:00:00Z, plus i seconds and 123456789 ns for record i.
const BASE_SECONDS = 1765108800;

async function main() {
  const env = process.env;
  const count = Number(env.HELIOS_COUNT || '5');
  const run = env.HELIOS_RUN || 'run';
  const padBytes = Number(env.HELIOS_PAD_BYTES || '0');
  const exporter = new OTLPLogExporter({
    url: `${env.HELIOS_URL}/v1/logs`,
    headers: { Authorization: `Bearer ${env.HELIOS_KEY}` },
    compression: env.HELIOS_COMPRESSION === 'gzip' ? 'gzip' : 'none',
    timeoutMillis: Number(env.HELIOS_TIMEOUT_MS || '10000'),
  });
  // The exporter's own outcome of each export, as the processor sees it.
  const results = [];
  const errors = [];
  const observed = {
    export(records, done) {
      exporter.export(records, (result) => {
        results.push(result.code);
        if (result.error) {
          // OTLPExporterError carries the HTTP status and the answer's body.
          errors.push({ message: String(result.error.message), code: result.error.code, data: result.error.data });
        }
        done(result);
      });
    },
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
  };
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'js-shop', 'deployment.environment': 'test' }),
    processors: [
      new BatchLogRecordProcessor({ exporter: observed, maxExportBatchSize: 512, scheduledDelayMillis: 60000 }),
    ],
  });
  const logger = provider.getLogger('helios.js', '2.0.0');
  const spanContext = { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED };
  const withSpan = trace.setSpanContext(context.active(), spanContext);
  for (let i = 0; i < count; i++) {
    logger.emit({
      timestamp: [BASE_SECONDS + i, 123456789],
      severityNumber: i % 2 === 0 ? SeverityNumber.INFO : SeverityNumber.WARN,
      severityText: i % 2 === 0 ? 'INFO' : 'WARN',
      body: `js record ${i} ${run}` + (padBytes > 0 ? ` ${crypto.randomBytes(padBytes).toString('hex')}` : ''),
      attributes: { run, i, 'http.route': '/orders', ratio: 0.25, tags: ['a', 'b'] },
      eventName: i === 0 ? 'js.first' : undefined,
      context: withSpan,
    });
  }
  await provider.forceFlush();
  await provider.shutdown();
  console.log(JSON.stringify({ results, errors }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
