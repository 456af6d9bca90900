/**
 * Caption tokenizer over `@huggingface/tokenizers` (a pure-JS port of HF `tokenizers`): loads a
 * `tokenizer.json` (+ optional `tokenizer_config.json`) and encodes batches like HF's
 * `tokenizer(texts, padding='max_length', truncation=True, max_length=L)`.
 *
 * Truncation/padding are done here because tokenizers.js does not implement them: the text is tokenised
 * without special tokens, cut to `maxLength - numSpecialTokens`, then the tokenizer's own post-processor
 * adds the special tokens. That is exactly HF's order for a single sequence (truncate the sequence, then
 * add [CLS]/[SEP]), so a truncated caption still ends in [SEP].
 *
 * Browser-safe: built from JSON text or objects. Reading tokenizer files is ./tokenizer-files.ts (Node).
 */
import { Tokenizer } from '@huggingface/tokenizers';
// Pure-JS SHA-256 (node:crypto is not in browsers); same digest, so fingerprints and caches carry over.
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import * as tf from '@tensorflow/tfjs-core';
import { ValueError, formatZodIssues, type CaptionTokenizer, type EncodedText, type TextInput } from '@clip-ts/core';
import { z } from 'zod';
import { TokenizerError } from './errors.js';

const tokenizerJsonSchema = z.looseObject({
  model: z.looseObject({ type: z.string().optional() }),
  added_tokens: z.array(z.looseObject({ id: z.number().int(), content: z.string() })).optional(),
  padding: z.looseObject({ pad_id: z.number().int().optional() }).nullable().optional(),
});

const tokenizerConfigSchema = z.looseObject({
  pad_token: z.union([z.string(), z.looseObject({ content: z.string() })]).nullable().optional(),
  model_max_length: z.number().optional(),
});

export interface TokenizerLoadOptions {
  /** Id used for padding. Default: tokenizer.json `padding.pad_id`, else the id of tokenizer_config's `pad_token`, else of `[PAD]`, else 0. */
  padTokenId?: number;
}

/** A `CaptionTokenizer` backed by a Hugging Face `tokenizer.json`. Holds no tensors. */
export class HFTokenizer implements CaptionTokenizer {
  readonly vocabSize: number;
  readonly padTokenId: number;
  /** Special tokens the post-processor adds to one sequence (2 for BERT: [CLS], [SEP]). */
  readonly numSpecialTokens: number;
  private readonly tok: Tokenizer;
  private readonly unkId: number;
  private readonly hash: string;

  /**
   * @param tokenizerJson parsed tokenizer.json; `rawText` (its bytes as read) feeds the fingerprint.
   * @param source names the file in errors.
   */
  constructor(
    tokenizerJson: unknown,
    tokenizerConfig: unknown,
    source: string,
    options: TokenizerLoadOptions & { rawText?: string } = {},
  ) {
    const parsed = tokenizerJsonSchema.safeParse(tokenizerJson);
    if (!parsed.success) {
      throw new TokenizerError(`${source}: not a tokenizer.json:\n${formatZodIssues(parsed.error.issues)}`);
    }
    const cfg = tokenizerConfigSchema.safeParse(tokenizerConfig ?? {});
    if (!cfg.success) {
      throw new TokenizerError(`${source}: bad tokenizer_config.json:\n${formatZodIssues(cfg.error.issues)}`);
    }
    try {
      // tokenizers.js requires `added_tokens`; HF files always have it, hand-written ones may not.
      this.tok = new Tokenizer({ added_tokens: [], ...parsed.data }, cfg.data);
    } catch (err) {
      throw new TokenizerError(`${source}: unsupported tokenizer: ${(err as Error).message}`, { cause: err });
    }
    this.vocabSize = this.tok.get_vocab(true).size;
    const padName = typeof cfg.data.pad_token === 'string' ? cfg.data.pad_token : cfg.data.pad_token?.content;
    this.padTokenId =
      options.padTokenId ??
      parsed.data.padding?.pad_id ??
      (padName !== undefined ? this.tok.token_to_id(padName) : undefined) ??
      this.tok.token_to_id('[PAD]') ??
      0;
    this.unkId = this.tok.token_to_id('[UNK]') ?? this.tok.token_to_id('<unk>') ?? 0;
    this.numSpecialTokens = this.addSpecial([]).length;
    this.hash = bytesToHex(
      sha256
        .create()
        .update(utf8ToBytes(options.rawText ?? JSON.stringify(tokenizerJson)))
        .update(utf8ToBytes('\0'))
        .update(utf8ToBytes(JSON.stringify(tokenizerConfig ?? {})))
        .digest(),
    ).slice(0, 16);
  }

  private addSpecial(tokens: string[]): string[] {
    const pp = this.tok.post_processor;
    return pp ? pp(tokens, null, true).tokens : tokens;
  }

  private toId(token: string): number {
    return this.tok.token_to_id(token) ?? this.unkId;
  }

  /** Token ids of one text with special tokens, untruncated. */
  encodeOne(text: string): number[] {
    return this.addSpecial(this.tok.tokenize(text, { add_special_tokens: false })).map((t) => this.toId(t));
  }

  encode(texts: readonly string[], maxLength: number): EncodedText {
    if (!Number.isInteger(maxLength) || maxLength < this.numSpecialTokens + 1) {
      throw new ValueError(`maxLength must be an integer ≥ ${this.numSpecialTokens + 1}, got ${maxLength}`);
    }
    const budget = maxLength - this.numSpecialTokens;
    const inputIds = new Int32Array(texts.length * maxLength).fill(this.padTokenId);
    const attentionMask = new Int32Array(texts.length * maxLength);
    texts.forEach((text, row) => {
      if (typeof text !== 'string') throw new ValueError(`texts[${row}] is not a string`);
      const body = this.tok.tokenize(text, { add_special_tokens: false }).slice(0, budget);
      const ids = this.addSpecial(body).map((t) => this.toId(t));
      const base = row * maxLength;
      for (let i = 0; i < ids.length; i++) {
        inputIds[base + i] = ids[i] as number;
        attentionMask[base + i] = 1;
      }
    });
    return { inputIds, attentionMask, batchSize: texts.length, seqLength: maxLength };
  }

  tokenLengths(texts: readonly string[]): number[] {
    return texts.map((t) => this.tok.tokenize(t, { add_special_tokens: false }).length + this.numSpecialTokens);
  }

  /** Decode ids back to text (special tokens dropped), for debugging and docs. */
  decode(ids: readonly number[]): string {
    return ids.length === 0 ? '' : this.tok.decode([...ids], { skip_special_tokens: true });
  }

  fingerprint(): string {
    return `hf-tokenizer:${this.hash}:pad=${this.padTokenId}:trunc=right:padside=right`;
  }

  /** Encode and build tensors in one go. The caller owns the returned tensors. */
  tokenize(texts: readonly string[], maxLength: number): TextInput {
    return toTensors(this.encode(texts, maxLength));
  }
}

/** int32 [batch, seqLength] tensors from an `EncodedText`. The caller owns (and disposes) them. */
export function toTensors(encoded: EncodedText): TextInput {
  const shape: [number, number] = [encoded.batchSize, encoded.seqLength];
  return {
    inputIds: tf.tensor2d(encoded.inputIds, shape, 'int32'),
    attentionMask: tf.tensor2d(encoded.attentionMask, shape, 'int32'),
  };
}

/**
 * A tokenizer from the contents of `tokenizer.json` (text as fetched, or the parsed object) and optionally
 * `tokenizer_config.json`. `source` names them in errors.
 */
export function tokenizerFromJson(
  tokenizerJson: string | object,
  tokenizerConfig?: string | object,
  options: TokenizerLoadOptions & { source?: string } = {},
): HFTokenizer {
  const { source = 'tokenizer.json', ...rest } = options;
  const parse = (value: string | object | undefined, what: string): unknown => {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value) as unknown;
    } catch (err) {
      throw new TokenizerError(`${what}: invalid JSON: ${(err as Error).message}`, { cause: err });
    }
  };
  const json = parse(tokenizerJson, source);
  const config = parse(tokenizerConfig, `${source} (tokenizer_config.json)`);
  return new HFTokenizer(json, config, source, { ...rest, rawText: typeof tokenizerJson === 'string' ? tokenizerJson : undefined });
}
