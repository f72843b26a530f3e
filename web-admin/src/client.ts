// The API client: one `call` whose paths, methods, parameters, bodies and answers are all
// typed by `api.d.ts`, which is generated from the server's OpenAPI document (a check fails
// when it is out of date). Errors carry the API's machine-readable code and its message.

import type { components, paths } from "./api";
import { toBase64 } from "./wire";

export type Schemas = components["schemas"];

type Method = "get" | "post" | "put" | "delete";
type Operation<P extends keyof paths, M extends Method> = paths[P][M] extends infer O
  ? O extends { responses: unknown }
    ? O
    : never
  : never;
type PathParams<O> = O extends { parameters: { path: infer A } } ? A : undefined;
type QueryParams<O> = O extends { parameters: { query?: infer Q } } ? Q : undefined;
type Body<O> = O extends { requestBody: { content: { "application/json": infer B } } } ? B : undefined;
type Json<R> = R extends { content: { "application/json": infer T } } ? T : void;
type Answer<O> = O extends { responses: infer R }
  ? R extends { 200: infer A }
    ? Json<A>
    : R extends { 201: infer A }
      ? Json<A>
      : void
  : never;

/** What the API refused, with its code (`invalid_signature`, …) and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CallOptions<O> {
  path?: PathParams<O>;
  query?: QueryParams<O>;
  body?: Body<O>;
}

export class Client {
  constructor(
    private readonly base = "",
    public token: string | null = null,
  ) {}

  /** Calls one operation of the API. */
  async call<P extends keyof paths, M extends Method>(
    method: M,
    path: P,
    options: CallOptions<Operation<P, M>> = {},
  ): Promise<Answer<Operation<P, M>>> {
    const url = this.url(path as string, options.path as Record<string, string> | undefined, options.query);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(url, {
        method: method.toUpperCase(),
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch {
      throw new ApiError(0, "unreachable", "the server did not answer: check your connection and try again");
    }
    if (!response.ok) throw await this.error(response);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as Answer<Operation<P, M>>;
  }

  /** Downloads an octet-stream answer (ciphertext) whole. */
  async bytes(path: keyof paths, params: Record<string, string>): Promise<Uint8Array> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const response = await fetch(this.url(path as string, params), { headers });
    if (!response.ok) throw await this.error(response);
    return new Uint8Array(await response.arrayBuffer());
  }

  /**
   * Appends `bytes` at `offset` of the upload at `uploadUrl` (tus `PATCH`, with the chunk's
   * SHA-256 as `Upload-Checksum`); returns the server's new offset.
   */
  async appendUpload(uploadUrl: string, offset: number, bytes: Uint8Array<ArrayBuffer>): Promise<number> {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    const response = await this.fetchUpload(uploadUrl, {
      method: "PATCH",
      headers: {
        "tus-resumable": "1.0.0",
        "content-type": "application/offset+octet-stream",
        "upload-offset": String(offset),
        "upload-checksum": `sha256 ${toBase64(digest)}`,
      },
      body: bytes,
    });
    return uploadOffset(response);
  }

  /** How many bytes of the upload at `uploadUrl` the server has (tus `HEAD`). */
  async uploadOffset(uploadUrl: string): Promise<number> {
    return uploadOffset(await this.fetchUpload(uploadUrl, { method: "HEAD", headers: { "tus-resumable": "1.0.0" } }));
  }

  /** Abandons the upload at `uploadUrl` (tus termination): the server keeps nothing of it. */
  async abandonUpload(uploadUrl: string): Promise<void> {
    await this.fetchUpload(uploadUrl, { method: "DELETE", headers: { "tus-resumable": "1.0.0" } });
  }

  private async fetchUpload(uploadUrl: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set("authorization", `Bearer ${this.token}`);
    let response: Response;
    try {
      response = await fetch(`${this.base}${uploadUrl}`, { ...init, headers });
    } catch {
      throw new ApiError(0, "unreachable", "the server did not answer: check your connection");
    }
    if (!response.ok) {
      // A HEAD answer has no body to explain itself.
      throw init.method === "HEAD"
        ? new ApiError(response.status, "http_error", `the server answered ${response.status} about the upload`)
        : await this.error(response);
    }
    return response;
  }

  private url(path: string, params?: Record<string, string>, query?: unknown): string {
    const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params?.[name] ?? ""));
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
      if (value !== undefined && value !== null) search.set(name, String(value));
    }
    const suffix = search.size ? `?${search}` : "";
    return `${this.base}${filled}${suffix}`;
  }

  private async error(response: Response): Promise<ApiError> {
    try {
      const body = (await response.json()) as Schemas["ErrorBody"];
      return new ApiError(response.status, body.code, body.message);
    } catch {
      return new ApiError(response.status, "http_error", `the server answered ${response.status}`);
    }
  }
}

/** The `Upload-Offset` of a tus answer. */
function uploadOffset(response: Response): number {
  const header = response.headers.get("upload-offset");
  const offset = header === null || header.trim() === "" ? Number.NaN : Number(header);
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new ApiError(response.status, "bad_answer", "the server's answer has no valid Upload-Offset");
  }
  return offset;
}
