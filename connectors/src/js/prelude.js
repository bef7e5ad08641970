// The sandbox's prelude: evaluated first in every call's fresh context, before the package's
// module. It takes the clock and the random generator away, and builds the `ctx` a script
// receives around the two host functions the engine passes to `install`. The package cannot
// import it: only the package's own files are importable.

const RealDate = Date;
const clockRefused = (what) =>
  `${what} is not available in a connector: time comes from the engine (pass it in the input)`;

// `new Date(value)`, `Date.parse` and `Date.UTC` stay; only the current time is refused.
function SandboxDate(...args) {
  if (new.target === undefined) throw new TypeError(clockRefused("Date()"));
  if (args.length === 0) throw new TypeError(clockRefused("new Date() without an argument"));
  return Reflect.construct(RealDate, args, new.target);
}
Object.defineProperties(SandboxDate, {
  name: { value: "Date" },
  length: { value: 7 },
  prototype: { value: RealDate.prototype },
  parse: { value: RealDate.parse, writable: true, configurable: true },
  UTC: { value: RealDate.UTC, writable: true, configurable: true },
  now: {
    value: function now() {
      throw new TypeError(clockRefused("Date.now"));
    },
    writable: true,
    configurable: true,
  },
});
Object.defineProperty(RealDate.prototype, "constructor", {
  value: SandboxDate,
  writable: true,
  configurable: true,
});
Object.defineProperty(globalThis, "Date", {
  value: SandboxDate,
  writable: true,
  configurable: true,
});
Object.defineProperty(Math, "random", {
  value: function random() {
    throw new TypeError(
      "Math.random is not available in a connector: randomness that a replay cannot repeat " +
        "would break the run (take an id from the input, or ctx.idempotencyKey)",
    );
  },
  writable: true,
  configurable: true,
});

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

function jsonOrUndefined(text) {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function fieldsText(fields) {
  if (fields === undefined) return undefined;
  try {
    return JSON.stringify(fields);
  } catch {
    return '"[fields that are not JSON]"';
  }
}

function formatArgs(args) {
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

/** The request as the host reads it (see `host.rs`). */
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

/**
 * Builds the call's `ctx` and the global `console`. `host.log(level, message, fieldsJson)`
 * writes to the engine's log; `host.http(specJson)`, absent where a call may not reach out,
 * sends a request and settles with `{ response, error }` or `{ failure }`.
 */
export function install(host, fields) {
  const { kinds, ...rest } = fields;
  const emit = (level) => (message, extra) =>
    host.log(level, String(message), fieldsText(extra));
  const log = Object.freeze({
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
  });
  const print = (level) => (...args) => host.log(level, formatArgs(args), undefined);
  globalThis.console = Object.freeze({
    log: print("info"),
    info: print("info"),
    debug: print("debug"),
    warn: print("warn"),
    error: print("error"),
  });

  const classified = (e) =>
    new ConnectorError(e.message, e.kind, { status: e.status, retryAfterMs: e.retryAfterMs });

  const retryable = (message, { kind = "upstream", retryAfterMs } = {}) => {
    if (!kinds.retryable.includes(kind)) {
      throw new TypeError(`ctx.retryable: \`kind\` must be one of ${kinds.retryable.join(", ")}`);
    }
    if (retryAfterMs !== undefined && !(typeof retryAfterMs === "number" && retryAfterMs >= 0)) {
      throw new TypeError("ctx.retryable: `retryAfterMs` must be a number of milliseconds");
    }
    return new ConnectorError(String(message), kind, { retryAfterMs });
  };
  const terminal = (message, { kind = "rejected" } = {}) => {
    if (!kinds.terminal.includes(kind)) {
      throw new TypeError(`ctx.terminal: \`kind\` must be one of ${kinds.terminal.join(", ")}`);
    }
    return new ConnectorError(String(message), kind);
  };

  const ctx = { ...rest, log, retryable, terminal };
  if (host.http) {
    const send = host.http;
    const request = async (options) => {
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
    };
    ctx.http = Object.freeze({ request });
  }
  return ctx;
}
