// What only some calls use: requests, classified errors, log formatting. Loaded into a
// call's context the first time `ctx` needs it (see `prelude.js`).

// The kinds a script may give an error, from `ErrorKind` (filled in by the engine).
const kinds = __KINDS__;

/** An error with a classification: thrown by `ctx.http.request`, built by `ctx.retryable`
 * and `ctx.terminal`. Any thrown object with a known `kind` is classified the same way. */
class ConnectorError extends Error {
  constructor(message, kind, { status, retryAfterMs } = {}) {
    super(message);
    this.name = "ConnectorError";
    this.kind = kind;
    if (status !== undefined) this.status = status;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

export function retryable(message, { kind = "upstream", retryAfterMs } = {}) {
  if (!kinds.retryable.includes(kind)) {
    throw new TypeError(`ctx.retryable: \`kind\` must be one of ${kinds.retryable.join(", ")}`);
  }
  if (retryAfterMs !== undefined && !(typeof retryAfterMs === "number" && retryAfterMs >= 0)) {
    throw new TypeError("ctx.retryable: `retryAfterMs` must be a number of milliseconds");
  }
  return new ConnectorError(String(message), kind, { retryAfterMs });
}

export function terminal(message, { kind = "rejected" } = {}) {
  if (!kinds.terminal.includes(kind)) {
    throw new TypeError(`ctx.terminal: \`kind\` must be one of ${kinds.terminal.join(", ")}`);
  }
  return new ConnectorError(String(message), kind);
}

export function fieldsText(fields) {
  try {
    return JSON.stringify(fields);
  } catch {
    return '"[fields that are not JSON]"';
  }
}

export function formatArgs(args) {
  return args
    .map((a) => {
      if (typeof a === "string") return a;
      try {
        return JSON.stringify(a) ?? String(a);
      } catch {
        return String(a);
      }
    })
    .join(" ");
}

function stringPairs(object, what) {
  if (object === null || typeof object !== "object") {
    throw new TypeError(`ctx.http.request: \`${what}\` must be an object`);
  }
  return Object.entries(object).map(([k, v]) => [k, String(v)]);
}

/** The request as the host reads it (`RequestSpec` in `host.rs`). */
function requestSpec(options) {
  if (options === null || typeof options !== "object") {
    throw new TypeError("ctx.http.request takes an options object: { method, url, ... }");
  }
  const { method = "GET", url, headers, json, body, form, timeout, auth = false } = options;
  if (typeof url !== "string") {
    throw new TypeError("ctx.http.request: `url` must be a string");
  }
  const bodies = [json, body, form].filter((b) => b !== undefined).length;
  if (bodies > 1) {
    throw new TypeError("ctx.http.request: give at most one of `json`, `body` and `form`");
  }
  const spec = { method: String(method), url, auth: Boolean(auth) };
  if (headers !== undefined) spec.headers = stringPairs(headers, "headers");
  if (json !== undefined) spec.json = json;
  if (body !== undefined) spec.body = String(body);
  if (form !== undefined) spec.form = stringPairs(form, "form");
  if (timeout !== undefined) {
    if (typeof timeout !== "number" || !(timeout > 0)) {
      throw new TypeError("ctx.http.request: `timeout` must be a positive number of milliseconds");
    }
    spec.timeoutMs = timeout;
  }
  return spec;
}

function jsonOrUndefined(text) {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const classified = (e) =>
  new ConnectorError(e.message, e.kind, { status: e.status, retryAfterMs: e.retryAfterMs });

/** `ctx.http.request`: `send(specJson)` settles with `{ response, error }` or `{ failure }`. */
export async function request(send, options) {
  const { throwOnError = true } = options ?? {};
  const outcome = await send(JSON.stringify(requestSpec(options)));
  if (outcome.failure) throw classified(outcome.failure);
  const response = outcome.response;
  response.json = jsonOrUndefined(response.body);
  if (outcome.error && throwOnError) {
    const error = classified(outcome.error);
    error.response = response;
    throw error;
  }
  return response;
}
