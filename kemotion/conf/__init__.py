"""kemotion's Hydra configs, shipped inside the package (found as `pkg://kemotion.conf`, see `kemotion.core.config`)."""
