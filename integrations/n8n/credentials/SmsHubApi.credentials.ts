import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

/** An smshub API key and the hub's base URL; every request carries `Authorization: Bearer`. */
export class SmsHubApi implements ICredentialType {
	name = 'smsHubApi';

	displayName = 'SmsHub API';

	icon: Icon = 'file:smshub.svg';

	properties: INodeProperties[] = [
		{
			displayName: 'Base URL',
			name: 'baseUrl',
			type: 'string',
			default: '',
			placeholder: 'https://sms.example.com',
			description: 'Where your hub answers (its PUBLIC_URL), without /api/v1',
			required: true,
		},
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description: 'Create one with `smshub apikey create --name n8n` or on the API keys page',
			required: true,
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				Authorization: '=Bearer {{$credentials.apiKey}}',
			},
		},
	};

	// The cheapest authenticated read: one message (or none). 401 means a wrong or revoked key.
	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/api/v1/messages',
			qs: { limit: 1 },
		},
	};
}
