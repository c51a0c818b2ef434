import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

/** The contexts that may call the hub's API. */
export type ApiContext = IExecuteFunctions | IHookFunctions | ILoadOptionsFunctions;

/** The credential's base URL without a trailing slash. */
export async function baseUrl(ctx: ApiContext): Promise<string> {
	const credentials = await ctx.getCredentials('smsHubApi');
	return String(credentials.baseUrl).replace(/\/+$/, '');
}

/**
 * One call to the hub's REST API (`/api/v1…`), authenticated by the credential.
 * The hub answers errors as `{"error": {"code", "message", "details"}}`: the n8n error
 * shows that message and keeps the code in its description.
 */
export async function apiRequest(
	ctx: ApiContext,
	method: IHttpRequestMethods,
	path: string,
	body?: IDataObject,
	qs?: IDataObject,
): Promise<IDataObject> {
	const options: IHttpRequestOptions = {
		method,
		url: `${await baseUrl(ctx)}/api/v1${path}`,
		json: true,
	};
	if (body !== undefined) options.body = body;
	if (qs !== undefined) options.qs = qs;
	try {
		return (await ctx.helpers.httpRequestWithAuthentication.call(
			ctx,
			'smsHubApi',
			options,
		)) as IDataObject;
	} catch (error) {
		throw new NodeApiError(ctx.getNode(), error as JsonObject, hubError(error));
	}
}

/** The hub's `error.message` / `error.code` of a failed request, when it has one. */
function hubError(error: unknown): { message?: string; description?: string } {
	const data = (error as { response?: { data?: unknown } })?.response?.data as
		| { error?: { code?: string; message?: string } }
		| undefined;
	if (!data?.error) return {};
	return { message: data.error.message, description: data.error.code };
}

/** The HTTP status of a failed request (undefined when there was no answer). */
export function statusOf(error: unknown): number | undefined {
	const e = error as { httpCode?: string | number; response?: { status?: number } };
	const code = e.httpCode ?? e.response?.status;
	return code === undefined ? undefined : Number(code);
}
