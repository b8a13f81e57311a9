"""Experiments stage: the models, their training, their evaluation, and their deployment.

  model/       the network architectures, the test-time views inside a saved model, loading and predicting
  training/    the recipe (configs), the tf.data pipeline, precise BatchNorm, masked training from the
               clean model, training precision, `train_model`
  evaluation/  scoring (metrics, every model on every condition), cross-dataset test sets, occlusion maps,
               adding test sets to a finished run
  deploy/      `predict` (faces in photos and videos) and `export` (TensorFlow Lite)

At this level: the run (`run.py`), its configuration (`config.py`), the vocabulary of variants and test
conditions (`conditions.py`), the run folder's files (`runfolder.py`, no TensorFlow) and what makes a
finished model reusable (`provenance.py`). `python -m experiments.run|evaluate|predict|export` are the CLIs.
Room `__init__` files import nothing, so reading a TensorFlow-free module never loads TensorFlow.
"""
