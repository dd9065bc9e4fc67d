#!/usr/bin/env node
// Parse an AsyncAPI document with the AsyncAPI parser (the one its own CLI and generator
// use) and exit 1 on any error diagnostic. Warnings are printed and do not fail.
//
//   node validate.mjs [path/to/asyncapi.json]   (default: the repository's schemas/asyncapi.json)

import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { DiagnosticSeverity, Parser } from "@asyncapi/parser";

const here = path.dirname(fileURLToPath(import.meta.url));
const file = path.resolve(process.argv[2] ?? path.join(here, "..", "..", "schemas", "asyncapi.json"));

const SEVERITY = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info",
  [DiagnosticSeverity.Hint]: "hint",
};

async function main() {
  const text = await readFile(file, "utf8");
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text, { source: file });
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) errors += 1;
    const where = d.path && d.path.length ? d.path.join(".") : "(document)";
    console.error(`${SEVERITY[d.severity] ?? d.severity} ${d.code}: ${where}: ${d.message}`);
  }
  if (errors > 0 || document === undefined) {
    console.error(`${file}: ${errors} error(s); not a valid AsyncAPI document`);
    process.exit(1);
  }
  const channels = document.channels().length;
  const operations = document.operations().length;
  const messages = document.components().messages().length;
  console.log(
    `${file}: valid AsyncAPI ${document.version()} ` +
      `(${channels} channels, ${operations} operations, ${messages} messages, ` +
      `${diagnostics.length} non-error diagnostic(s))`,
  );
}

main().catch((err) => {
  console.error(`${file}: ${err.stack ?? err}`);
  process.exit(2);
});
