import { describe, expect, it } from 'vitest';
import { main } from '../src/zeroshot-cifar10.js';

describe('zeroshot-cifar10 --dry-run', () => {
  it('runs the three reference prompts on a generated cifar-10-batches-bin and prints top-1/top-3 beside the reference', async () => {
    let out = '';
    let err = '';
    const code = await main(['--dry-run'], { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
    expect(err).not.toMatch(/^error/m);
    expect(code).toBe(0);
    expect(out).toContain('20 images, chance top-1 10.00%');
    expect(out).toMatch(/\| \{\} \(bare class name\) \| 51\.21% \| \d+\.\d\d% \| \d+\.\d\d% \|/);
    expect(out).toMatch(/\| a photo of a \{\}\. \| 54\.05% \|/);
    expect(out).toMatch(/\| a fuzzy photo of a \{\}\. \| 55\.23% \|/);
  });
});
