"""LightningDataModules: where a manifest (`kemotion.data`) meets a cropper and its cache (`kemotion.preprocess`)."""
