"""A detector's model dict checked before ultralytics' parser sees it: read from a file, it is data, not code.

`ultralytics.nn.tasks.parse_model` (8.4) treats some strings of the dict as code: it `eval`s `activation`, looks each
row's module name up in its own module globals (any function or class there, not only layers) or in `torch.nn` /
`torchvision.ops`, and resolves string arguments with `locals()` or `ast.literal_eval`. A face-detector checkpoint
stores that dict (`kemotion.models.yolo.ARCHITECTURE_KEY`), and a model YAML may be any file; so every dict is
checked here first against what kemotion writes:
- top-level keys: only those ultralytics' detection YAMLs hold, each of its type;
- `activation`: absent, or `nn.<Activation>(<numbers>)` for a torch activation class;
- module names: ultralytics' layer classes (`ultralytics.nn.modules`, except `TorchVision`, which loads torchvision
  models and their weights), kemotion's YOLO-FaceV2 blocks, and `nn.<Layer>` for a `torch.nn` layer class;
- arguments: numbers, booleans, None, lists of them, and the strings parse_model turns into those (`"None"`, `"nc"`)
  or passes on as Upsample modes.
- sizes: at most `MAX_ROWS` rows a part, `MAX_REPEATS` repeats a row, numbers up to `MAX_VALUE`, lists
  `MAX_DEPTH` deep, `MAX_CLASSES` classes, scales up to `MAX_MULTIPLE` and `MAX_VALUE` channels, so a crafted dict
  cannot ask for a model that fills the memory or a parse that overflows the stack. (ultralytics' own detection
  YAMLs stay well inside: ≤ 30 rows a part, repeats ≤ 9, channels ≤ 1280.)
Anything else is a ValueError naming the file and the key.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from kemotion.models.yolo_facev2 import CHANNEL_MODULES

ACTIVATIONS = frozenset({"SiLU", "ReLU", "ReLU6", "LeakyReLU", "Hardswish", "GELU", "Mish", "ELU", "Sigmoid", "Tanh",
                         "Identity"})
_NUMBER = r"-?\d+(?:\.\d*)?(?:[eE]-?\d+)?|True|False"
ACTIVATION_PATTERN = re.compile(rf"(?:torch\.)?nn\.(\w+)\(\s*(?:(?:\w+=)?(?:{_NUMBER})\s*(?:,\s*|(?=\))))*\)")
UPSAMPLE_MODES = frozenset({"nearest", "bilinear", "bicubic"})
ARGUMENT_NAMES = frozenset({"nc"})  # parse_model locals a YAML argument may name
REFUSED_LAYERS = frozenset({"TorchVision"})  # builds a torchvision model and loads its weights
ROW_LENGTH = 4  # [from, repeats, module, args]
SCALE_LENGTH = 3  # [depth, width, max_channels]
NUMBER_KEYS = ("depth_multiple", "width_multiple")
INT_KEYS = ("nc", "channels", "ch", "reg_max")
MAX_ROWS, MAX_REPEATS, MAX_VALUE, MAX_DEPTH, MAX_CLASSES, MAX_MULTIPLE = 64, 32, 4096, 3, 1000, 4.0
MAX_STRING = 64  # a string argument's length (parse_model's are short: 'nc', 'nearest', '[3, 5]')
KNOWN_KEYS = frozenset({"nc", "scales", "scale", "backbone", "head", "activation", "depth_multiple", "width_multiple",
                        "channels", "ch", "reg_max", "end2end", "yaml_file", "kpt_shape"})


def check_architecture(cfg: object, source: str | Path) -> dict:
    """`cfg` itself when it is a detection model dict as kemotion writes them; else a ValueError naming `source`
    (the file it came from) and the key."""
    if not isinstance(cfg, Mapping):
        _refuse(source, "the architecture", f"is a {type(cfg).__name__}, not a model dict")
    unknown = sorted(str(key) for key in cfg if key not in KNOWN_KEYS)
    if unknown:
        _refuse(source, unknown[0], f"is not a key of a detection model dict (known: {sorted(KNOWN_KEYS)})")
    for key in INT_KEYS:
        if key in cfg and not (_is_int(cfg[key]) and 0 <= cfg[key] <= MAX_VALUE):
            _refuse(source, key, f"must be an integer from 0 to {MAX_VALUE}, not {cfg[key]!r}")
    if _is_int(cfg.get("nc")) and cfg["nc"] > MAX_CLASSES:
        _refuse(source, "nc", f"{cfg['nc']} classes is more than {MAX_CLASSES}")
    for key in NUMBER_KEYS:
        if key in cfg and not (_is_number(cfg[key]) and 0 < cfg[key] <= MAX_MULTIPLE):
            _refuse(source, key, f"must be a number in (0, {MAX_MULTIPLE}], not {cfg[key]!r}")
    for key, kind in (("end2end", bool), ("yaml_file", str)):
        if cfg.get(key) is not None and not isinstance(cfg[key], kind):
            _refuse(source, key, f"must be a {kind.__name__}, not {cfg[key]!r}")
    if cfg.get("kpt_shape") is not None and not _is_literal(cfg["kpt_shape"], strings=False):
        _refuse(source, "kpt_shape", f"must be a list of integers, not {cfg['kpt_shape']!r}")
    _check_activation(cfg.get("activation"), source)
    _check_scales(cfg, source)
    for part in ("backbone", "head"):
        rows = cfg.get(part)
        if not isinstance(rows, list) or not rows and part == "backbone":
            _refuse(source, part, f"must be a list of [from, repeats, module, args] rows, not {rows!r}")
        if len(rows) > MAX_ROWS:
            _refuse(source, part, f"has {len(rows)} rows, more than {MAX_ROWS}")
        for index, row in enumerate(rows):
            _check_row(row, source, f"{part}[{index}]")
    return dict(cfg)


def _check_activation(activation: object, source) -> None:
    if activation is None:
        return
    found = ACTIVATION_PATTERN.fullmatch(activation) if isinstance(activation, str) else None
    if found is None or found.group(1) not in ACTIVATIONS:
        _refuse(source, "activation", f"{activation!r} is not nn.<Activation>(<numbers>) for one of "
                f"{sorted(ACTIVATIONS)} (ultralytics evaluates this string as code)")


def _check_scales(cfg: Mapping, source) -> None:
    scales, scale = cfg.get("scales"), cfg.get("scale")
    if scale is not None and not isinstance(scale, str):
        _refuse(source, "scale", f"must be a scale letter, not {scale!r}")
    if scales is None:
        return
    if not isinstance(scales, Mapping) or not scales:
        _refuse(source, "scales", f"must map scale letters to [depth, width, max_channels], not {scales!r}")
    for name, multiples in scales.items():
        if not (isinstance(name, str) and isinstance(multiples, list) and len(multiples) == SCALE_LENGTH
                and all(_is_number(m) and m > 0 for m in multiples)
                and max(multiples[:2]) <= MAX_MULTIPLE and multiples[2] <= MAX_VALUE):
            _refuse(source, f"scales.{name}", f"must be [depth, width, max_channels] numbers, not {multiples!r}")
    if scale and scale not in scales:  # "" (ultralytics' "none named"): parse_model takes the first
        _refuse(source, "scale", f"{scale!r} is not one of the scales {sorted(scales)}")


def _check_row(row: object, source, key: str) -> None:
    if not isinstance(row, list) or len(row) != ROW_LENGTH:
        _refuse(source, key, f"must be a [from, repeats, module, args] row, not {row!r}")
    origin, repeats, module, args = row
    if not (_is_int(origin) or isinstance(origin, list) and origin and all(_is_int(i) for i in origin)):
        _refuse(source, f"{key} from", f"must be a layer index or a list of them, not {origin!r}")
    if not _is_int(repeats) or not 1 <= repeats <= MAX_REPEATS:
        _refuse(source, f"{key} repeats", f"must be an integer from 1 to {MAX_REPEATS}, not {repeats!r}")
    if not _is_layer(module):
        _refuse(source, f"{key} module", f"{module!r} is not a layer kemotion builds detectors from (ultralytics' "
                "layers, kemotion's YOLO-FaceV2 blocks, nn.<Layer>)")
    if not isinstance(args, list) or len(args) > MAX_ROWS or not all(_is_literal(a, depth=1) for a in args):
        _refuse(source, f"{key} args", f"must be a list of numbers (|x| <= {MAX_VALUE}), booleans, None, lists of "
                f"them ({MAX_DEPTH} deep at most), 'nc' or an upsampling mode, not {_short(args)}")


def _is_layer(name: object) -> bool:
    """Whether parse_model resolves `name` to a layer class kemotion accepts (module docstring)."""
    from ultralytics.nn import tasks

    if not isinstance(name, str) or not name.isidentifier() and not name.startswith("nn."):
        return False
    if name.startswith("nn."):
        found = getattr(nn, name[3:], None) if name[3:].isidentifier() else None
        return isinstance(found, type) and issubclass(found, nn.Module)
    if name in CHANNEL_MODULES:
        return True
    found = vars(tasks).get(name)
    return (name not in REFUSED_LAYERS and isinstance(found, type) and issubclass(found, nn.Module)
            and found.__module__.startswith("ultralytics.nn.modules."))


def _is_literal(value: object, strings: bool = True, depth: int = 0) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return abs(value) <= MAX_VALUE
    if isinstance(value, list):
        return depth < MAX_DEPTH and len(value) <= MAX_ROWS and all(_is_literal(v, strings, depth + 1) for v in value)
    if not strings or not isinstance(value, str):
        return False
    if value in ARGUMENT_NAMES or value in UPSAMPLE_MODES:
        return True
    try:
        return len(value) <= MAX_STRING and _is_literal(ast.literal_eval(value), strings=False, depth=depth)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False


def _short(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _refuse(source, key: str, problem: str):
    raise ValueError(f"{source}: detector architecture key {key!r} {problem}; refused before ultralytics builds it")
