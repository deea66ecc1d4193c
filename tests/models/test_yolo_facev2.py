"""YOLO-FaceV2 from ultralytics blocks: strides, output shapes, trained RFE weights, MultiSEAM, sizes, checkpoints."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules import Conv, Focus
from ultralytics.nn.tasks import DetectionModel

from kemotion.models.checkpoint import load_weights
from kemotion.models.yolo import ARCHITECTURES_DIR, architecture_config, build_detector
from kemotion.models.yolo_facev2 import RFEM, MultiSEAM, SharedDilationConv, resolve_rows

SIZE = 128  # the smallest input whose stride-16 map (8×8) fits MultiSEAM's largest patch (8)
STRIDES = (4, 8, 16)
REG_MAX = 16  # ultralytics' DFL bins per box side
ANCHORS = sum((SIZE // s) ** 2 for s in STRIDES)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """128-px inputs gain nothing from threads; on a shared 2-core machine a busy neighbour makes OpenMP's
    waiting threads cost 100× (4.5 s instead of 0.04 s per forward, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def facev2_n() -> DetectionModel:
    torch.manual_seed(0)
    return build_detector("yolo-facev2", scale="n")


def images(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def eval_outputs(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(images())[0]


def shapes(model: nn.Module) -> dict[str, torch.Size]:
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


def one_face_batch() -> dict[str, torch.Tensor]:
    """An ultralytics training batch: one face per image, normalised xywh."""
    return {
        "img": images(),
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.zeros(2, 1),
        "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.4], [0.3, 0.6, 0.2, 0.2]]),
    }


def test_detection_levels_are_strides_4_8_16(facev2_n):
    assert facev2_n.stride.tolist() == list(STRIDES)
    assert facev2_n.model[-1].nc == 1


def test_train_mode_gives_three_levels_and_raw_box_and_class_maps(facev2_n):
    out = facev2_n.train()(images())
    assert [tuple(f.shape[-2:]) for f in out["feats"]] == [(SIZE // s, SIZE // s) for s in STRIDES]
    assert [f.shape[1] for f in out["feats"]] == [64, 128, 256]  # Convs 29, 31, 33: [256, 512, 1024] × width 0.25
    assert out["boxes"].shape == (2, 4 * REG_MAX, ANCHORS)
    assert out["scores"].shape == (2, 1, ANCHORS)


def test_eval_mode_gives_decoded_boxes_and_score(facev2_n):
    predictions, _ = facev2_n.eval()(images())
    assert predictions.shape == (2, 4 + 1, ANCHORS)


def test_inputs_under_128_px_still_work(facev2_n):
    """The stride-16 map of a 64-px input (4×4) is smaller than MultiSEAM's patches: they see it zero-padded."""
    with torch.no_grad():
        predictions, _ = facev2_n.eval()(torch.rand(1, 3, 64, 64))
    assert predictions.shape == (1, 5, sum((64 // s) ** 2 for s in STRIDES))


def test_rfe_shared_weights_are_trained(facev2_n):
    """Loss → backward reaches the shared 1×1 and 3×3 weights, and a `.weight`-collecting optimizer builder (the
    original's YOLOv5 train.py, which missed its bare `share_weightconv` tensors) includes them."""
    model = facev2_n.train()
    model.zero_grad()
    loss, _ = model.loss(one_face_batch())
    loss.sum().backward()
    rfems = [m for m in model.modules() if isinstance(m, RFEM)]
    assert rfems
    yolov5_weight_group = {
        id(m.weight) for m in model.modules() if isinstance(getattr(m, "weight", None), nn.Parameter)
    }
    for rfem in rfems:
        for shared in (rfem.shared_1x1.conv.weight, rfem.shared_3x3.weight):
            assert shared.requires_grad and shared.grad is not None and shared.grad.abs().sum() > 0
            assert id(shared) in yolov5_weight_group


def test_each_rfe_has_one_1x1_and_one_3x3_weight_used_at_dilations_1_2_3(facev2_n):
    rfems = [m for m in facev2_n.modules() if isinstance(m, RFEM)]
    dilations: list[int] = []
    hooks = [r.shared_3x3.register_forward_hook(lambda _m, args, _y: dilations.append(args[1])) for r in rfems]
    with torch.no_grad():
        facev2_n.eval()(images())
    for hook in hooks:
        hook.remove()
    assert dilations == [1, 2, 3] * len(rfems)
    for rfem in rfems:
        kernels = sorted(tuple(p.shape[2:]) for p in rfem.parameters() if p.ndim == 4)
        assert kernels == [(1, 1), (3, 3)]


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_shared_dilation_conv_is_a_dilated_same_padded_conv(dilation):
    torch.manual_seed(0)
    shared = SharedDilationConv(4, 6, 3, bias=False)
    x = torch.randn(1, 4, 12, 12)
    expected = F.conv2d(x, shared.weight, padding=dilation, dilation=dilation)
    assert torch.allclose(shared(x, dilation), expected)
    assert expected.shape[-2:] == x.shape[-2:]


def test_multiseam_gate_is_per_channel_in_1_to_e_and_keeps_the_shape():
    torch.manual_seed(0)
    block = MultiSEAM(32, 32).eval()
    x = torch.randn(2, 32, 16, 16)
    gate = block.gate(x)
    assert gate.shape == (2, 32, 1, 1)
    assert gate.min() >= 1.0 and gate.max() <= torch.e
    assert torch.allclose(block(x), x * gate)
    assert [tuple(h[0].kernel_size) for h in block.heads] == [(6, 6), (7, 7), (8, 8)]
    small = torch.randn(2, 32, 4, 4)  # under every patch size: zero-padded to one patch
    assert block(small).shape == small.shape
    with pytest.raises(ValueError, match="c1 \\(32\\) must equal c2 \\(64\\)"):
        MultiSEAM(32, 64)


def test_our_rows_are_scaled_like_ultralytics_scales_c3():
    """resolve_rows: channels make_divisible(c × width, 8); C3RFEM's depth-scaled repeats become an argument."""
    rows = {}
    for scale in "sm":
        cfg = resolve_rows(architecture_config("yolo-facev2", scale))
        rows |= {(scale, row[2]): row for row in cfg["backbone"] + cfg["head"]}  # the last of each name
    assert rows["s", "C3RFEM"] == [-1, 1, "C3RFEM", [512, 512, 1, False]]  # n 3 × depth 0.33
    assert rows["m", "C3RFEM"] == [-1, 1, "C3RFEM", [768, 768, 2, False]]  # n 3 × depth 0.67
    assert rows["s", "MultiSEAM"] == [27, 1, "MultiSEAM", [256, 256, 1, 3, [6, 7, 8], 16]]  # last one: 512 × 0.5


def test_model_yaml_rebuilds_with_plain_ultralytics(facev2_n):
    """The stored, resolved `model.yaml` is a fixed point: ultralytics alone rebuilds the same model from it."""
    rebuilt = DetectionModel(copy.deepcopy(facev2_n.yaml), verbose=False)
    assert shapes(rebuilt) == shapes(facev2_n)


def test_parameter_counts_of_scales_n_and_s():
    """The original's s (its YAML with YOLOv5's anchor head: 3 anchors × (4 box + 1 objectness + 1 class) per
    level) has 18.39 M parameters; ultralytics' decoupled anchor-free Detect adds ≈ 2.1 M to the same body."""
    counts = {}
    for scale in "ns":
        model = build_detector("yolo-facev2", scale=scale)
        head = model.model[-1]
        body = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in head.parameters())
        anchor_head = sum(3 * 6 * (c + 1) for c in (seq[0].conv.in_channels for seq in head.cv2))
        counts[scale] = (body + anchor_head, sum(p.numel() for p in model.parameters()))
    assert 18.0e6 <= counts["s"][0] <= 19.5e6
    assert counts["s"][1] == pytest.approx(20.49e6, rel=2e-3)
    assert counts["n"][1] == pytest.approx(5.36e6, rel=2e-3)


def test_ultralytics_yaml_names_build_ultralytics_models():
    model = build_detector("yolov8n.yaml")  # the name's scale letter wins over the default scale "s"
    reference = DetectionModel("yolov8n.yaml", nc=1, verbose=False)
    assert model.stride.tolist() == [8, 16, 32]
    assert model.model[-1].nc == 1
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(3.0e6, rel=0.01)
    assert shapes(model) == shapes(reference)
    assert model.args.box > 0 and model.args.dfl > 0  # v8DetectionLoss's gains


def test_a_yaml_path_builds_like_the_name(facev2_n):
    model = build_detector(str(ARCHITECTURES_DIR / "yolo-facev2.yaml"), scale="n")
    assert shapes(model) == shapes(facev2_n)


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown detector architecture 'yolo-facev3'"):
        build_detector("yolo-facev3")
    with pytest.raises(ValueError, match="has scales \\['n', 's', 'm'\\], not 'x'"):
        build_detector("yolo-facev2", scale="x")


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, facev2_n):
    path = tmp_path / "detector.pt"
    torch.save(facev2_n.state_dict(), path)
    torch.manual_seed(1)
    fresh = build_detector("yolo-facev2", scale="n")
    assert not torch.allclose(eval_outputs(fresh), eval_outputs(facev2_n))
    loaded = build_detector("yolo-facev2", scale="n", checkpoint=str(path))
    assert torch.equal(eval_outputs(loaded), eval_outputs(facev2_n))


def test_ultralytics_format_checkpoint_loads_and_reports(tmp_path, facev2_n, caplog):
    """ultralytics saves the (EMA) DetectionModel itself, in half precision, under "model" (or "ema")."""
    path = tmp_path / "best.pt"
    torch.save({"epoch": -1, "model": copy.deepcopy(facev2_n).half(), "ema": None, "train_args": {}}, path)
    model = build_detector("yolo-facev2", scale="n")
    with pytest.raises(ValueError, match="best.pt holds pickled Python objects"):
        load_weights(model, path)  # a pickled model runs code when loaded: only on request
    with caplog.at_level(logging.INFO, logger="kemotion.models.checkpoint"):
        result = load_weights(model, path, trust_checkpoint=True)
    tensors = len(facev2_n.state_dict())
    assert len(result.loaded) == tensors and (result.skipped_shape, result.missing) == ((), ())
    assert f"loaded {tensors} tensors" in caplog.text
    assert torch.equal(model.model[9].m[0].shared_3x3.weight, facev2_n.model[9].m[0].shared_3x3.weight.half().float())


def test_deepcopy_and_pickle_keep_the_model(facev2_n):
    expected = eval_outputs(facev2_n)
    for clone in (copy.deepcopy(facev2_n), pickle.loads(pickle.dumps(facev2_n))):
        assert torch.equal(eval_outputs(clone), expected)
        assert clone.args.box == facev2_n.args.box


def test_conv_6x6_stem_is_the_focus_stem_with_permuted_weights():
    """The YAML's stem Conv(k=6, s=2, p=2) for the original's Focus(k=3): same outputs under a weight permutation."""
    torch.manual_seed(0)
    focus, conv = Focus(3, 8, 3).conv.conv, Conv(3, 8, 6, 2, 2).conv
    # Focus stacks the pixel (row 2i+a, col 2j+b) of channel c as channel 3k + c, k = (0,0), (1,0), (0,1), (1,1)
    with torch.no_grad():
        for k, (a, b) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
            conv.weight[:, :, a::2, b::2] = focus.weight[:, 3 * k : 3 * k + 3]
    x = torch.randn(1, 3, 16, 16)
    space_to_depth = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
    assert torch.allclose(conv(x), focus(space_to_depth), atol=1e-5)
