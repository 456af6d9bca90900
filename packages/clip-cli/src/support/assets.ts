import { fileURLToPath } from 'node:url';

/**
 * The real bert-base-uncased (= distilbert-base-uncased) WordPiece tokenizer.json, vocab 30522, shipped
 * with this package (assets/ is in `files`) so the demo and the examples run offline. Resolved relative
 * to this module, which works from src/ (tests) and dist/ (the installed CLI) alike.
 */
export function bundledTokenizerFile(): string {
  return fileURLToPath(new URL('../../assets/bert-base-uncased/tokenizer.json', import.meta.url));
}
