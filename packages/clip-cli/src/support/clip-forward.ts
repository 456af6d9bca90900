import * as tf from '@tensorflow/tfjs-core';
import { l2Normalize, tensorToWritable, type CLIPModel, type WritableTensor } from '@clip-ts/core';
import type { CLIPTextModel, CLIPVisionModel } from '@clip-ts/encoders';

/**
 * Everything `clip forward` writes for an HF CLIPModel, under the names of the reference outputs in the
 * fixtures' io.safetensors (shared/fixtures/README.md): HF's CLIPModel output fields with the towers'
 * outputs prefixed `text_` / `vision_`. `text_embeds` / `image_embeds` are the projections
 * (= get_text_features / get_image_features); HF's forward returns them L2-normalised, which are written
 * too, as `*_embeds_normalized`. The caller keeps ownership of the inputs; nothing is left allocated.
 */
export function clipForwardOutputs(
  model: CLIPModel,
  pixels: tf.Tensor4D,
  text: { inputIds: tf.Tensor2D; attentionMask: tf.Tensor2D },
): Record<string, WritableTensor> {
  // The towers are CLIPVisionModel / CLIPTextModel (loadHFCLIPModel builds nothing else), whose forward
  // also returns the last hidden states.
  const vision = model.imageEncoder as CLIPVisionModel;
  const textTower = model.textEncoder as CLIPTextModel;
  const out = tf.tidy(() => {
    const v = vision.forward(pixels);
    const t = textTower.forward(text);
    const imageEmbeds = model.visualProjection.apply(v.poolerOutput);
    const textEmbeds = model.textProjection.apply(t.poolerOutput);
    // HF's CLIPModel.forward: exp(logit_scale) without open_clip's clamp at 100.
    const scale = tf.exp(tf.reshape(model.logitScale, []));
    const logitsPerText = tf.mul(tf.matMul(l2Normalize(textEmbeds), l2Normalize(imageEmbeds), false, true), scale);
    return {
      text_embeds: textEmbeds,
      image_embeds: imageEmbeds,
      text_embeds_normalized: l2Normalize(textEmbeds),
      image_embeds_normalized: l2Normalize(imageEmbeds),
      logits_per_text: logitsPerText,
      logits_per_image: tf.transpose(logitsPerText),
      text_last_hidden_state: t.lastHiddenState,
      text_pooler_output: t.poolerOutput,
      vision_last_hidden_state: v.lastHiddenState,
      vision_pooler_output: v.poolerOutput,
    };
  });
  try {
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, tensorToWritable(t, 'F32')]));
  } finally {
    tf.dispose(Object.values(out));
  }
}
