"""Preprocessing: croppers turn a dataset image into the classifier's square input; the cache stores them once."""
