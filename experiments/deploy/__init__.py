"""Deployment: `predict` (emotions of faces in photos and videos) and `export` (TensorFlow Lite files)."""
