import { z } from 'zod';
import { CLIPModel, ConfigError, formatZodIssues, ProjectionHead, type TensorData } from '@clip-ts/core';
import { parseCLIPTextConfig, CLIPTextModel, type CLIPTextConfig } from './clip-text.js';
import { parseCLIPVisionConfig, CLIPVisionModel, type CLIPVisionConfig } from './clip-vision.js';

/**
 * Hugging Face `CLIPModel` checkpoints (config.json with `model_type: clip`) as a clip-ts CLIPModel: CLIPVisionModel / CLIPTextModel towers, HF's
 * bias-free projections (ProjectionHead kind 'linear-no-bias') and the stored logit_scale. HF's key names
 * are CLIPModel's own (`vision_model.*`, `text_model.*`, `visual_projection.weight`,
 * `text_projection.weight`, `logit_scale`), so the weights load as they are.
 */

const positiveInt = z.number().int().positive();
const towerConfig = z.looseObject({});

/** HF CLIPConfig (defaults = HF's). `*_config_dict` are pre-4.x spellings that HF lets override `*_config`. */
export const HFCLIPConfigSchema = z.looseObject({
  model_type: z.literal('clip'),
  projection_dim: positiveInt.default(512),
  logit_scale_init_value: z.number().finite().default(2.6592),
  text_config: towerConfig.nullish(),
  vision_config: towerConfig.nullish(),
  text_config_dict: towerConfig.nullish(),
  vision_config_dict: towerConfig.nullish(),
});

export interface HFCLIPConfig {
  projectionDim: number;
  logitScaleInit: number;
  text: CLIPTextConfig;
  vision: CLIPVisionConfig;
}

/** Validate an HF CLIPConfig object; errors are ConfigErrors naming `source` and the key. */
export function parseHFCLIPConfig(raw: unknown, source = 'CLIP config'): HFCLIPConfig {
  const r = HFCLIPConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${source}: not an HF CLIPModel config:\n${formatZodIssues(r.error.issues)}`);
  const c = r.data;
  // Older configs omit the towers' model_type; the nesting says what they are.
  const text = parseCLIPTextConfig({ ...c.text_config, ...c.text_config_dict, model_type: 'clip_text_model' }, `${source}: text_config`);
  const vision = parseCLIPVisionConfig({ ...c.vision_config, ...c.vision_config_dict, model_type: 'clip_vision_model' }, `${source}: vision_config`);
  return { projectionDim: c.projection_dim, logitScaleInit: c.logit_scale_init_value, text, vision };
}

export interface LoadHFCLIPOptions {
  /** Seed for dropout (every weight comes from the checkpoint). */
  seed?: number;
}

/**
 * Build a CLIPModel from a parsed HF CLIPConfig and the checkpoint's tensors (keys as HF stores them).
 * Missing weights (all listed per part) or shape mismatches → CheckpointError naming `source`.
 * logit_scale is the stored value, not the config's init value. The caller owns (and disposes) the model.
 */
export function buildHFCLIPModel(
  config: HFCLIPConfig,
  tensors: ReadonlyMap<string, TensorData>,
  source: string,
  options: LoadHFCLIPOptions = {},
): CLIPModel {
  const towerOptions = { seed: options.seed, initialize: false };
  const imageEncoder = new CLIPVisionModel(config.vision, towerOptions);
  const textEncoder = new CLIPTextModel(config.text, { ...towerOptions, seed: (options.seed ?? 0) + 1 });
  const head = (inputDim: number): ProjectionHead =>
    new ProjectionHead({ inputDim, projectionDim: config.projectionDim, kind: 'linear-no-bias' });
  const visualProjection = head(config.vision.hidden_size);
  const textProjection = head(config.text.hidden_size);
  let model: CLIPModel;
  try {
    model = new CLIPModel({ imageEncoder, textEncoder, visualProjection, textProjection, logitScaleInit: config.logitScaleInit });
  } catch (err) {
    for (const part of [imageEncoder, textEncoder, visualProjection, textProjection]) part.dispose();
    throw err;
  }
  try {
    model.loadStateDict(tensors, source);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** position_ids are int64 buffers some checkpoints still carry, not weights. */
export const isHFCLIPWeight = (key: string): boolean => !key.endsWith('position_ids');
