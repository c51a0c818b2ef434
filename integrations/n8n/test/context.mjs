// A small fake of n8n's execution contexts: only the methods the nodes call, each doing what
// n8n does (credentials applied from the credential class's `authenticate`, HTTP for real).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { SmsHubApi } = require('../dist/index.js');

/** The credential the tests use: a real hub's URL and API key. */
export function credentials(overrides = {}) {
	return { baseUrl: process.env.HUB_URL, apiKey: process.env.HUB_API_KEY, ...overrides };
}

/** `{{$credentials.x}}` templates of the credential class, resolved as n8n resolves them. */
function resolve(template, creds) {
	const text = template.startsWith('=') ? template.slice(1) : template;
	return text.replace(/\{\{\s*\$credentials\.(\w+)\s*\}\}/g, (_, name) => creds[name]);
}

/** An HTTP request the way n8n's `httpRequest` makes it: JSON, qs, an axios-like error. */
export async function httpRequest(options) {
	const url = new URL(options.url);
	for (const [name, value] of Object.entries(options.qs ?? {})) url.searchParams.set(name, String(value));
	const headers = { accept: 'application/json', ...(options.headers ?? {}) };
	let body;
	if (options.body !== undefined) {
		headers['content-type'] = 'application/json';
		body = JSON.stringify(options.body);
	}
	const resp = await fetch(url, { method: options.method ?? 'GET', headers, body });
	const text = await resp.text();
	const data = text ? JSON.parse(text) : undefined;
	if (!resp.ok) {
		const error = new Error(`Request failed with status code ${resp.status}`);
		error.httpCode = String(resp.status);
		error.response = { status: resp.status, data };
		throw error;
	}
	return data;
}

/** `helpers.httpRequestWithAuthentication`: the request with the credential's headers. */
function authenticated(creds) {
	return async function (name, options) {
		if (name !== 'smsHubApi') throw new Error(`unknown credential ${name}`);
		const auth = new SmsHubApi().authenticate.properties.headers;
		const headers = { ...(options.headers ?? {}) };
		for (const [header, template] of Object.entries(auth)) headers[header] = resolve(template, creds);
		return httpRequest({ ...options, headers });
	};
}

function returnJsonArray(data) {
	return (Array.isArray(data) ? data : [data]).map((json) => ({ json }));
}

const NODE = { id: 'node-1', name: 'smshub', type: 'n8n-nodes-smshub.smsHub', typeVersion: 1, position: [0, 0], parameters: {} };

/** Shared by the contexts of one node: n8n keeps it with the workflow. */
export function staticData() {
	return {};
}

function base({ params = {}, creds = credentials(), data = {} }) {
	return {
		getNode: () => ({ ...NODE, parameters: params }),
		getCredentials: async (name) => {
			if (name !== 'smsHubApi') throw new Error(`unknown credential ${name}`);
			return creds;
		},
		getNodeParameter: (name, _item, fallback) => {
			if (name in params) return params[name];
			if (fallback !== undefined) return fallback;
			throw new Error(`no parameter ${name}`);
		},
		getWorkflowStaticData: (kind) => {
			if (kind !== 'node') throw new Error(`static data ${kind}`);
			return data;
		},
		helpers: { httpRequestWithAuthentication: authenticated(creds), returnJsonArray },
	};
}

/** IHookFunctions: activation and deactivation of the trigger. */
export function hookContext({ params, data, webhookUrl, creds }) {
	return { ...base({ params, data, creds }), getNodeWebhookUrl: (name) => (name === 'default' ? webhookUrl : undefined) };
}

/** IWebhookFunctions: one request to the trigger's URL; `response` records what it answered. */
export function webhookContext({ params, data, request }) {
	const response = { statusCode: undefined, body: undefined };
	const res = {
		status(code) {
			response.statusCode = code;
			return res;
		},
		json(body) {
			response.body = body;
			return res;
		},
	};
	const parsed = JSON.parse(request.rawBody.toString('utf8'));
	const ctx = {
		...base({ params, data }),
		getRequestObject: () => ({ headers: request.headers, body: parsed, rawBody: request.rawBody }),
		getHeaderData: () => request.headers,
		getBodyData: () => parsed,
		getResponseObject: () => res,
	};
	return { ctx, response };
}

/** IExecuteFunctions: one run of the action node over `items` (one empty item by default). */
export function executeContext({ params, executionId = 'exec-1', items = [{ json: {} }] }) {
	return {
		...base({ params }),
		getInputData: () => items,
		getExecutionId: () => executionId,
		continueOnFail: () => false,
	};
}
