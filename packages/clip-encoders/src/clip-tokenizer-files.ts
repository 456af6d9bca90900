import { join } from 'node:path';
import { clipTokenizerFromJson, type CLIPTokenizer } from './clip-tokenizer.js';
import { TokenizerError } from './errors.js';
import { readJson } from './files.js';

const tokenizerError = (m: string, o?: { cause?: unknown }): TokenizerError => new TokenizerError(m, o);

/**
 * Load `dir`'s tokenizer.json (required), tokenizer_config.json and special_tokens_map.json (optional) as
 * `CLIPTokenizer(Fast)` sets them up (Node). Holds no tensors.
 */
export async function loadCLIPTokenizer(dir: string, defaultMaxLength = 77): Promise<CLIPTokenizer> {
  const tok = await readJson(join(dir, 'tokenizer.json'), { error: tokenizerError });
  const cfg = await readJson(join(dir, 'tokenizer_config.json'), { error: tokenizerError, optional: true });
  const map = await readJson(join(dir, 'special_tokens_map.json'), { error: tokenizerError, optional: true });
  return clipTokenizerFromJson(
    { tokenizer: tok.value, tokenizerText: tok.text, tokenizerConfig: cfg?.value, specialTokensMap: map?.value },
    dir,
    defaultMaxLength,
  );
}
