import * as tf from '@tensorflow/tfjs-core';

/**
 * Per-batch retrieval hits, the reference's in-batch protocol: image i's caption is the positive among the
 * batch's B captions. Returns NEW int32 tensors [ks.length] counting rows whose positive ranks within top
 * k, image→text and text→image. Ties count in the positive's favour. No data is read back.
 */
export function inBatchHits(
  imageEmbeds: tf.Tensor2D,
  textEmbeds: tf.Tensor2D,
  ks: readonly number[],
): { imageToText: tf.Tensor1D; textToImage: tf.Tensor1D } {
  return tf.tidy(() => {
    const img = tf.div(imageEmbeds, tf.norm(imageEmbeds, 'euclidean', 1, true));
    const txt = tf.div(textEmbeds, tf.norm(textEmbeds, 'euclidean', 1, true));
    const sims = tf.matMul(img, txt, false, true);
    // The diagonal taken from `sims` itself, so the positive never outranks itself by rounding.
    const diag = tf.sum(tf.mul(sims, tf.eye(sims.shape[0])), 1);
    const count = (better: tf.Tensor) => tf.sum(tf.cast(better, 'int32'), 1);
    // rank = how many candidates score strictly higher than the positive
    const rankI2T = count(tf.greater(sims, tf.expandDims(diag, 1)));
    const rankT2I = count(tf.greater(tf.transpose(sims), tf.expandDims(diag, 1)));
    const hits = (rank: tf.Tensor) => tf.stack(ks.map((k) => tf.sum(tf.cast(tf.less(rank, k), 'int32')))) as tf.Tensor1D;
    return { imageToText: hits(rankI2T), textToImage: hits(rankT2I) };
  });
}
