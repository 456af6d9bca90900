export * from './teacher.js';
export * from './task.js';
