/** Names of the files runExperiment writes at the top of a run directory. */
export const RUN_CONFIG_FILE = 'config.json';
export const RESULTS_FILE = 'results.json';
