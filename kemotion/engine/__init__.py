"""How a run runs: the detector stage before it (`detector_stage`), the run itself (`training.train`: data, model
and trainer from the config, fit, test, record), its folder's record (`runs`), a classical cell's fit
(`classical`) and the sweep's cache callback (`sweep`). The entry points call it; it calls the rooms below."""
