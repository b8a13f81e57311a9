"""Evaluation: metrics, scoring every model on every test condition, cross-dataset test sets, occlusion maps,
and adding test sets to a finished run."""
