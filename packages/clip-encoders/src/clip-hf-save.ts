import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, serializeSafetensors, type CLIPModel, type WritableTensor } from '@clip-ts/core';
import { CLIPTextModel } from './clip-text.js';
import { CLIPVisionModel } from './clip-vision.js';
import { CLIP_MEAN, CLIP_STD, type ImageProcessorOptions } from './image-processor.js';

/**
 * Writing a CLIPModel in Hugging Face's `CLIPModel` layout (browser-safe: objects and bytes). The state
 * dict names are already HF's, so only the config and the dtype need care. Directories are
 * ./clip-hf-save-dir.ts (`saveHFCLIPModel` in `@clip-ts/encoders/node`).
 */

/** Dtypes a CLIP checkpoint can be written in (HF's `torch_dtype` names in HF_TORCH_DTYPE). */
export type HFCLIPSaveDtype = 'F32' | 'F16' | 'BF16';
const HF_TORCH_DTYPE: Record<HFCLIPSaveDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/**
 * True when `model` is an HF CLIP: CLIPVisionModel + CLIPTextModel towers and HF's bias-free projections.
 * Only such a model has an HF class to load it (transformers' CLIPModel); anything else stays `clip-ts`.
 */
export function isHFCLIPModel(model: CLIPModel): boolean {
  return (
    model.imageEncoder instanceof CLIPVisionModel &&
    model.textEncoder instanceof CLIPTextModel &&
    model.visualProjection.kind === 'linear-no-bias' &&
    model.textProjection.kind === 'linear-no-bias' &&
    // HF's CLIPModel has no logit_bias: a SigLIP-trained model saved there would silently lose it.
    model.lossType === 'clip'
  );
}

function requireHFCLIP(model: CLIPModel, what: string): void {
  if (!isHFCLIPModel(model)) {
    throw new CheckpointError(
      `${what}: not an HF CLIP (needs CLIPVisionModel + CLIPTextModel towers and 'linear-no-bias' heads, got ` +
        `${String(model.imageEncoder.getConfig().model_type)} + ${String(model.textEncoder.getConfig().model_type)}, ` +
        `heads '${model.visualProjection.kind}'/'${model.textProjection.kind}'); save it with saveCLIPModel (model_type clip-ts)`,
    );
  }
}

/** JSON with every object's keys sorted, as transformers' `to_json_string` writes config.json. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value as Record<string, unknown>)
      .sort()
      .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
  );
}

/**
 * The HF `CLIPConfig` of `model` (config.json of a CLIPModel repo): `model_type: clip`, the towers' full
 * configs under `text_config` / `vision_config` (as transformers writes them, each with `projection_dim`),
 * `projection_dim`, `logit_scale_init_value` (the init value; the trained scale is the `logit_scale`
 * weight), `architectures: ["CLIPModel"]` and `torch_dtype`. Keys sorted like transformers'. Non-CLIP
 * models → CheckpointError.
 */
export function hfCLIPConfig(model: CLIPModel, options: { dtype?: HFCLIPSaveDtype } = {}): Record<string, unknown> {
  requireHFCLIP(model, 'hfCLIPConfig');
  const own = model.getConfig();
  const projection_dim = model.projectionDim;
  return sortKeys({
    architectures: ['CLIPModel'],
    initializer_factor: 1.0,
    logit_scale_init_value: own.logit_scale_init_value,
    model_type: 'clip',
    projection_dim,
    text_config: { ...model.textEncoder.getConfig(), model_type: 'clip_text_model', projection_dim },
    vision_config: { ...model.imageEncoder.getConfig(), model_type: 'clip_vision_model', projection_dim },
    torch_dtype: HF_TORCH_DTYPE[options.dtype ?? 'F32'],
  }) as Record<string, unknown>;
}

export interface HFCLIPBytesOptions {
  /**
   * Stored dtype. Default F32: the weights live (and train) in float32, so F32 loses nothing; F16 / BF16
   * halve the file and round to nearest even (an F16 checkpoint loaded and saved as F16 is bit-identical).
   */
  dtype?: HFCLIPSaveDtype;
  /** Extra `__metadata__` entries of model.safetensors (`format: pt` is always written, as HF does). */
  metadata?: Record<string, string>;
}

/**
 * An HF CLIPModel checkpoint as text + bytes: config.json and model.safetensors with exactly HF's keys and
 * shapes (`logit_scale` 0-d; no `text_model.embeddings.position_ids`, which transformers ≥ 4.31 does not
 * store either). Nothing is written anywhere; the model keeps ownership of its weights.
 */
export async function hfCLIPToBytes(model: CLIPModel, options: HFCLIPBytesOptions = {}): Promise<{ config: string; weights: Uint8Array }> {
  requireHFCLIP(model, 'hfCLIPToBytes');
  const dtype = options.dtype ?? 'F32';
  const state = model.stateDict();
  const tensors = new Map<string, WritableTensor>();
  try {
    for (const [name, t] of state) {
      if (t.dtype !== 'float32') throw new CheckpointError(`hfCLIPToBytes: '${name}' has dtype ${t.dtype}, expected float32`);
      tensors.set(name, { dtype, shape: [...t.shape], data: (await t.data()) as Float32Array });
    }
  } finally {
    tf.dispose([...state.values()]);
  }
  const weights = serializeSafetensors(tensors, { ...options.metadata, format: 'pt' });
  return { config: `${JSON.stringify(hfCLIPConfig(model, { dtype }), null, 2)}\n`, weights };
}

/** HF `PILImageResampling` codes by our filter names. */
const RESAMPLE_CODE = { nearest: 0, lanczos: 1, bilinear: 2, bicubic: 3, box: 4, hamming: 5 } as const;

/**
 * The `preprocessor_config.json` of HF's CLIPImageProcessor for these options: resize the shortest edge
 * (default: the crop size), centre-crop to height × width, rescale, normalise. Options without a shortest
 * edge (a plain resize) are written as `size: {height, width}` without the crop, which HF also reads.
 */
export function clipPreprocessorConfigFor(options: Readonly<ImageProcessorOptions>): Record<string, unknown> {
  const height = options.height ?? 224;
  const width = options.width ?? 224;
  const crop = options.shortestEdge !== undefined;
  return sortKeys({
    crop_size: { height, width },
    do_center_crop: crop,
    do_convert_rgb: true,
    do_normalize: options.doNormalize ?? true,
    do_rescale: options.doRescale ?? true,
    do_resize: options.doResize ?? true,
    image_mean: [...(options.mean ?? CLIP_MEAN)],
    image_processor_type: 'CLIPImageProcessor',
    image_std: [...(options.std ?? CLIP_STD)],
    processor_class: 'CLIPProcessor',
    resample: RESAMPLE_CODE[options.resample ?? 'bilinear'],
    rescale_factor: options.rescaleFactor ?? 1 / 255,
    size: crop ? { shortest_edge: options.shortestEdge } : { height, width },
  }) as Record<string, unknown>;
}
