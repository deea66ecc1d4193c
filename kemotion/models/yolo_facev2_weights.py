"""The original YOLO-FaceV2 release checkpoint (github.com/Krasjet-Yu/YOLO-FaceV2) as a start for kemotion's detector.

The release is a YOLOv5-format `.pt`: a zip whose pickle holds that repository's `models.yolo.Model` (and its
`models.common` blocks) under "model" or "ema", in half precision. Reading it normally would import that code and
run whatever the pickle names. Here a restricted unpickler keeps tensors only: the handful of torch functions that
rebuild tensors and parameters are allowed, every other class the pickle names becomes an inert stand-in that only
records its state, and nothing the pickle names is ever called. Every load goes through it, `torch.load`'s
`pickle_module.load` as well as its `Unpickler`, and only a file that starts as a zip (`torch.load`'s own test) and
is no TorchScript archive is read at all: a pickle followed by a zip would otherwise pass `zipfile`'s check and send
`torch.load` down its legacy path, and an archive holding `constants.pkl` would go to `torch.jit.load`. The modules'
`_parameters` and `_buffers` are then collected into a state dict, named as in the original.

Mapping into `kemotion/models/architectures/yolo-facev2.yaml`, whose rows are the original's layer for layer:
- layer indices are the same; Conv, C3, SPP and their children have the same names (YOLOv5's and ultralytics');
- layer 0: the original's Focus conv (c, 12, 3, 3) becomes the 6×6 stride-2 conv (c, 3, 6, 6) by the permutation
  that makes them equal (kemotion.models.yolo_facev2's docstring; tests/models/test_yolo_facev2.py);
- C3RFEM's RFEM (`layer.0.share_weightconv1/2`, `bn1`, `bn2`, `bn`) → `shared_1x1.conv`, `shared_1x1.bn`,
  `shared_3x3`, `shared_bn`, `bn`;
- MultiSEAM's `DCovN{k}` sequentials and `fc` → `heads.{k}` (flattened) and `gate_mlp.fc`;
- the Detect layer (anchor-based, RetinaFace anchors) does not fit ultralytics' anchor-free head: not transferable,
  reported, and left at its initialisation.
`ORIGINAL_RELEASE` is this reader and this renaming as an adapter of kemotion's one loader:
`load_weights(model, path, adapter=ORIGINAL_RELEASE)` copies every mapped tensor whose shape matches, and logs and
returns the counts.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from kemotion.models.checkpoint import WeightAdapter

ORIGINAL_MODEL_CLASS = ("models.yolo", "Model")  # the class the release's pickle names for its model
ZIP_MAGIC = b"PK\x03\x04"  # a zip's local file header: how torch.load tells its zip format from the legacy one
TORCHSCRIPT_RECORD = "constants.pkl"  # how torch.load tells a TorchScript archive (it calls torch.jit.load on it)
# The globals a checkpoint may really resolve: tensor and parameter rebuilders and plain containers.
ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("collections", "OrderedDict"), ("torch", "Size"),
}
FOCUS_GROUPS = ((0, 0), (1, 0), (0, 1), (1, 1))  # Focus stacks pixel (2i + a, 2j + b) as channel group k
RENAMES = [  # (pattern on the part after "model.<i>.", replacement), first match wins
    (r"^m\.(\d+)\.layer\.0\.share_weightconv1$", r"m.\1.shared_1x1.conv.weight"),
    (r"^m\.(\d+)\.layer\.0\.bn1\.", r"m.\1.shared_1x1.bn."),
    (r"^m\.(\d+)\.layer\.0\.share_weightconv2$", r"m.\1.shared_3x3.weight"),
    (r"^m\.(\d+)\.layer\.0\.bn2\.", r"m.\1.shared_bn."),
    (r"^DCovN(\d)\.([02])\.", r"heads.\1.\2."),  # patch embedding conv (0) and its BN (2)
    (r"^DCovN(\d)\.3\.0\.", r"heads.\1.3."),  # depth-1 mixer: residual depthwise stage
    (r"^DCovN(\d)\.3\.1\.", r"heads.\1.4."),  # pointwise conv
    (r"^DCovN(\d)\.3\.3\.", r"heads.\1.6."),  # its BN
    (r"^fc\.", r"gate_mlp.fc."),
]


def is_original_checkpoint(path: str | Path) -> bool:
    """Whether `path` is a zip-format torch checkpoint whose pickle names the original repository's Model class (read
    from the pickle's opcodes, nothing loaded)."""
    try:
        if _not_a_torch_zip(path):
            return False
        with zipfile.ZipFile(path) as archive:
            pickled = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            return pickled is not None and ORIGINAL_MODEL_CLASS in _globals(archive.read(pickled))
    except (zipfile.BadZipFile, OSError):
        return False


def _not_a_torch_zip(path: str | Path) -> str | None:
    """Why `torch.load` would not unpickle `path` as a `torch.save` zip; None when it would. Its first bytes must be a
    zip header, the test `torch.load` makes (`zipfile` also accepts an archive behind other bytes, which `torch.load`
    would read as a legacy pickle), and it must hold no `constants.pkl`, the record by which `torch.load` tells a
    TorchScript archive and hands it to `torch.jit.load`, which runs the TorchScript code it holds."""
    with open(path, "rb") as handle:
        if handle.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            return "its first bytes are no zip header"
    try:  # asked of torch's own zip reader, as torch.load opens the file (zipfile could read another archive)
        torch.serialization.get_unsafe_globals_in_checkpoint(path)  # reads the pickle's opcodes, runs nothing
    except ValueError:
        return f"it is a TorchScript archive (it holds {TORCHSCRIPT_RECORD}), whose code runs when loaded"
    except RuntimeError as error:
        return f"torch cannot read it as a checkpoint archive: {error}"
    return None


def _globals(data: bytes) -> set[tuple[str, str]]:
    """The (module, name) pairs a pickle looks up: GLOBAL opcodes (protocols 0-3), or the two strings pushed before
    a STACK_GLOBAL (protocol 4+)."""
    found, strings = set(), []
    for opcode, argument, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            found.add(tuple(argument.split(" ", 1)))
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add((strings[-2], strings[-1]))
        elif isinstance(argument, str):
            strings.append(argument)
    return found


def read_original_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of the release's model ("ema" if present, else "model"), float32, named as in the original
    (`model.<i>.…`); nothing the pickle names is executed (module docstring)."""
    refused = _not_a_torch_zip(path)
    if refused:
        raise ValueError(f"{path}: not a zip-format torch checkpoint ({refused}), so not the YOLO-FaceV2 release")
    checkpoint = torch.load(path, map_location="cpu", pickle_module=_RestrictedPickle, weights_only=False)
    checkpoint = checkpoint.__dict__.get("state", checkpoint) if isinstance(checkpoint, _Inert) else checkpoint
    model = (checkpoint.get("ema") or checkpoint.get("model")) if isinstance(checkpoint, dict) else None
    if not isinstance(model, _Inert):
        raise ValueError(f"{path}: no pickled model under 'ema' or 'model' (top-level "
                         f"{sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__})")
    return {name: tensor.float() for name, tensor in _tensors(model, "")}


def kemotion_names(
    source: dict[str, torch.Tensor], model: nn.Module,
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """The release's backbone and neck tensors under the names of kemotion's YOLO-FaceV2 `model` (module docstring),
    the Focus conv made the 6×6 stem conv; and the names of its anchor head's tensors, which have no place in it."""
    rows = getattr(model, "yaml", {})
    head = len(rows.get("backbone", [])) + len(rows.get("head", [])) - 1
    renamed, head_tensors = {}, []
    for name, tensor in source.items():
        found = re.match(r"^model\.(\d+)\.(.+)$", name)
        if found is None or int(found.group(1)) == head:
            head_tensors.append(name)
            continue
        index, rest = int(found.group(1)), found.group(2)
        mapped = f"model.{index}.{_rename(rest)}"
        if index == 0 and rest == "conv.conv.weight":
            mapped, tensor = "model.0.conv.weight", focus_to_conv6(tensor)
        elif index == 0 and rest.startswith("conv."):
            mapped = f"model.0.{rest.removeprefix('conv.')}"
        renamed[mapped] = tensor
    return renamed, tuple(head_tensors)


def focus_to_conv6(weight: torch.Tensor) -> torch.Tensor:
    """Focus's (c, 12, 3, 3) conv weight → the equivalent 6×6 stride-2 conv's (c, 3, 6, 6)."""
    out = weight.new_zeros(weight.shape[0], weight.shape[1] // 4, 6, 6)
    for k, (a, b) in enumerate(FOCUS_GROUPS):
        out[:, :, a::2, b::2] = weight[:, 3 * k: 3 * k + 3]
    return out


def _rename(rest: str) -> str:
    for pattern, replacement in RENAMES:
        renamed, count = re.subn(pattern, replacement, rest)
        if count:
            return renamed
    return rest


def _tensors(node: object, prefix: str):
    """(name, tensor) of an inert module tree's `_parameters` and `_buffers`, recursing into `_modules`."""
    state = node.__dict__.get("state") if isinstance(node, _Inert) else None
    if not isinstance(state, dict):
        return
    for group in ("_parameters", "_buffers"):
        for name, tensor in (state.get(group) or {}).items():
            if isinstance(tensor, torch.Tensor):
                yield f"{prefix}{name}", tensor.detach()
    for name, child in (state.get("_modules") or {}).items():
        yield from _tensors(child, f"{prefix}{name}.")


class _Inert:
    """What every class the pickle names becomes: built without running anything, it keeps the state it is given."""

    def __init__(self, *args, **kwargs) -> None:
        self.__dict__["args"] = args

    def __setstate__(self, state) -> None:
        self.__dict__["state"] = state

    def __setitem__(self, key, value) -> None:  # pickle's SETITEMS on a dict subclass
        self.__dict__.setdefault("items", {})[key] = value


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        return type(name, (_Inert,), {"__module__": f"inert.{module}"})


def _load(file, **kwargs) -> object:
    """`pickle.load` through the restricted unpickler (torch.load calls `pickle_module.load` on its legacy path)."""
    return _Unpickler(file, **kwargs).load()


_RestrictedPickle = SimpleNamespace(Unpickler=_Unpickler, load=_load, __name__="kemotion_restricted_pickle")

ORIGINAL_RELEASE = WeightAdapter(
    "the original YOLO-FaceV2 release, by layer index",
    read=lambda path, trust_checkpoint: read_original_state(path),  # tensors only, trusted or not: no code runs
    rename=kemotion_names,
)
