// Reads tsc output on stdin and appends, to every error on generated/dashboards.ts, the dashboard file and
// the JSON pointer of the value it is about (from generated/lines.json).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const where = JSON.parse(readFileSync(join(here, 'generated/lines.json'), 'utf8'));
const input = readFileSync(0, 'utf8');
for (const line of input.split('\n')) {
  if (line === '') continue;
  const m = /^generated\/dashboards\.ts\((\d+),\d+\)/.exec(line);
  const at = m ? where[Number(m[1]) - 1] : null;
  console.log(at ? `${line}\n    at ${at}` : line);
}
