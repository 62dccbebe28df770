// Validate an AsyncAPI document with the official parser (@asyncapi/parser, installed by
// scripts/test.sh into .cache/asyncapi): print every diagnostic, exit 1 on any of
// severity error (or if the document cannot be parsed at all), else 0.
//   node scripts/asyncapi-validate.cjs schemas/asyncapi.json
const fs = require("fs");
const path = require("path");

const folder = process.env.ASYNCAPI_PARSER_DIR
  || path.join(__dirname, "..", ".cache", "asyncapi", "node_modules", "@asyncapi", "parser");
const { Parser, DiagnosticSeverity } = require(folder);
const file = process.argv[2];
if (!file) {
  console.error("usage: node scripts/asyncapi-validate.cjs FILE");
  process.exit(2);
}

(async () => {
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(fs.readFileSync(file, "utf8"),
                                                       { source: path.resolve(file) });
  const names = Object.fromEntries(Object.entries(DiagnosticSeverity).map(([k, v]) => [v, k]));
  for (const d of diagnostics) {
    const where = (d.path || []).join("/");
    console.log(`${names[d.severity] || d.severity}\t${d.code}\t/${where}\t${d.message}`);
  }
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  if (errors.length || !document) {
    console.error(`${file}: ${errors.length} error(s)${document ? "" : ", not parsed"}`);
    process.exit(1);
  }
  console.log(`${file}: AsyncAPI ${document.version()}, ${document.channels().length} channels,`
              + ` ${document.operations().length} operations, ${document.messages().length}`
              + ` messages; no errors`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
