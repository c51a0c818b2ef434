// tsc copies no SVGs: put each node's icon next to its compiled .node.js, where n8n looks.
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

for (const dir of ['nodes/SmsHub', 'nodes/SmsHubTrigger', 'credentials']) {
	for (const name of readdirSync(dir).filter((file) => file.endsWith('.svg'))) {
		cpSync(join(dir, name), join('dist', dir, name));
	}
}
