// A small HTTP client for tests: real requests over real sockets.
export interface ApiOptions {
  /** Legacy-mode identity: appended as ?user_id=. */
  user?: string;
  token?: string;
  admin?: string;
  /** Scope object, sent base64-encoded in X-Scope-Config. */
  scope?: Record<string, string[]>;
  body?: unknown;
  /** Raw body bytes/text (for malformed input tests); sent as is. */
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean>;
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  text: string;
  json: T;
}

export const scopeHeader = (s: Record<string, string[]>): string => Buffer.from(JSON.stringify(s)).toString('base64');

export function client(baseUrl: string) {
  return async function api<T = any>(method: string, path: string, o: ApiOptions = {}): Promise<ApiResponse<T>> {
    const url = new URL(path, baseUrl);
    if (o.user !== undefined) url.searchParams.set('user_id', o.user);
    for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.admin) headers.authorization = `Bearer ${o.admin}`;
    if (o.scope) headers['x-scope-config'] = scopeHeader(o.scope);
    let body: string | Buffer | undefined;
    if (o.rawBody !== undefined) body = o.rawBody;
    else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(url, { method, headers, body: body as BodyInit | undefined });
    const text = await res.text();
    let json: any = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };
}
export type Api = ReturnType<typeof client>;

/** Creates a dialog through the Management API and returns its id. */
export async function createDialog(api: Api, body: Record<string, unknown>, admin?: string): Promise<string> {
  const r = await api('POST', '/api/v1/management/dialogs', {
    admin,
    body: { object_id: 'obj-1', object_type: 'order', participants: [], ...body },
  });
  if (r.status !== 200) throw new Error(`create dialog failed: ${r.status} ${r.text}`);
  return r.json.data.id;
}
