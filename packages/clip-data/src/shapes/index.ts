export { createShapes, ShapesDataset } from './dataset.js';
export type { Shapes, ShapesSplitOptions } from './dataset.js';
export { SHAPE_COLOURS, SHAPE_KINDS } from './palette.js';
export type { ShapeCombo, ShapeColour, ShapeKind } from './palette.js';
