export * from './errors.js';
export * from './events.js';
export * from './frames.js';
export * from './http.js';
export * from './ids.js';
export * from './position.js';
export * from './subjects.js';
export * from './text.js';
