#!/usr/bin/env node
// Follow the live state of every bay from parkstream's space-events topic.
//
// A consumer another team could write: it reads <prefix>.space-events.v1 from the
// beginning with kafkajs, validates every record against the JSON Schema of its type and
// version (chosen by the record's ce_dataschema header, or else its type and version)
// with Ajv's draft 2020-12 validator, checks its CloudEvents headers, and folds
// space.state_changed records into the state of each bay. It needs nothing of parkstream
// but the schemas/ directory.
//
// Output, one JSON object a line on stdout:
//   {"space_id", "state", "from_state", "at", "event_id"}  for every change of a bay;
//   with --idle-exit SECONDS, after that long without a record, a last line
//   {"states": {space_id: state}, "records", "invalid", "duplicates", "headers_missing",
//    "headers_wrong"} and exit (1 if a record was invalid).
// Problems (a record that does not validate, wrong or missing headers) go to stderr.
//
//   node consume.mjs --bootstrap localhost:9092 --prefix parkstream --idle-exit 5

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { randomUUID } from "node:crypto";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { Kafka, logLevel } from "kafkajs";

const TOPIC = "space-events.v1";
const here = path.dirname(fileURLToPath(import.meta.url));
const REQUIRED_HEADERS = [
  "ce_specversion",
  "ce_id",
  "ce_source",
  "ce_type",
  "ce_time",
  "ce_dataschema",
  "ce_schemaversion",
  "content-type",
];

const { values: opts } = parseArgs({
  options: {
    bootstrap: {
      type: "string",
      default: process.env.KAFKA_BOOTSTRAP ?? process.env.PARKSTREAM_KAFKA_BOOTSTRAP ?? "localhost:9092",
    },
    prefix: { type: "string", default: process.env.PARKSTREAM_TOPIC_PREFIX ?? "parkstream" },
    schemas: {
      type: "string",
      default: process.env.PARKSTREAM_SCHEMAS ?? path.join(here, "..", "..", "..", "schemas"),
    },
    group: { type: "string" },
    "idle-exit": { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (opts.help) {
  console.log(
    "usage: consume.mjs [--bootstrap HOST:PORT[,...]] [--prefix PREFIX] [--schemas DIR]\n" +
      "                   [--group GROUP] [--idle-exit SECONDS]\n" +
      "env: KAFKA_BOOTSTRAP (else PARKSTREAM_KAFKA_BOOTSTRAP), PARKSTREAM_TOPIC_PREFIX,\n" +
      "     PARKSTREAM_SCHEMAS",
  );
  process.exit(0);
}

function emit(line, stream = process.stdout) {
  stream.write(JSON.stringify(line) + "\n");
}

// --- schemas: the current file of each type and version, else its latest published revision.

function loadSchemas(root) {
  const index = JSON.parse(readFileSync(path.join(root, "index.json"), "utf8"));
  const paths = new Map();
  for (const types of Object.values(index.topics)) {
    for (const [type, entry] of Object.entries(types)) {
      const published = [...entry.published].sort((a, b) => a.revision - b.revision);
      for (const pub of published) paths.set(`${type}@${pub.version}`, pub.path);
      if (entry.current) paths.set(`${type}@${entry.current.version}`, entry.current.path);
    }
  }
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  const byType = new Map();
  const byId = new Map();
  for (const [key, file] of paths) {
    const schema = JSON.parse(readFileSync(path.join(root, file), "utf8"));
    byType.set(key, ajv.compile(schema));
    byId.set(schema.$id, key);
  }
  return { byType, byId };
}

function validatorFor(schemas, record, dataschema) {
  if (!Number.isInteger(record.version)) return [null, `version ${record.version} is not an integer`];
  const key = `${record.type}@${record.version}`;
  if (dataschema !== undefined) {
    const byHeader = schemas.byId.get(dataschema);
    if (byHeader === undefined) return [null, `unknown ce_dataschema ${dataschema}`];
    if (byHeader !== key) return [null, `ce_dataschema ${dataschema} is not the schema of ${key}`];
  }
  const validate = schemas.byType.get(key);
  if (validate === undefined) return [null, `no schema for type ${record.type} version ${record.version}`];
  return [validate, null];
}

function headerProblems(headers, record) {
  const problems = REQUIRED_HEADERS.filter((name) => !(name in headers)).map((n) => `${n} missing`);
  const expected = {
    ce_specversion: "1.0",
    ce_id: record.event_id,
    ce_type: `dev.parkstream.${record.type}.v${record.version}`,
    ce_schemaversion: String(record.version),
    "content-type": "application/json",
    ce_source: record.tenant_id ? `urn:parkstream:tenant:${record.tenant_id}` : "urn:parkstream:ingest",
  };
  const subject = record.space_id || record.dev_eui;
  if (subject) expected.ce_subject = subject;
  for (const [name, want] of Object.entries(expected)) {
    if (name in headers && headers[name] !== want) {
      problems.push(`${name} is ${JSON.stringify(headers[name])}, expected ${JSON.stringify(want)}`);
    }
  }
  if ("ce_time" in headers && Date.parse(headers.ce_time) !== Date.parse(record.occurred_at)) {
    // Millisecond precision is enough to tell a wrong time from a differently written one.
    problems.push(`ce_time ${headers.ce_time} is not occurred_at ${record.occurred_at}`);
  }
  return problems;
}

// --- the fold: the state of each bay is the to_state of its last space.state_changed.

const schemas = loadSchemas(opts.schemas);
const states = {};
const seen = new Set();
const counts = { records: 0, invalid: 0, duplicates: 0, headers_missing: 0, headers_wrong: 0 };

function handle(topic, partition, message) {
  counts.records += 1;
  const where = `${topic}[${partition}]@${message.offset}`;
  const headers = {};
  for (const [key, value] of Object.entries(message.headers ?? {})) {
    headers[key] = Buffer.isBuffer(value) ? value.toString("utf8") : String(value);
  }
  let record;
  try {
    record = JSON.parse(message.value.toString("utf8"));
  } catch (err) {
    counts.invalid += 1;
    emit({ problem: "not JSON", at: where, detail: String(err) }, process.stderr);
    return;
  }
  const [validate, why] = validatorFor(schemas, record, headers.ce_dataschema);
  const errors = validate === null ? [why] : validate(record) ? [] : validate.errors.map(
    (e) => `${e.instancePath || "/"} ${e.message}`,
  );
  if (errors.length) {
    counts.invalid += 1;
    emit({ problem: "invalid record", at: where, errors: errors.slice(0, 5) }, process.stderr);
    return;
  }
  if (!Object.keys(headers).some((key) => key.startsWith("ce_"))) {
    counts.headers_missing += 1;
  } else {
    const problems = headerProblems(headers, record);
    if (problems.length) {
      counts.headers_wrong += 1;
      emit({ problem: "CloudEvents headers", at: where, errors: problems }, process.stderr);
    }
  }
  if (seen.has(record.event_id)) {
    counts.duplicates += 1; // delivery is at least once: a repeat has the same id
    return;
  }
  seen.add(record.event_id);
  if (record.type === "space.state_changed") {
    states[record.space_id] = record.data.to_state;
    emit({
      space_id: record.space_id,
      state: record.data.to_state,
      from_state: record.data.from_state,
      at: record.occurred_at,
      event_id: record.event_id,
    });
  }
}

const kafka = new Kafka({
  clientId: "parkstream-example-consumer",
  brokers: opts.bootstrap.split(","),
  logLevel: logLevel.WARN,
});
// kafkajs reads through a consumer group; a fresh one starts at the beginning every run.
const consumer = kafka.consumer({
  groupId: opts.group ?? `parkstream-example-${randomUUID()}`,
  sessionTimeout: 10000,
  heartbeatInterval: 3000,
  maxWaitTimeInMs: 200,
});

let last = Date.now();
let joined = false;
let stopping = false;

let idleTimer;

async function stop(code) {
  if (stopping) return;
  stopping = true;
  clearInterval(idleTimer);
  await consumer.disconnect().catch(() => {});
  const sorted = Object.fromEntries(Object.entries(states).sort(([a], [b]) => a.localeCompare(b)));
  emit({ states: sorted, ...counts });
  process.exitCode = code ?? (counts.invalid ? 1 : 0);
}

// The idle clock starts once the group is joined: joining may take a few seconds.
consumer.on(consumer.events.GROUP_JOIN, () => {
  last = Date.now();
  joined = true;
});

await consumer.connect();
await consumer.subscribe({ topic: `${opts.prefix}.${TOPIC}`, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ topic, partition, message }) => {
    last = Date.now();
    handle(topic, partition, message);
  },
});

process.on("SIGINT", () => stop(130));
process.on("SIGTERM", () => stop(143));
if (opts["idle-exit"] !== undefined) {
  const idleMs = Number(opts["idle-exit"]) * 1000;
  idleTimer = setInterval(() => {
    if (joined && Date.now() - last >= idleMs) stop();
  }, 100);
}
