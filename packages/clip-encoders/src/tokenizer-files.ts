import { join } from 'node:path';
import { TokenizerError } from './errors.js';
import { readJson, type ErrorFactory } from './files.js';
import { HFTokenizer, type TokenizerLoadOptions } from './tokenizer.js';

/** Tokenizers from files (Node). */

const tokenizerError: ErrorFactory = (m, o) => new TokenizerError(m, o);

/** Load `tokenizer.json` (required) and `tokenizer_config.json` (optional: a missing file is skipped). */
export async function loadTokenizerFiles(
  tokenizerJsonPath: string,
  tokenizerConfigPath?: string,
  options: TokenizerLoadOptions = {},
): Promise<HFTokenizer> {
  const tj = await readJson(tokenizerJsonPath, { error: tokenizerError });
  const tc = tokenizerConfigPath !== undefined ? await readJson(tokenizerConfigPath, { error: tokenizerError, optional: true }) : undefined;
  // The text as read (not a re-serialisation) feeds the fingerprint, as before the browser split.
  return new HFTokenizer(tj.value, tc?.value, tokenizerJsonPath, { ...options, rawText: tj.text });
}

/** Load the tokenizer of a model directory (`tokenizer.json`, optional `tokenizer_config.json`). */
export async function loadTokenizer(dir: string, options: TokenizerLoadOptions = {}): Promise<HFTokenizer> {
  return loadTokenizerFiles(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'), options);
}
