import { beforeAll } from 'vitest';
import type { SafetensorsFile } from '../../src/index.js';
import { readSafetensors } from '../../src/node.js';

/**
 * A float32 reference fixture (safetensors written by a generator script), read once before the file's
 * tests; returns the lookup by tensor name, which throws for a name the fixture lacks.
 */
export function safetensorsFixture(file: string): (name: string) => Float32Array {
  let ref: SafetensorsFile | undefined;
  beforeAll(async () => {
    ref = await readSafetensors(file);
  });
  return (name) => {
    const t = ref?.tensors.get(name);
    if (!t) throw new Error(`fixture ${file} lacks ${name}`);
    return t.data as Float32Array;
  };
}
