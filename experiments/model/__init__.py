"""The networks: architectures (registry), test-time views inside the saved model, loading and predicting."""
