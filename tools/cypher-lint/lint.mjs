// Lint Cypher with Neo4j's own front end (@neo4j-cypher/language-support, installed by
// tools/install-cypher-lint.sh). Reads a JSON array of {name, text} on stdin and prints a JSON array of
// {name, diagnostics: [{severity, line, message}]}; undeclared-parameter diagnostics are dropped, since
// parameters come from the driver or from :param. Browser commands (:param ...) are accepted.
import { lintCypherQuery } from '@neo4j-cypher/language-support';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const queries = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const report = queries.map(({ name, text }) => {
  const { diagnostics } = lintCypherQuery(text, {}, { consoleCommandsEnabled: true });
  return {
    name,
    diagnostics: diagnostics
      .filter((d) => !/^Parameter \$\S+ is not defined\.?$/.test(d.message))
      .map((d) => ({
        severity: d.severity === 1 ? 'error' : d.severity === 2 ? 'warning' : 'info',
        line: d.range.start.line + 1,
        message: d.message,
      })),
  };
});
process.stdout.write(JSON.stringify(report));
