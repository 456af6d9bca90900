import * as tf from '@tensorflow/tfjs-core';

/**
 * MaxPoolGrad for tfjs-backend-wasm, replacing its stock kernel, which (4.22) routes the gradient to the
 * wrong inputs once a tensor has more than one image or channel (e.g. [2, 10, 9, 4], pool 3/2 pad 1: off
 * by ~1 against cpu), so a ResNet stem would train on wrong gradients. Semantics are cpu's (and
 * PyTorch's): each output's gradient goes to the first maximum of its window in row-major order; padding
 * never wins. Runs in JS on the tensors' host copies: one pass over the windows.
 */

interface Backend {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): tf.TensorInfo;
}

/** dx (NHWC, zeros outside the maxima) of a max pool with `info`; exported for tests. */
export function maxPoolGradValues(x: ArrayLike<number>, dy: ArrayLike<number>, info: tf.backend_util.Conv2DInfo): Float32Array {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, strideHeight: SH, strideWidth: SW } = info;
  const { effectiveFilterHeight: KH, effectiveFilterWidth: KW, dilationHeight: DH, dilationWidth: DW } = info;
  const { top, left } = info.padInfo;
  const dx = new Float32Array(N * H * W * C);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let at = -1;
          for (let kh = 0; kh < KH; kh += DH) {
            const ih = oh * SH - top + kh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw += DW) {
              const iw = ow * SW - left + kw;
              if (iw < 0 || iw >= W) continue;
              const i = ((n * H + ih) * W + iw) * C + c;
              const v = x[i] as number;
              if (v > best) {
                best = v;
                at = i;
              }
            }
          }
          if (at >= 0) dx[at] = (dx[at] as number) + (dy[((n * OH + oh) * OW + ow) * C + c] as number);
        }
      }
    }
  }
  return dx;
}

function maxPoolGrad({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
    filterSize: [number, number] | number;
    strides: [number, number] | number;
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const b = backend as unknown as Backend;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  return b.makeOutput([...input.shape], 'float32', undefined, maxPoolGradValues(b.readSync(input.dataId), b.readSync(dy.dataId), info));
}

/** Replace wasm's MaxPoolGrad (or add it, if the installed version has none). */
export function registerMaxPoolGradWasm(): void {
  if (tf.getKernel(tf.MaxPoolGrad, 'wasm')) tf.unregisterKernel(tf.MaxPoolGrad, 'wasm');
  tf.registerKernel({ kernelName: tf.MaxPoolGrad, backendName: 'wasm', kernelFunc: maxPoolGrad });
}
