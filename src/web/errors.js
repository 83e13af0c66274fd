// Hearth's JS error classes. Every failure that reaches JS is one of these, so a
// caller can write `catch (e) { if (e instanceof ModelLoadError) ... }` and read
// `e.code` and the structured fields (`requiredBytes`, `suggestions`, ...) that
// the Rust side attached.
//
// wasm-bindgen cannot export a Rust type that `extends Error`, so the classes
// live here; `tools/finish-pkg.mjs` re-exports them from the package's entry
// module after `wasm-pack build`.

export class HearthError extends Error {
  constructor(message, details) {
    super(message, details && details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = new.target.name;
    this.code = 'HEARTH_ERROR';
    if (details && typeof details === 'object') {
      for (const [key, value] of Object.entries(details)) {
        if (key !== 'cause' && key !== 'name' && key !== 'message' && key !== 'stack') this[key] = value;
      }
    }
  }
}

/** A caller passed something Hearth cannot use (wrong type, out of range). */
export class InvalidInputError extends HearthError {}
/** No WebGPU adapter or device could be had. */
export class GpuUnavailableError extends HearthError {}
/** A model could not be loaded (memory, format, download); carries `reason`, `requiredBytes`, `availableBytes`, `suggestions`. */
export class ModelLoadError extends HearthError {}
/** The GPU has no room for what was asked. */
export class OutOfMemoryError extends HearthError {}
/** A model file could not be fetched; carries `url` and `status`. */
export class DownloadError extends HearthError {}
/** The GPU device was lost; everything on it is gone. */
export class DeviceLostError extends HearthError {}
/** The operation was cancelled through its `AbortSignal` or `cancel()`. */
export class CancelledError extends HearthError {}
/** A model file is malformed or unsupported; names the field or tensor. */
export class ModelFormatError extends HearthError {}
/** A model file's bytes are not the ones its SHA-256 names; carries `file`, `expectedSha256`, `actualSha256`, `expectedBytes`, `actualBytes`. The file was deleted and not used. */
export class IntegrityError extends HearthError {}
/** The GPU reported a validation or internal error during a generation or a load (`code` `GPU_ERROR`); that call failed, the module and the other models keep working. Carries `gpuErrorKind` and `gpuMessage`. */
export class GpuError extends HearthError {}
/** Worker mode could not start its Worker (a wrong script URL, a script error, WebAssembly that does not instantiate, no answer); `code` `WORKER_FAILED`, `field` `worker`. Nothing was left running. */
export class WorkerError extends HearthError {}

const classes = {
  HearthError,
  InvalidInputError,
  GpuUnavailableError,
  ModelLoadError,
  OutOfMemoryError,
  DownloadError,
  DeviceLostError,
  CancelledError,
  ModelFormatError,
  IntegrityError,
  GpuError,
  WorkerError,
};

/** Called from Rust: builds an error of the named class with a stable `code`. */
export function makeError(className, code, message, details) {
  const Class = classes[className] || HearthError;
  const error = new Class(message, details);
  error.code = code;
  return error;
}

/**
 * `model.stream(input, options)`: the tokens of `model.generate` as an async iterator, with
 * the final result on `.result`. Breaking out of the loop stops generation after the current
 * token; a failure rejects `.result` and is thrown by the loop.
 */
export function streamGenerate(model, input, options = {}) {
  const queue = [];
  let wake = null;
  let finished = false;
  let failure = null;
  let stopped = false;
  const notify = () => { const w = wake; wake = null; if (w) w(); };
  const userOnToken = options.onToken;
  const result = model.generate(input, {
    ...options,
    onToken: (t) => {
      queue.push(t);
      notify();
      const keepGoing = userOnToken ? userOnToken(t) : undefined;
      return stopped ? false : keepGoing;
    },
  }).then(
    (r) => { finished = true; notify(); return r; },
    (e) => { finished = true; failure = e; notify(); throw e; },
  );
  result.catch(() => {}); // also surfaced by the iterator
  return {
    result,
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          if (queue.length) { yield queue.shift(); continue; }
          if (finished) { if (failure) throw failure; return; }
          await new Promise((r) => { wake = r; });
        }
      } finally {
        stopped = true;
      }
    },
  };
}
