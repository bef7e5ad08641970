// The sandbox's prelude: evaluated first in every call's fresh context, before the package's
// module. It takes the clock and the random generator away, and builds the `ctx` a script
// receives around the host functions the engine passes to `install`. What only some calls
// use (requests, classified errors) is in `extras.js`, loaded on first use: every call pays
// for reading this file, so it stays small. The package can import neither.

const RealDate = Date;
const clockRefused = (what) =>
  new TypeError(
    `${what} is not available in a connector: time comes from the engine (pass it in the input)`,
  );

// `new Date(value)`, `Date.parse` and `Date.UTC` stay; only the current time is refused.
function SandboxDate(...args) {
  if (new.target === undefined) throw clockRefused("Date()");
  if (args.length === 0) throw clockRefused("new Date() without an argument");
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
      throw clockRefused("Date.now");
    },
    writable: true,
    configurable: true,
  },
});
const hidden = { writable: true, configurable: true };
Object.defineProperty(RealDate.prototype, "constructor", { value: SandboxDate, ...hidden });
Object.defineProperty(globalThis, "Date", { value: SandboxDate, ...hidden });
Object.defineProperty(Math, "random", {
  value: function random() {
    throw new TypeError(
      "Math.random is not available in a connector: randomness that a replay cannot repeat " +
        "would break the run (take an id from the input, or ctx.idempotencyKey)",
    );
  },
  ...hidden,
});

/**
 * Builds the call's `ctx` and the global `console`. `host.log(level, message, fieldsJson)`
 * writes to the engine's log; `host.extras()` returns `extras.js`'s exports; `host.http`,
 * absent where a call may not reach out, sends a request (see `extras.js`).
 */
export function install(host, fields) {
  let loaded;
  const extras = () => (loaded ??= host.extras());
  const emit = (level) => (message, more) =>
    host.log(level, String(message), more === undefined ? undefined : extras().fieldsText(more));
  const print = (level) => (...args) => host.log(level, extras().formatArgs(args));
  globalThis.console = {
    log: print("info"),
    info: print("info"),
    debug: print("debug"),
    warn: print("warn"),
    error: print("error"),
  };
  const ctx = fields;
  ctx.log = { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
  ctx.retryable = (message, options) => extras().retryable(message, options);
  ctx.terminal = (message, options) => extras().terminal(message, options);
  if (host.http) {
    const send = host.http;
    ctx.http = { request: (options) => extras().request(send, options) };
  }
  return ctx;
}
