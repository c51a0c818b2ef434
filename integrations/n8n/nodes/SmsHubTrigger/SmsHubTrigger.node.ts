import type {
	IDataObject,
	IHookFunctions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';

import { apiRequest, statusOf } from '../SmsHub/transport';
import { verifySignature } from './signature';

/** The hub's event types (hub/event_data.py EVENT_TYPES), as the trigger offers them. */
export const EVENTS: Array<{ name: string; value: string; description: string }> = [
	{ name: 'All Events', value: '*', description: 'Every event the hub emits' },
	{ name: 'Broadcast Completed', value: 'broadcast.completed', description: 'A broadcast sent its last message' },
	{ name: 'Broadcast Started', value: 'broadcast.started', description: 'A broadcast began sending' },
	{ name: 'Device Offline', value: 'device.offline', description: 'A gateway phone stopped reporting' },
	{ name: 'Device Online', value: 'device.online', description: 'A gateway phone is back' },
	{ name: 'Endpoint Disabled', value: 'endpoint.disabled', description: 'A webhook endpoint was disabled after failing' },
	{ name: 'Flow Run Completed', value: 'flow.run.completed', description: 'A flow run finished' },
	{ name: 'Flow Run Failed', value: 'flow.run.failed', description: 'A flow run failed' },
	{ name: 'SMS Delivered', value: 'sms.delivered', description: 'An SMS was delivered to the phone' },
	{ name: 'SMS Failed', value: 'sms.failed', description: 'An SMS could not be sent or delivered' },
	{ name: 'SMS Received', value: 'sms.received', description: 'An inbound SMS arrived' },
	{ name: 'SMS Sent', value: 'sms.sent', description: 'A gateway sent an SMS' },
];

/** What the trigger keeps between activation and deactivation (workflow static data). */
interface HookState extends IDataObject {
	hookId?: string;
	secret?: string;
	targetUrl?: string;
	event?: string;
}

/**
 * Starts the workflow on a hub event, pushed by a REST hook (no polling): activation
 * subscribes `POST /api/v1/hooks {target_url, event}`, deactivation unsubscribes
 * `DELETE /api/v1/hooks/{id}`. Every delivery's Standard Webhooks signature is checked
 * against the hook's secret before the workflow sees it; a forged or replayed one gets 401.
 */
export class SmsHubTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'smshub Trigger',
		name: 'smsHubTrigger',
		icon: 'file:smshub.svg',
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["event"]}}',
		description: 'Starts the workflow when smshub emits an event (inbound SMS, delivery report, failed flow run…)',
		defaults: { name: 'smshub Trigger' },
		inputs: [],
		outputs: ['main'],
		credentials: [{ name: 'smsHubApi', required: true }],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: 'webhook',
			},
		],
		properties: [
			{
				displayName: 'Event',
				name: 'event',
				type: 'options',
				required: true,
				default: 'sms.received',
				options: EVENTS,
				description: 'The hub event that starts the workflow',
			},
		],
	};

	webhookMethods = {
		default: {
			/** True when the hook we subscribed still exists on the hub for this URL and event. */
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const state = this.getWorkflowStaticData('node') as HookState;
				if (!state.hookId || !state.secret) return false;
				try {
					const endpoint = await apiRequest(this, 'GET', `/endpoints/${state.hookId}`);
					const events = endpoint.event_types as string[] | undefined;
					if (
						endpoint.url === this.getNodeWebhookUrl('default') &&
						events?.length === 1 &&
						events[0] === this.getNodeParameter('event')
					) {
						return true;
					}
				} catch (error) {
					if (statusOf(error) !== 404) throw error;
				}
				forget(state);
				return false;
			},

			/** Subscribe; the answer's secret verifies every delivery. */
			async create(this: IHookFunctions): Promise<boolean> {
				const state = this.getWorkflowStaticData('node') as HookState;
				const targetUrl = this.getNodeWebhookUrl('default') as string;
				const event = this.getNodeParameter('event') as string;
				const hook = await apiRequest(this, 'POST', '/hooks', { target_url: targetUrl, event });
				state.hookId = hook.id as string;
				state.secret = hook.secret as string;
				state.targetUrl = targetUrl;
				state.event = event;
				return true;
			},

			/** Unsubscribe (a hook already gone is fine). */
			async delete(this: IHookFunctions): Promise<boolean> {
				const state = this.getWorkflowStaticData('node') as HookState;
				if (state.hookId) {
					try {
						await apiRequest(this, 'DELETE', `/hooks/${state.hookId}`);
					} catch (error) {
						if (statusOf(error) !== 404) return false;
					}
				}
				forget(state);
				return true;
			},
		},
	};

	/** A delivery: emitted when its signature holds, refused with 401 otherwise. */
	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const state = this.getWorkflowStaticData('node') as HookState;
		const req = this.getRequestObject() as ReturnType<IWebhookFunctions['getRequestObject']> & {
			rawBody?: Buffer;
		};
		const headers = this.getHeaderData() as Record<string, string | undefined>;
		// n8n keeps the bytes as received in rawBody; the signature is over those, not re-serialised JSON.
		const raw = req.rawBody ?? Buffer.from(JSON.stringify(req.body ?? {}));
		const problem = state.secret
			? verifySignature(state.secret, headers, raw)
			: 'the trigger has no hook secret (activate the workflow again)';
		if (problem !== null) {
			const res = this.getResponseObject();
			res.status(401).json({ error: { code: 'invalid_signature', message: problem } });
			return { noWebhookResponse: true };
		}
		const body = this.getBodyData() as IDataObject;
		return {
			workflowData: [this.helpers.returnJsonArray({ ...body, webhook_id: headers['webhook-id'] })],
		};
	}
}

function forget(state: HookState): void {
	delete state.hookId;
	delete state.secret;
	delete state.targetUrl;
	delete state.event;
}
