import * as tf from '@tensorflow/tfjs-core';
import {
  ClipError,
  CLIPModel,
  ConfigError,
  createImageEncoder,
  createTextEncoder,
  Rng,
  type EncoderConfig,
  type ImageEncoder,
  type NamedVariable,
  type TargetMode,
  type TextEncoder,
} from '@clip-ts/core';
import { loadEncoderFromDir } from '@clip-ts/encoders/node';
import type { ExperimentConfig, PretrainedModelConfig, TowerFreeze, TowerSpec, TowersModelConfig } from '../config/schema.js';
import type { EvalOutputs, TrainTask } from '../trainer/types.js';
import type { CaptionBatch } from '@clip-ts/data';
import { loadModelDir, pretrainedDir } from './pretrained.js';
import { batchPositives } from '../targets.js';
import { chunkedLossAndGrads } from '../step/chunked-step.js';
import { clipChunkedSpec } from '../step/clip-step.js';

async function buildTower(kind: 'image' | 'text', spec: TowerSpec, seed: number): Promise<ImageEncoder | TextEncoder> {
  const where = kind === 'image' ? 'model.vision' : 'model.text';
  const tower = await buildTowerWeights(kind, spec, seed, where);
  if (spec.freezeBnStats) {
    const freeze = (tower as unknown as { freezeBnStats?: (frozen: boolean) => void }).freezeBnStats;
    if (typeof freeze !== 'function') {
      tower.dispose();
      throw new ConfigError(`${where}.freezeBnStats: this tower (${tower.getConfig().model_type}) has no BatchNorm statistics to freeze`);
    }
    freeze.call(tower, true);
  }
  return tower;
}

async function buildTowerWeights(kind: 'image' | 'text', spec: TowerSpec, seed: number, where: string): Promise<ImageEncoder | TextEncoder> {
  if ('pretrained' in spec) {
    const loaded = await loadEncoderFromDir(spec.pretrained, { seed });
    if (loaded.kind !== kind) {
      loaded.encoder.dispose();
      throw new ConfigError(`${where}.pretrained: ${spec.pretrained} holds a ${loaded.kind} tower, expected an ${kind} tower`);
    }
    return loaded.encoder;
  }
  try {
    return kind === 'image'
      ? createImageEncoder(spec.config as EncoderConfig, { seed })
      : createTextEncoder(spec.config as EncoderConfig, { seed });
  } catch (err) {
    throw new ConfigError(`${where}.config: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Build the CLIP model the config describes, seeded: a whole pretrained CLIP (model.pretrained), or towers
 * (pretrained or from scratch) with fresh heads. The caller owns the model.
 */
export async function buildModel(config: ExperimentConfig): Promise<CLIPModel> {
  if ('pretrained' in config.model) return loadPretrainedCLIP(config.model, config);
  return buildFromTowers(config.model, config);
}

/** model.pretrained: every weight (towers, heads, logit scale) comes from the checkpoint; dropout is seeded. */
async function loadPretrainedCLIP(spec: PretrainedModelConfig, config: ExperimentConfig): Promise<CLIPModel> {
  let model: CLIPModel;
  try {
    model = await loadModelDir(await pretrainedDir(spec.pretrained), { seed: config.seed });
  } catch (err) {
    if (err instanceof ClipError) throw err; // already names the file and key
    throw new ConfigError(`model.pretrained: ${spec.pretrained}: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (config.data.imageSize !== undefined) checkImageSize(model.imageEncoder, config.data.imageSize);
    checkLossType(model, config.loss, 'model.pretrained');
    return model;
  } catch (err) {
    model.dispose();
    throw err;
  }
}

async function buildFromTowers(spec: TowersModelConfig, config: ExperimentConfig): Promise<CLIPModel> {
  const rng = new Rng(config.seed);
  const visionSeed = rng.nextSeed();
  const textSeed = rng.nextSeed();
  const headSeed = rng.nextSeed();
  const imageEncoder = (await buildTower('image', spec.vision, visionSeed)) as ImageEncoder;
  let textEncoder: TextEncoder | undefined;
  try {
    textEncoder = (await buildTower('text', spec.text, textSeed)) as TextEncoder;
    checkImageSize(imageEncoder, config.data.imageSize ?? 224);
    return new CLIPModel({
      imageEncoder,
      textEncoder,
      projectionDim: spec.projectionDim,
      head: spec.head,
      dropout: spec.dropout,
      loss: config.loss,
      seed: headSeed,
    });
  } catch (err) {
    imageEncoder.dispose();
    textEncoder?.dispose();
    throw err;
  }
}

/**
 * model.vision.patchDropout on the built or resumed model's image tower (a training option, not in the
 * tower's saved config, so a resumed run takes it from the experiment config again).
 */
export function applyPatchDropout(model: CLIPModel, spec: ExperimentConfig['model']): void {
  if (!('vision' in spec) || spec.vision.patchDropout === undefined) return;
  const tower = model.imageEncoder as ImageEncoder & { patchDropout?: unknown };
  if (typeof tower.patchDropout !== 'number') {
    throw new ConfigError(`model.vision.patchDropout: the '${String(tower.getConfig().model_type)}' image tower has no patch dropout (ViT and CLIP vision towers do)`);
  }
  (tower as { patchDropout: number }).patchDropout = spec.vision.patchDropout;
}

/**
 * The loss is part of the model (a SigLIP model carries logit_bias): a pretrained or resumed checkpoint
 * must have been made for the configured loss.
 */
export function checkLossType(model: CLIPModel, loss: ExperimentConfig['loss'], where: string): void {
  if (model.lossType !== loss) {
    throw new ConfigError(`loss is '${loss}' but ${where} is a '${model.lossType}' model (its config.json loss_type); set loss: ${model.lossType}`);
  }
}

/** The vision tower's own image size (when its config states one) must be what the data pipeline makes. */
export function checkImageSize(encoder: ImageEncoder, imageSize: number): void {
  const size = encoder.getConfig().image_size;
  const sizes = typeof size === 'number' ? [size, size] : Array.isArray(size) ? size : undefined;
  if (sizes && (sizes[0] !== imageSize || sizes[1] !== imageSize)) {
    throw new ConfigError(`data.imageSize is ${imageSize} but the vision tower takes ${sizes.join('×')} images; set data.imageSize: ${sizes[0]}`);
  }
}

export interface FreezeResult {
  visionFrozen: boolean;
  textFrozen: boolean;
  /** Weights that train (checkpoint names), towers first. */
  trainable: NamedVariable[];
}

function freezeTower(encoder: ImageEncoder | TextEncoder, mode: TowerFreeze, where: string): void {
  if (mode === 'none') encoder.unfreeze();
  else if (mode === 'all') encoder.freeze();
  else {
    const partial = (encoder as unknown as { freezeAllButLast?: (n: number) => void }).freezeAllButLast;
    if (typeof partial !== 'function') {
      throw new ConfigError(`${where}: this tower (${encoder.getConfig().model_type}) cannot train only its last blocks; use 'none' or 'all'`);
    }
    partial.call(encoder, mode);
  }
}

/**
 * Apply `model.freeze`: 'none' trains everything, 'towers' only the heads and the scale, and per tower a
 * number N trains its last N blocks (plus its final norm) with everything before them frozen.
 */
export function applyFreeze(model: CLIPModel, freeze: ExperimentConfig['model']['freeze']): FreezeResult {
  const spec = freeze === 'none' ? { vision: 'none' as const, text: 'none' as const } : freeze === 'towers' ? { vision: 'all' as const, text: 'all' as const } : freeze;
  freezeTower(model.imageEncoder, spec.vision, 'model.freeze.vision');
  freezeTower(model.textEncoder, spec.text, 'model.freeze.text');
  return {
    visionFrozen: model.imageEncoder.frozen,
    textFrozen: model.textEncoder.frozen,
    trainable: model.namedVariables().filter((nv) => nv.variable.trainable),
  };
}

/** Both towers' pooled features of a caption batch; a frozen tower runs in inference mode. New tensors, the caller's. */
function towerFeatures(model: CLIPModel, frozen: { vision: boolean; text: boolean }, b: CaptionBatch, training: boolean): { img: tf.Tensor2D; txt: tf.Tensor2D } {
  return {
    img: model.imageEncoder.encode(b.pixelValues, { training: training && !frozen.vision }),
    txt: model.textEncoder.encode({ inputIds: b.inputIds, attentionMask: b.attentionMask }, { training: training && !frozen.text }),
  };
}

/**
 * The training-mode embeddings of a caption batch (towers as in clipModelTask's training loss, heads in
 * training mode): what the distillation term compares with the teacher's. New tensors, the caller's.
 */
export function trainingEmbeddings(model: CLIPModel, frozen: { vision: boolean; text: boolean }, b: CaptionBatch): { img: tf.Tensor2D; txt: tf.Tensor2D } {
  const { img, txt } = towerFeatures(model, frozen, b, true);
  return { img: model.projectImageFeatures(img, { training: true }), txt: model.projectTextFeatures(txt, { training: true }) };
}

/**
 * The plain training task: towers then heads. A frozen tower runs in inference mode (no dropout), like
 * the feature cache, so cached and uncached frozen training follow the same trajectory. With `microBatch`
 * below a batch's size, its gradients come from the exact chunked step (step/chunked-step.ts): the same
 * loss, with the towers' activations held for `microBatch` rows at a time.
 */
export function clipModelTask(
  model: CLIPModel,
  frozen: { vision: boolean; text: boolean },
  targets: TargetMode = 'auto',
  options: { microBatch?: number | undefined } = {},
): TrainTask<CaptionBatch> {
  const { microBatch } = options;
  const spec = microBatch === undefined ? undefined : clipChunkedSpec(model, frozen, targets);
  const features = (b: CaptionBatch, training: boolean) => towerFeatures(model, frozen, b, training);
  const trainLoss = (b: CaptionBatch): tf.Scalar =>
    tf.tidy(() => {
      const { img, txt } = features(b, true);
      const positives = batchPositives(targets, b);
      return model.lossFromFeatures(img, txt, { training: true, ...(positives ? { positives } : {}) });
    });
  return {
    trainLoss,
    ...(spec && microBatch !== undefined
      ? {
          lossAndGrads: (b: CaptionBatch, variables: readonly tf.Variable[]) =>
            b.pixelValues.shape[0] > microBatch ? chunkedLossAndGrads(spec, b, variables, microBatch) : tf.variableGrads(() => trainLoss(b), [...variables]),
        }
      : {}),
    evalOutputs: (b): EvalOutputs =>
      tf.tidy(() => {
        const { img, txt } = features(b, false);
        const positives = batchPositives(targets, b);
        return {
          loss: model.lossFromFeatures(img, txt, positives ? { positives } : {}),
          imageEmbeds: model.projectImageFeatures(img),
          textEmbeds: model.projectTextFeatures(txt),
        };
      }),
    batchSize: (b) => b.pixelValues.shape[0],
    disposeBatch: (b) => tf.dispose([b.pixelValues, b.inputIds, b.attentionMask]),
  };
}
