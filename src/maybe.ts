// Values that are ready now or later: the one sync-or-async type. Lookups
// answered from the cache or the store are synchronous; going through a
// promise for them would cost every hot-path request a microtask round per
// step.

export type Maybe<T> = T | Promise<T>;

/** Continue with `f`, synchronously when `v` is already there. */
export function then<T, R>(v: Maybe<T>, f: (x: T) => Maybe<R>): Maybe<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}
