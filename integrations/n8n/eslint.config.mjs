// n8n's community-node rules (eslint-plugin-n8n-nodes-base) in flat config: its "community"
// set on package.json, "credentials" on the credential, "nodes" on the nodes.
import tsParser from '@typescript-eslint/parser';
import jsoncParser from 'jsonc-eslint-parser';
import n8nNodesBase from 'eslint-plugin-n8n-nodes-base';

const plugins = { 'n8n-nodes-base': n8nNodesBase };

export default [
	{ ignores: ['dist/**', 'node_modules/**', 'test/**'] },
	{
		files: ['package.json'],
		languageOptions: { parser: jsoncParser },
		plugins,
		rules: n8nNodesBase.configs.community.rules,
	},
	{
		files: ['credentials/**/*.ts'],
		languageOptions: { parser: tsParser },
		plugins,
		rules: {
			...n8nNodesBase.configs.credentials.rules,
			// Main-repository rules (a docs slug there); a community package has no n8n docs page.
			'n8n-nodes-base/cred-class-field-documentation-url-missing': 'off',
			'n8n-nodes-base/cred-class-field-documentation-url-miscased': 'off',
		},
	},
	{
		files: ['nodes/**/*.ts'],
		languageOptions: { parser: tsParser },
		plugins,
		rules: n8nNodesBase.configs.nodes.rules,
	},
];
