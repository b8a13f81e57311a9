"""Outside models: a user's Keras, TFLite or ONNX emotion model, scored under masks beside maskfer's.

  card.py      the model card (TOML): what the model takes and gives, checked against the model itself
  adapters.py  one adapter per format behind one interface (`open_model`): a batch in, its outputs out
  model.py     `OutsideModel`: 48x48 faces -> the card's input contract -> the seven emotions' probabilities
  score.py     scoring outside models on a run's conditions, the card guard, the run-folder record
"""
