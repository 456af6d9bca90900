/** A partial of T at every depth: what a demo variant or override changes, the rest stays. */
export type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/**
 * `patch` laid over `base`: plain objects merge key by key, anything else (arrays, numbers, strings,
 * `false`) replaces; a key set to `undefined` in the patch is removed (how a variant drops e.g. schedule.lr). Returns a new object; neither input
 * is modified, and nested objects of the result are fresh copies wherever the patch touched them.
 */
export function deepMerge<T>(base: T, patch: DeepPartial<NoInfer<T>> | undefined): T {
  if (patch === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch as T;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) {
      delete out[key];
      continue;
    }
    out[key] = deepMerge(out[key], value as DeepPartial<unknown>);
  }
  return out as T;
}
