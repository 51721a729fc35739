/** Evaluation of zoo models: what other modules (show, the model card, the pre-commit hook) use. */
export { readEvaluations, validateEvalRecord, EVAL_PATH, evalsDir, type Evaluation, type EvaluationRecord } from './record.js'
