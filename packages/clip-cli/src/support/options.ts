import { InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { BACKEND_NAMES, parseThreadCount, type BackendName } from '@clip-ts/core';

/**
 * Commander argument parsers backed by zod, so every flag is validated at the boundary and a bad value
 * is a usage error (exit code 2) whose message names the flag.
 */
export function zodArg<T>(flag: string, schema: z.ZodType<T>): (value: string) => T {
  return (value: string) => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const msg = parsed.error.issues.map((i) => i.message).join('; ');
      throw new InvalidArgumentError(`${flag}: ${msg} (got '${value}')`);
    }
    return parsed.data;
  };
}

export const positiveInt = (flag: string): ((value: string) => number) =>
  zodArg(flag, z.coerce.number().int('must be an integer').positive('must be positive'));

export const backendArg = zodArg<BackendName>(
  '--backend',
  z.enum(BACKEND_NAMES, { message: `must be one of ${BACKEND_NAMES.join(', ')}` }),
);

/** `--threads N`: wasm backend threads, validated like $CLIP_WASM_THREADS. */
export function threadsArg(value: string): number {
  try {
    return parseThreadCount(value, '--threads');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export const DECODERS = ['turbo', 'sharp'] as const;
export type DecoderName = (typeof DECODERS)[number];
export const decoderArg = zodArg<DecoderName>('--decoder', z.enum(DECODERS, { message: `must be one of ${DECODERS.join(', ')}` }));
export const DECODER_HELP = "JPEG decoder: turbo (default; libjpeg-turbo's fast IDCT, within a few grey levels of Pillow) | sharp (Pillow's pixels bit for bit)";

export const THREADS_HELP = 'wasm backend threads (default: $CLIP_WASM_THREADS or every core; 1 = single-threaded)';

/** Collect a repeatable option (`--template a --template b`) into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export const CAPTION_DATASETS = ['flickr8k', 'csv', 'shapes'] as const;
export type CaptionDatasetKind = (typeof CAPTION_DATASETS)[number];
export const CLASSIFICATION_DATASETS = ['cifar10', 'cifar100', 'imagefolder', 'shapes', 'svhn'] as const;
export type ClassificationDatasetKind = (typeof CLASSIFICATION_DATASETS)[number];

/** Datasets `clip probe` reads with both a train and a test split (support/probe-datasets.ts loads them). */
export const PROBE_DATASETS = ['cifar10', 'cifar100', 'imagefolder', 'csv', 'shapes', 'svhn'] as const;
export type ProbeDatasetKind = (typeof PROBE_DATASETS)[number];

export const captionDatasetArg = zodArg<CaptionDatasetKind>(
  '--dataset',
  z.enum(CAPTION_DATASETS, { message: `must be one of ${CAPTION_DATASETS.join(', ')}` }),
);
export const classificationDatasetArg = zodArg<ClassificationDatasetKind>(
  '--dataset',
  z.enum(CLASSIFICATION_DATASETS, { message: `must be one of ${CLASSIFICATION_DATASETS.join(', ')}` }),
);

export const probeDatasetArg = zodArg<ProbeDatasetKind>(
  '--dataset',
  z.enum(PROBE_DATASETS, { message: `must be one of ${PROBE_DATASETS.join(', ')}` }),
);

/** A zero-shot prompt template must contain exactly one `{}` where the class name goes. */
export const templateArg = (value: string, previous: string[] | undefined): string[] => {
  const count = value.split('{}').length - 1;
  if (count !== 1) throw new InvalidArgumentError(`--template: must contain exactly one '{}' (got '${value}')`);
  return collect(value, previous);
};
