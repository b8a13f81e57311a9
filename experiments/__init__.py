"""Experiments stage: the models, their training, their evaluation, and their deployment.

  model/       the network architectures, the test-time views inside a saved model, loading and predicting
  training/    the recipe (configs), the tf.data pipeline, precise BatchNorm, masked training from the
               clean model, training precision, `train_model`
  evaluation/  scoring (metrics, every model on every condition), cross-dataset test sets, occlusion maps,
               adding test sets to a finished run
  deploy/      `predict` (faces in photos and videos) and `export` (TensorFlow Lite)
  outside/     outside models (Keras, TFLite, ONNX) read through model cards and scored under masks
  studies/     a run over seeds and models, on this machine or Ray

At this level: the run's stages (`pipeline.py`) and its CLI (`run.py`), the options they share (`options.py`),
its configuration (`config.py`), the vocabulary of variants and test conditions (`conditions.py`), the run
folder's files (`runfolder.py`, no TensorFlow), what makes a finished model reusable (`provenance.py`) and the
report stage run as its own command (`reporting.py`). `python -m experiments.run|study|evaluate|score|predict|
export` are the CLIs.
Room `__init__` files import nothing, so reading a TensorFlow-free module never loads TensorFlow;
this one only checks that `datasets` is maskfer's (`masking.guard`).
"""
from masking.guard import require_maskfer_datasets

require_maskfer_datasets()
