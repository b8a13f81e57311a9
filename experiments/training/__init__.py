"""Training one variant with the shared recipe: configs, data pipeline, precise BatchNorm, transfer from the
clean model, precision, and `train.train_model`."""
