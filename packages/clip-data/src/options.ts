import { ConfigError, formatZodIssues } from '@clip-ts/core';
import type { z } from 'zod';

/** Validate user options with a zod schema; a ConfigError lists every `path: message`. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new ConfigError(`${what} options:\n${formatZodIssues(r.error.issues)}`);
  return r.data;
}
