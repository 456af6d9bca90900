import * as tf from '@tensorflow/tfjs-core';
import { distillClipLoss, type CLIPModel, type TargetMode } from '@clip-ts/core';
import { batchPositives, type BatchRows } from '../targets.js';
import type { TrainTask } from '../trainer/types.js';
import type { TeacherEmbeddings, TeacherRows } from './teacher.js';

export interface DistillTaskOptions<B> {
  model: CLIPModel;
  teacher: TeacherEmbeddings;
  /** distill.weight: training loss = CLIP loss + weight · distillation term. */
  weight: number;
  targets: TargetMode;
  /** The student's embeddings of a batch in training mode (towers or cached features, then the heads). */
  embed: (batch: B) => { img: tf.Tensor2D; txt: tf.Tensor2D };
}

/**
 * `task` with the distillation term added to its training loss. Validation (evalOutputs) keeps the plain
 * CLIP loss, as open_clip's evaluate does, so val_loss stays comparable with runs without a teacher.
 */
export function distillTask<B extends BatchRows & TeacherRows>(task: TrainTask<B>, o: DistillTaskOptions<B>): TrainTask<B> {
  return {
    ...task,
    trainLoss: (b) =>
      tf.tidy(() => {
        const { img, txt } = o.embed(b);
        const t = o.teacher.rows(b);
        const positives = batchPositives(o.targets, b);
        const { contrastive, distill } = distillClipLoss(img, txt, o.model.logitScale, t.image, t.text, o.teacher.logitScale, positives ? { positives } : {});
        return tf.add(contrastive, tf.mul(distill, o.weight)) as tf.Scalar;
      }),
  };
}
