"""Using a trained pipeline on new photos, folders and video: the `EmotionPipeline` API and its result objects
(`results`), `analyze`, its sources and writers, W&B model artifacts, and the onnxruntime backends of an exported
pipeline (`kemotion.predict`, `kemotion.export` are the commands)."""
