export { buildProgram, runCli } from './cli.js';
export type { CliIO } from './cli.js';
// CLI commands as functions (cli helper): eval / zeroshot / embed / demo and their shared helpers.
export { runEval, formatEval } from './commands/eval.js';
export type { EvalOptions, EvalResult } from './commands/eval.js';
export { runZeroshot, formatZeroshot, REFERENCE_TEMPLATES } from './commands/zeroshot.js';
export type { ZeroshotOptions, ZeroshotResult } from './commands/zeroshot.js';
export { runEmbed } from './commands/embed.js';
export type { EmbedOptions, EmbedResult } from './commands/embed.js';
export { runDemo, formatDemo } from './commands/demo.js';
export type { DemoOptions, DemoResult, DemoZeroShot } from './commands/demo.js';
export { saveCheckpointAssets, loadCheckpoint, DEFAULT_MAX_LENGTH } from './cli-support/checkpoint.js';
export type { CheckpointAssets, LoadedCheckpoint } from './cli-support/checkpoint.js';
export { bundledTokenizerFile } from './cli-support/assets.js';
export { embedTexts, embedPixels, embedImageFiles } from './cli-support/embeddings.js';
export type { EmbeddingMatrix } from './cli-support/embeddings.js';
export { embedClassificationSet, scoreTemplates, restrictClasses } from './cli-support/zero-shot-eval.js';
export type { LabelledEmbeddings, TemplateScore, ZeroShotReport } from './cli-support/zero-shot-eval.js';
export { markdownTable, pct } from './cli-support/format.js';
export { DEMO_TEMPLATES, FULL_DEMO, QUICK_DEMO, demoExperimentConfig } from './cli-support/demo-config.js';
export type { DemoSettings } from './cli-support/demo-config.js';
export { DEMO_SHAPES } from './cli-support/datasets.js';
// Training engine (trainer helper): optimizer, trainer loop, callbacks, feature cache, config, experiments.
export * from './optim/index.js';
export * from './trainer/index.js';
export * from './callbacks/index.js';
export * from './cache/index.js';
export * from './config/index.js';
export * from './experiment/index.js';
