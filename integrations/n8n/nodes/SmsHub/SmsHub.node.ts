import type {
	IDataObject,
	IExecuteFunctions,
	INodeExecutionData,
	INodeType,
	INodeTypeDescription,
} from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { flowFields, groupFields, messageFields, resourceField } from './descriptions';
import { apiRequest } from './transport';

/** One operation: item index in, the hub's answer out (one object or a list). */
type Operation = (ctx: IExecuteFunctions, i: number) => Promise<IDataObject | IDataObject[]>;

/** The page size asked for when returning all messages (the API's maximum). */
const PAGE_MAX = 200;

/** `POST /api/v1/send`; the idempotency key defaults to execution + node + item. */
async function sendSms(ctx: IExecuteFunctions, i: number): Promise<IDataObject> {
	const extra = ctx.getNodeParameter('additionalFields', i, {}) as IDataObject;
	const body: IDataObject = {
		to: ctx.getNodeParameter('to', i) as string,
		message: ctx.getNodeParameter('message', i) as string,
		idempotency_key: `n8n:${ctx.getExecutionId()}:${ctx.getNode().id}:${i}`,
	};
	for (const [name, value] of Object.entries(extra)) {
		if (value !== '' && value !== undefined && value !== null) body[name] = value;
	}
	return apiRequest(ctx, 'POST', '/send', body);
}

/** `GET /api/v1/messages/{id}`. */
async function getMessage(ctx: IExecuteFunctions, i: number): Promise<IDataObject> {
	const id = encodeURIComponent(ctx.getNodeParameter('messageId', i) as string);
	return apiRequest(ctx, 'GET', `/messages/${id}`);
}

/** `GET /api/v1/messages`, following `next_cursor` until the limit (or the end). */
async function listMessages(ctx: IExecuteFunctions, i: number): Promise<IDataObject[]> {
	const returnAll = ctx.getNodeParameter('returnAll', i) as boolean;
	const limit = returnAll ? Infinity : (ctx.getNodeParameter('limit', i) as number);
	const filters = ctx.getNodeParameter('filters', i, {}) as IDataObject;
	const found: IDataObject[] = [];
	let cursor: string | undefined;
	do {
		const qs: IDataObject = { ...filters, limit: Math.min(PAGE_MAX, limit - found.length) };
		if (cursor) qs.cursor = cursor;
		const page = await apiRequest(ctx, 'GET', '/messages', undefined, qs);
		found.push(...(page.items as IDataObject[]));
		cursor = (page.next_cursor as string | null) ?? undefined;
	} while (cursor && found.length < limit);
	return found;
}

/** `POST /api/v1/groups/{id}/members {phones}`. */
async function addToGroup(ctx: IExecuteFunctions, i: number): Promise<IDataObject> {
	const id = encodeURIComponent(ctx.getNodeParameter('groupId', i) as string);
	const phones = (ctx.getNodeParameter('phone', i) as string)
		.split(',')
		.map((phone) => phone.trim())
		.filter(Boolean);
	return apiRequest(ctx, 'POST', `/groups/${id}/members`, { phones });
}

/** `POST /api/v1/flows/{id}/start {phone, params}`, keyed like a send. */
async function startFlow(ctx: IExecuteFunctions, i: number): Promise<IDataObject> {
	const id = encodeURIComponent(ctx.getNodeParameter('flowId', i) as string);
	const raw = ctx.getNodeParameter('params', i, '{}') as string | IDataObject;
	let params: unknown = raw;
	if (typeof raw === 'string') {
		try {
			params = JSON.parse(raw || '{}');
		} catch {
			throw new NodeOperationError(ctx.getNode(), 'Parameters must be a JSON object', { itemIndex: i });
		}
	}
	if (typeof params !== 'object' || params === null || Array.isArray(params)) {
		throw new NodeOperationError(ctx.getNode(), 'Parameters must be a JSON object', { itemIndex: i });
	}
	return apiRequest(ctx, 'POST', `/flows/${id}/start`, {
		phone: ctx.getNodeParameter('phone', i) as string,
		params: params as IDataObject,
		idempotency_key: `n8n:${ctx.getExecutionId()}:${ctx.getNode().id}:${i}`,
	});
}

/** Every operation by `resource:operation` (a table, not an if-chain). */
export const OPERATIONS: Record<string, Operation> = {
	'message:send': sendSms,
	'message:get': getMessage,
	'message:getAll': listMessages,
	'group:addContact': addToGroup,
	'flow:start': startFlow,
};

/** Sends SMS and reads messages, adds contacts to groups and starts flows on an smshub. */
export class SmsHub implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'smshub',
		name: 'smsHub',
		icon: 'file:smshub.svg',
		group: ['output'],
		version: 1,
		subtitle: '={{$parameter["operation"] + ": " + $parameter["resource"]}}',
		description: 'Send SMS, read messages, add contacts to groups and start flows on your smshub',
		defaults: { name: 'smshub' },
		inputs: ['main'],
		outputs: ['main'],
		usableAsTool: true,
		credentials: [{ name: 'smsHubApi', required: true }],
		properties: [resourceField, ...messageFields, ...groupFields, ...flowFields],
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const out: INodeExecutionData[] = [];
		for (let i = 0; i < items.length; i++) {
			const key = `${this.getNodeParameter('resource', i)}:${this.getNodeParameter('operation', i)}`;
			const operation = OPERATIONS[key];
			try {
				if (!operation) throw new NodeOperationError(this.getNode(), `Unknown operation ${key}`, { itemIndex: i });
				const answer = await operation(this, i);
				for (const json of Array.isArray(answer) ? answer : [answer]) {
					out.push({ json, pairedItem: { item: i } });
				}
			} catch (error) {
				if (!this.continueOnFail()) throw error;
				out.push({ json: { error: (error as Error).message }, pairedItem: { item: i } });
			}
		}
		return [out];
	}
}
