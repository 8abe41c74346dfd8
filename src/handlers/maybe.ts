// Values that are ready now or later. Lookups answered from the cache or the
// store are synchronous; going through a promise for them would cost every
// hot-path request a microtask round per step.

export type Maybe<T> = T | Promise<T>;

/** Continue with `f`, synchronously when `v` is already there. */
export function then<T, R>(v: Maybe<T>, f: (x: T) => Maybe<R>): Maybe<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** Run `run`; an error it throws or rejects with that `is` recognises becomes `onError(err)`. */
export function recover<T, E>(run: () => Maybe<T>, is: (err: unknown) => err is E, onError: (err: E) => T): Maybe<T> {
  let v: Maybe<T>;
  try {
    v = run();
  } catch (err) {
    if (is(err)) return onError(err);
    throw err;
  }
  if (!(v instanceof Promise)) return v;
  return v.catch((err: unknown) => {
    if (is(err)) return onError(err);
    throw err;
  });
}
