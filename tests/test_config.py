"""Every config in conf/ composes, and instantiates into the objects its code expects."""

from __future__ import annotations

import re

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from kemotion.core.config import config_file, options, table5_grid, validate
from kemotion.datamodules.classification import ClassificationDataModule
from kemotion.engine import detector_stage
from kemotion.engine.training import train
from kemotion.lit.classifier import EmotionClassifier
from kemotion.prepare import prepare
from tests.conftest import compose_config

EXPERIMENTS = options("experiment")
TABLE5_ROWS = [e for e in EXPERIMENTS if e.split("_")[0] in table5_grid("preprocess")]
BASELINE_CELLS = [e for e in TABLE5_ROWS if e.endswith("_hogsvm")]  # the classical baseline, one per preprocessing
CLASSIFIER_CELLS = [e for e in TABLE5_ROWS if e not in BASELINE_CELLS]  # Table 5 cells
DETECTORS = options("detector")
MODELS = options("model")


def test_the_table5_grid_is_its_configs_and_each_cell_has_an_experiment():
    assert set(table5_grid("preprocess")) <= set(options("preprocess"))
    assert set(table5_grid("model")) <= set(options("model"))
    cells = {f"{preprocess}_{model.replace('kemotionnet', 'kemo')}" for preprocess in table5_grid("preprocess")
             for model in table5_grid("model")}
    assert set(CLASSIFIER_CELLS) == cells


@pytest.mark.parametrize("experiment", CLASSIFIER_CELLS)
def test_experiment_composes_with_its_preprocess_and_model(tmp_path, experiment):
    cfg = compose_config(tmp_path, [f"+experiment={experiment}", "logger=csv"])
    preprocess, model = experiment.split("_", 1)
    assert cfg.hydra.runtime.choices.preprocess == preprocess
    assert cfg.hydra.runtime.choices.model.startswith(model)
    assert cfg.task_name == experiment
    assert cfg.callbacks.model_checkpoint.monitor == "val/acc" and cfg.callbacks.model_checkpoint.mode == "max"
    assert cfg.model.optimizer._target_ == "torch.optim.Adam"  # paper §4.1
    assert cfg.data.augment.random_erasing_p > 0  # paper §4.1


@pytest.mark.parametrize("experiment", BASELINE_CELLS)
def test_each_preprocessing_has_a_baseline_cell(tmp_path, experiment):
    from kemotion.models.hog_svm import HogSvm

    assert {e.removesuffix("_hogsvm") for e in BASELINE_CELLS} == set(table5_grid("preprocess"))
    cfg = compose_config(tmp_path, [f"+experiment={experiment}", "logger=csv", "data.image_size=48"])
    assert cfg.hydra.runtime.choices.preprocess == experiment.removesuffix("_hogsvm") == cfg.cell.preprocess
    model = instantiate(cfg.model)
    assert isinstance(model, HogSvm) and model.image_size == 48 and cfg.cell.model == "hog_svm"


@pytest.mark.parametrize("model", [m for m in MODELS if m != "hog_svm"])
def test_model_configs_instantiate(tmp_path, model):
    cfg = compose_config(tmp_path, [f"model={model}"])
    module = instantiate(cfg.model)
    assert isinstance(module, EmotionClassifier)
    inputs = module.example_input_array  # a tuple for the face + scene models: (faces, scenes)
    assert module(*inputs if isinstance(inputs, tuple) else (inputs,)).shape == (1, 7)


def test_paper_scale_lives_in_the_aihub_config(tmp_path):
    cfg = compose_config(tmp_path, ["data=aihub", "data.source.root=/nowhere", "+experiment=resize_kemo"])
    assert cfg.trainer.max_epochs == 150  # paper §4.1
    assert cfg.data.selection.n_per_class == 7000  # paper Table 1
    assert cfg.data.selection.n_detector == 3500  # paper §3.2
    assert list(cfg.data.selection.split) == [0.8, 0.1, 0.1]  # paper Table 2


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "gpu_bf16", "ddp"])
@pytest.mark.parametrize("logger", ["csv", "none", "wandb"])
def test_trainer_and_logger_configs_compose(tmp_path, trainer, logger):
    cfg = compose_config(tmp_path, [f"trainer={trainer}", f"logger={logger}"])
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    assert cfg.trainer.get("precision") == {"gpu": "16-mixed", "gpu_bf16": "bf16-mixed"}.get(trainer)
    assert cfg.trainer.max_epochs == cfg.data.epochs
    assert set(cfg.get("logger") or {}) == ({"none": set(), "csv": {"csv"}, "wandb": {"wandb"}}[logger])


def test_default_data_instantiates_without_touching_disk(tmp_path):
    cfg = compose_config(tmp_path)
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, ClassificationDataModule)
    assert datamodule.cropper.size == cfg.preprocess.size
    assert not (tmp_path / "data").exists()  # nothing is generated before prepare_data


@pytest.mark.parametrize("experiment", ["face_detector", "detector_table4"])
def test_detector_experiments_fit_the_detector_by_val_map(tmp_path, experiment):
    cfg = compose_config(tmp_path, [f"+experiment={experiment}", "logger=csv"])
    assert cfg.module._target_ == "kemotion.lit.detector.FaceDetector"
    assert cfg.datamodule._target_ == "kemotion.datamodules.detection.DetectionDataModule"
    assert cfg.datamodule.selection == cfg.data.selection  # the classifier's manifest, its detector subset
    assert cfg.callbacks.model_checkpoint.monitor == "val/map" and cfg.callbacks.model_checkpoint.mode == "max"
    assert cfg.trainer.gradient_clip_val == 10.0  # ultralytics' trainer clips at 10
    assert cfg.trainer.max_epochs == cfg.data.detector.epochs
    assert cfg.callbacks.ema._target_ == "kemotion.lit.ema.RampedEMA"
    assert cfg.test_before_fit == (experiment == "detector_table4")


def test_detector_scale_follows_the_dataset(tmp_path):
    aihub = compose_config(tmp_path, ["+experiment=face_detector", "data=aihub", "data.source.root=/nowhere"])
    assert (aihub.datamodule.image_size, aihub.module.net.scale) == (640, "s")
    assert aihub.data.selection.n_detector == 3500  # paper §3.2


@pytest.mark.parametrize("detector", DETECTORS)
def test_detector_configs_instantiate_a_working_module(tmp_path, detector):
    cfg = compose_config(tmp_path, ["+experiment=face_detector", f"detector={detector}"])
    module = instantiate(cfg.module)
    module.eval()
    decoded, _ = module(torch.zeros(1, 3, 64, 64))
    assert decoded.shape[:2] == (1, 5)  # x, y, w, h and one class: face


def test_detector_pretrained_loads_the_given_weights_into_the_module(tmp_path, caplog):
    cfg = compose_config(tmp_path, ["+experiment=face_detector"])
    source = instantiate(cfg.module.net)
    torch.save(source.state_dict(), tmp_path / "faces.pt")
    cfg = compose_config(tmp_path, ["+experiment=face_detector", f"detector.pretrained={tmp_path / 'faces.pt'}"])
    with caplog.at_level("INFO"):
        module = instantiate(cfg.module)
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), module.net.state_dict().values(),
                                                 strict=True))
    assert f"{tmp_path / 'faces.pt'}: loaded {len(source.state_dict())} tensors" in caplog.text


@pytest.mark.parametrize("preprocess", options("preprocess"))
def test_preprocess_configs_instantiate_a_cropper_of_the_paper_size(tmp_path, preprocess):
    (tmp_path / "detector.ckpt").write_bytes(b"weights")
    extra = [f"preprocess.checkpoint={tmp_path / 'detector.ckpt'}"] if preprocess == "yolo" else []
    cfg = compose_config(tmp_path, [f"preprocess={preprocess}", *extra])
    cropper = instantiate(cfg.preprocess)
    assert cropper.name == preprocess and cropper.size == 500  # paper §3.3
    assert instantiate(cfg.data).cropper == cropper


def test_detector_pretrain_wider_reads_the_synthetic_wider_set_or_a_download(tmp_path):
    cfg = compose_config(tmp_path, ["+experiment=detector_pretrain_wider", "logger=csv"])
    assert cfg.datamodule._target_ == "kemotion.datamodules.widerface.WiderDetectionDataModule"
    assert cfg.datamodule.source._target_ == "kemotion.data.synthetic.wider.SyntheticWider"
    assert cfg.callbacks.model_checkpoint.monitor == "val/map"
    real = compose_config(tmp_path, ["+experiment=detector_pretrain_wider", "detector_data=widerface",
                                     "detector_data.source.root=/data/widerface"])
    assert real.datamodule.source == {"_target_": "kemotion.data.widerface.WiderFace", "root": "/data/widerface"}
    assert real.datamodule.image_size == 640  # YOLO-FaceV2's training size


@pytest.mark.parametrize("option", options("detector_data"))
def test_detector_data_options_compose_into_the_face_detector_run(tmp_path, option):
    cfg = compose_config(tmp_path, ["+experiment=face_detector", f"detector_data={option}",
                                    "detector_data.source.root=/data/widerface" if option == "widerface" else "seed=0"])
    assert cfg.datamodule._target_.startswith("kemotion.datamodules.")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("detector", DETECTORS)
def test_onestage_is_the_detector_with_seven_classes_on_the_classification_subset(tmp_path, detector):
    cfg = compose_config(tmp_path, ["+experiment=onestage_emotion", f"detector={detector}", "logger=csv"])
    assert cfg.datamodule._target_ == "kemotion.datamodules.onestage.EmotionBoxDataModule"
    assert cfg.datamodule.selection == cfg.data.selection  # the Table 5 cells' manifest, hence their split
    assert cfg.callbacks.model_checkpoint.monitor == "val/acc"  # best by validation accuracy, as every cell
    assert dict(cfg.cell) == {"preprocess": "onestage", "model": detector, "split": "random", "seed": cfg.seed}
    module = instantiate(cfg.module).eval()
    decoded, _ = module(torch.zeros(1, 3, 64, 64))
    assert decoded.shape[:2] == (1, 4 + 7)  # x, y, w, h and the seven emotions


@pytest.mark.parametrize(("model", "scene", "backgrounds"), [
    ("context_kemo", True, 10), ("context_kemo_scene", True, 0), ("context_kemo_face", False, 0)])
def test_context_experiment_reads_faces_and_scenes(tmp_path, model, scene, backgrounds):
    cfg = compose_config(tmp_path, ["+experiment=context_kemo", f"model={model}", "logger=csv"])
    assert cfg.datamodule._target_ == "kemotion.datamodules.context.ContextDataModule"
    assert cfg.preprocess._target_ == "kemotion.preprocess.yolo.YoloCropper"  # the paper's best crop for the face
    assert dict(cfg.datamodule.scene) == {"size": 500, "keep_aspect": False}  # = conf/preprocess/resize.yaml
    module = instantiate(cfg.model)
    assert (module.net.scene is not None, cfg.datamodule.num_backgrounds) == (scene, backgrounds)
    assert (module.hparams.background_weight > 0) == bool(backgrounds)


def test_context_ablation_is_one_multirun_of_the_three_variants(tmp_path):
    from kemotion.engine.sweep import sweep_jobs

    cfg = compose_config(tmp_path, ["+experiment=context_ablation", "logger=csv"])
    assert cfg.datamodule._target_ == "kemotion.datamodules.context.ContextDataModule"
    jobs = sweep_jobs(cfg)
    assert len(jobs) == 9 and {job[0] for job in jobs} == {
        "model=context_kemo_face", "model=context_kemo_scene", "model=context_kemo"}


@pytest.mark.parametrize(("override", "message"), [
    ("data.epochs=0", "trainer.max_epochs=0 (from ${data.epochs}): epochs to train must be a whole number >= 1"),
    ("data.epochs=-1", "trainer.max_epochs=-1 (from ${data.epochs})"),  # Lightning's -1: train without end
    ("preprocess.size=0", "preprocess.size=0: the crop side in pixels must be a whole number >= 1"),
    ("data.image_size=0", "data.image_size=0: the classifier's input side"),
    ("data.selection.n_per_class=-3", "data.selection.n_per_class=-3: images per class"),
    ("data.batch_size=8.5", "data.batch_size=8.5: images per batch"),
    ("+experiment=face_detector data.detector.epochs=0", "trainer.max_epochs=0 (from ${detector.epochs})"),
    ("threads=0", "threads=0: torch's CPU threads per process must be a whole number >= 1"),
])
def test_a_value_that_cannot_work_stops_the_run_before_it_starts_naming_the_key(tmp_path, override, message):
    """data.epochs=0 wrote a finished result.json from untrained weights, -1 trained without end, a size of 0 failed
    inside OpenCV, n_per_class=-3 said "no image could be used: no problems"."""
    cfg = compose_config(tmp_path, [*override.split(), "logger=csv"])
    with pytest.raises(ValueError, match=re.escape(message)):
        train(cfg)
    with pytest.raises(ValueError, match=re.escape(message)):
        prepare(cfg)
    assert not list(tmp_path.rglob("result.json")) and not (tmp_path / "data").exists()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_shipped_experiment_passes_validation(tmp_path, experiment):
    validate(compose_config(tmp_path, [f"+experiment={experiment}", "data=aihub", "data.source.root=/nowhere"]))
    validate(compose_config(tmp_path, [f"+experiment={experiment}"]))


def test_the_study_sweeps_name_their_cells_apart(tmp_path):
    soft = compose_config(tmp_path, ["+experiment=soft_labels", "data.labels=soft", "logger=csv"])
    assert soft.cell.labels == "soft" and soft.datamodule.labels == "soft"
    assert soft.hydra.sweeper.params["data.labels"] == "hard,soft"
    scale = compose_config(tmp_path, ["+experiment=crop_scale", "preprocess.margin=0.6", "logger=csv"])
    assert scale.cell.preprocess == "opencv_margin0.6" and scale.datamodule.cropper.margin == 0.6
    pretrained = compose_config(tmp_path, ["+experiment=table5_pretrained", "model=mobilenet_v2_imagenet"])
    assert pretrained.model.net.pretrained == "imagenet" and pretrained.cell.model == "mobilenet_v2_imagenet"
    assert set(pretrained.hydra.sweeper.params.model.split(",")) == {"mobilenet_v2", "mobilenet_v2_imagenet",
                                                                      "hog_svm"}


DEBUG_OPTIONS = options("debug")


def _leaves(tree: object, prefix: str = "") -> dict[str, object]:
    """A plain config tree as dotted key → value."""
    if isinstance(tree, dict):
        return {key: value for name, child in tree.items() for key, value in _leaves(child, f"{prefix}{name}.").items()}
    return {prefix.removesuffix("."): tree}


@pytest.mark.parametrize("option", DEBUG_OPTIONS)
def test_a_debug_option_holds_under_every_experiment(tmp_path, option):
    """A +experiment= comes after debug in the defaults list (Hydra appends it), so an experiment setting a key of a
    debug option would silently win: none may. Epochs go through data.epochs and data.detector.epochs."""
    settings = OmegaConf.to_container(OmegaConf.load(config_file("debug", f"{option}.yaml")))
    settings.pop("defaults", None)
    for experiment in [None, *EXPERIMENTS]:
        cfg = compose_config(tmp_path, [f"debug={option}", *([f"+experiment={experiment}"] if experiment else [])])
        composed = _leaves(OmegaConf.to_container(cfg, resolve=False))  # ${paths.output_dir} as the file has it
        for key, value in _leaves(settings).items():
            assert composed[key] == value, (experiment, key)
        if "epochs" in settings.get("data", {}):
            assert cfg.trainer.max_epochs == settings["data"]["epochs"] == settings["data"]["detector"]["epochs"]


def test_debug_tiny_is_the_test_suites_tiny_synthetic_set(tmp_path):
    cfg = compose_config(tmp_path, ["debug=tiny"])
    source, selection = cfg.data.source, cfg.data.selection
    assert (source.images_per_class, source.n_subjects, source.long_side) == (16, 6, 320)
    assert (selection.n_per_class, selection.n_detector) == (10, 28)
    assert (cfg.data.batch_size, cfg.data.image_size, cfg.preprocess.size, cfg.data.num_workers) == (8, 32, 64, 0)
    assert cfg.trainer.enable_progress_bar is False and set(cfg.logger) == {"csv"}
    assert cfg.trainer.max_epochs == cfg.data.epochs == 15 and cfg.model.net.width == 64  # the run's own
    assert set(compose_config(tmp_path, ["debug=tiny", "logger=none"]).get("logger") or {}) == set()


def test_debug_tiny_composes_with_the_yolo_pipeline(tmp_path):
    cfg = compose_config(tmp_path, ["debug=tiny", "+experiment=yolo_kemo"])
    validate(cfg)
    assert (cfg.task_name, cfg.hydra.runtime.choices.preprocess, cfg.hydra.runtime.choices.debug) == (
        "yolo_kemo", "yolo", "tiny")
    assert cfg.preprocess.size == 64 and instantiate(cfg.data.source).params["images_per_class"] == 16
    run = detector_stage.detector_run(cfg)  # the face detector the pipeline trains first: on the same tiny set
    assert run.datamodule.selection.n_detector == 28 and run.trainer.enable_progress_bar is False
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("option", "experiment", "expected"), [
    ("fdr", "resize_kemo", {"fast_dev_run": True, "limit_train_batches": 1, "limit_val_batches": 1,
                            "limit_test_batches": 1, "num_sanity_val_steps": 0}),
    ("limit", "resize_kemo", {"max_epochs": 3, "limit_train_batches": 10, "limit_val_batches": 5,
                              "limit_test_batches": 5}),
    ("limit", "face_detector", {"max_epochs": 3, "limit_train_batches": 10}),
    ("overfit", "resize_kemo", {"max_epochs": 20, "overfit_batches": 3, "limit_train_batches": 3,
                                "limit_val_batches": 3}),
    ("profiler", "resize_kemo", {"max_epochs": 1}),
])
def test_debug_options_reach_lightnings_trainer(tmp_path, option, experiment, expected):
    from lightning.pytorch.profilers import PassThroughProfiler, SimpleProfiler

    cfg = compose_config(tmp_path, [f"debug={option}", f"+experiment={experiment}"])
    trainer = instantiate(cfg.trainer, logger=False)
    assert {key: getattr(trainer, key) for key in expected} == expected
    if option == "profiler":  # its tables go into the run folder: fit-profile.txt, test-profile.txt
        assert type(trainer.profiler) is SimpleProfiler and trainer.profiler.filename == "profile"
        assert trainer.profiler.dirpath == str(tmp_path / "run")
    else:
        assert type(trainer.profiler) is PassThroughProfiler
