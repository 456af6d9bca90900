import * as tf from '@tensorflow/tfjs-core';

/**
 * Conv2DBackpropFilter for tfjs-backend-wasm, which (4.22) has none: without it no convolution's weights
 * (the ResNet tower's) can train on wasm. The filter gradient is one matrix product,
 *   dW[kh·kw·ci, co] = Σ_rows col[row, kh·kw·ci] · dy[row, co],   row = (n, oh, ow),
 * where `col` (im2col) holds, for each output position, the input patch it saw (zeros in the padding). The
 * patches are gathered in JS and the product runs on the backend's own BatchMatMul (XNNPACK on wasm), a
 * few images at a time so the patch matrix stays small.
 */

/** Upper bound on the im2col chunk, in floats (16 MB); tests lower it to exercise the chunked sum. */
export const im2colLimits = { maxFloats: 4 * 1024 * 1024 };

/** What the kernel needs of the backend: host reads, new tensors from values, and freeing them. */
interface Backend {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

/**
 * Fill `col` [count·outH·outW, kh·kw·inC] with the patches of images [first, first + count) of `x`
 * (NHWC), columns in the filter's (kh, kw, ci) order; exported for tests.
 */
export function im2col(x: ArrayLike<number>, info: tf.backend_util.Conv2DInfo, first: number, count: number, col: Float32Array): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = info;
  const { top, left } = info.padInfo;
  const K = KH * KW * C;
  col.fill(0, 0, count * OH * OW * K);
  let row = 0;
  for (let n = first; n < first + count; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, row++) {
        const base = row * K;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * SH - top + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * SW - left + kw;
            if (iw < 0 || iw >= W) continue;
            const src = ((n * H + ih) * W + iw) * C;
            const dst = base + (kh * KW + kw) * C;
            for (let c = 0; c < C; c++) col[dst + c] = x[src + c] as number;
          }
        }
      }
    }
  }
}

function conv2dBackpropFilter({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  if (dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter (clip-ts, wasm): only NHWC is supported');
  const b = backend as unknown as Backend;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize: N, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const perImage = OH * OW;
  const imagesPerChunk = Math.max(1, Math.min(N, Math.floor(im2colLimits.maxFloats / Math.max(1, perImage * K))));
  const xv = b.readSync(x.dataId);
  const dyv = b.readSync(dy.dataId);
  const matMul = tf.getKernel(tf.BatchMatMul, tf.getBackend())?.kernelFunc;
  if (!matMul) throw new Error(`Conv2DBackpropFilter (clip-ts): backend ${tf.getBackend()} has no BatchMatMul`);
  const sum = new Float32Array(K * CO);
  const col = new Float32Array(imagesPerChunk * perImage * K);
  for (let first = 0; first < N; first += imagesPerChunk) {
    const count = Math.min(imagesPerChunk, N - first);
    const rows = count * perImage;
    im2col(xv, info, first, count, col);
    const a = b.makeOutput([1, rows, K], 'float32', undefined, col.subarray(0, rows * K));
    const start = first * perImage * CO;
    const dyRows = dyv instanceof Float32Array ? dyv.subarray(start, start + rows * CO) : Float32Array.from({ length: rows * CO }, (_, i) => dyv[start + i] as number);
    const d = b.makeOutput([1, rows, CO], 'float32', undefined, dyRows);
    const prod = matMul({ inputs: { a, b: d }, backend, attrs: { transposeA: true, transposeB: false } }) as tf.TensorInfo;
    const pv = b.readSync(prod.dataId);
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (pv[i] as number);
    for (const t of [a, d, prod]) b.disposeData(t.dataId);
  }
  return b.makeOutput([...filterShape], 'float32', undefined, sum);
}

/** Register the kernel on wasm unless the installed tfjs-backend-wasm already has one. */
export function registerConv2DBackpropFilterWasm(): void {
  if (tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')) return;
  tf.registerKernel({ kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2dBackpropFilter });
}
