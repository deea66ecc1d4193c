"""Using a trained pipeline on new photos, folders and video: the `EmotionPipeline` API, its sources and writers,
and the onnxruntime backends of an exported pipeline (`kemotion.predict`, `kemotion.export` are the commands)."""
