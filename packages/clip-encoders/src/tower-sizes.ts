import { registerTowerWeightSpec, type ExpectedWeight, type TowerWeightSpec } from '@clip-ts/core';
import { parseDistilBertConfig, type DistilBertConfig } from './distilbert.js';
import { parseResNetConfig, type ResNetConfig } from './resnet.js';
import { parseViTConfig, type ViTConfig } from './vit.js';

/**
 * How each size key of the ViT and DistilBERT configs shows up in the weights (HF names, PyTorch layouts),
 * so CLIPModel.load and loadEncoderFromDir can check an untrusted config.json against the weights file's
 * header before building a tower (see size-guard in @clip-ts/core). One weight per key is enough to pin it.
 */

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

/** Layer `i`'s weight `name` for every layer the config asks for, and layer `n` must not exist. */
function layers(n: number, nameOf: (i: number) => string, shape: number[], keys: string[], layerKey: string): TowerWeightSpec {
  const expected: ExpectedWeight[] = [];
  for (let i = 0; i < n; i++) expected.push({ name: nameOf(i), shape, keys: [layerKey, ...keys] });
  return { expected, absent: [{ name: nameOf(n), key: layerKey, message: `the config says ${n} layer(s) but the weights have more` }] };
}

export function vitWeightSpec(c: ViTConfig): TowerWeightSpec {
  const H = c.hidden_size;
  const [ih, iw] = pair(c.image_size);
  const [ph, pw] = pair(c.patch_size);
  const patches = (ih / ph) * (iw / pw);
  const perLayer = layers(c.num_hidden_layers, (i) => `encoder.layer.${i}.intermediate.dense.weight`, [c.intermediate_size, H], ['intermediate_size', 'hidden_size'], 'num_hidden_layers');
  return {
    expected: [
      { name: 'embeddings.cls_token', shape: [1, 1, H], keys: ['hidden_size'] },
      { name: 'embeddings.patch_embeddings.projection.weight', shape: [H, c.num_channels, ph, pw], keys: ['hidden_size', 'num_channels', 'patch_size'] },
      { name: 'embeddings.position_embeddings', shape: [1, patches + 1, H], keys: ['image_size', 'patch_size'] },
      ...perLayer.expected,
    ],
    absent: perLayer.absent,
  };
}

/**
 * ResNet: the stem conv pins num_channels / embedding_size; each stage's first layer pins its hidden size
 * (and layer_type, through the shape of its last conv); a layer past each stage's depth, or a stage past
 * the last, must not exist.
 */
export function resnetWeightSpec(c: ResNetConfig): TowerWeightSpec {
  const expected: ExpectedWeight[] = [
    { name: 'embedder.embedder.convolution.weight', shape: [c.embedding_size, c.num_channels, 7, 7], keys: ['embedding_size', 'num_channels'] },
  ];
  const absent: NonNullable<TowerWeightSpec['absent']> = [];
  const stage = (s: number): string => `encoder.stages.${s}.layers`;
  c.hidden_sizes.forEach((h, s) => {
    const depth = c.depths[s] as number;
    const last = c.layer_type === 'basic' ? { name: 'layer.1', shape: [h, h, 3, 3] } : { name: 'layer.2', shape: [h, Math.floor(h / 4), 1, 1] };
    for (let j = 0; j < depth; j++) expected.push({ name: `${stage(s)}.${j}.${last.name}.convolution.weight`, shape: last.shape, keys: ['hidden_sizes', 'layer_type', 'depths'] });
    absent.push({ name: `${stage(s)}.${depth}.layer.0.convolution.weight`, key: 'depths', message: `the config says stage ${s} has ${depth} layer(s) but the weights have more` });
  });
  const n = c.hidden_sizes.length;
  absent.push({ name: `${stage(n)}.0.layer.0.convolution.weight`, key: 'hidden_sizes', message: `the config says ${n} stage(s) but the weights have more` });
  return { expected, absent };
}

export function distilBertWeightSpec(c: DistilBertConfig): TowerWeightSpec {
  const D = c.dim;
  const perLayer = layers(c.n_layers, (i) => `transformer.layer.${i}.ffn.lin1.weight`, [c.hidden_dim, D], ['hidden_dim', 'dim'], 'n_layers');
  return {
    expected: [
      { name: 'embeddings.word_embeddings.weight', shape: [c.vocab_size, D], keys: ['vocab_size', 'dim'] },
      { name: 'embeddings.position_embeddings.weight', shape: [c.max_position_embeddings, D], keys: ['max_position_embeddings', 'dim'] },
      ...perLayer.expected,
    ],
    absent: perLayer.absent,
  };
}

registerTowerWeightSpec('vit', (config, source) => vitWeightSpec(parseViTConfig(config, source)));
registerTowerWeightSpec('resnet', (config, source) => resnetWeightSpec(parseResNetConfig(config, source)));
registerTowerWeightSpec('distilbert', (config, source) => distilBertWeightSpec(parseDistilBertConfig(config, source)));
