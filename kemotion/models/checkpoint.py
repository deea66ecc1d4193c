"""Load weights into a model from whatever file holds them, keeping only tensors that fit: kemotion's one loader.

`load_weights(model, path)` serves every builder's `checkpoint=` and `pretrained=` argument. By itself it reads
- a plain state_dict (`torch.save(model.state_dict(), path)`),
- a Lightning `.ckpt` (`{"state_dict": {"net.layer1...": ...}, "hyper_parameters": ...}`) or any dict with a
  `"model"` / `"model_state_dict"` / `"ema"` entry, holding tensors or a pickled module (ultralytics' `.pt`: the
  model under "model", or, mid-training, `"model": None` and the EMA model under "ema"); leading `net.`,
  `model.`, `module.` (DataParallel) and `_orig_mod.` (torch.compile) prefixes are stripped where that makes a key
  match,
- torchvision ImageNet weights for vgg19 / resnet18 / mobilenet_v2, whose 1000-class head does not fit a 7-class
  model.
Weights of another architecture or format come through a `WeightAdapter` the caller passes (timm's `filter_fn` with
the reader its format needs): it reads the file and renames its tensors into the model's names, and the loader does
the rest. Adapters live with the model family they feed: `kemotionnet.RESNET18_IMAGENET` (ResNet18's ImageNet file
into K-EmotionNet), `yolo_facev2_weights.ORIGINAL_RELEASE` (the YOLO-FaceV2 release, read without running its pickle).

Tensors are copied when name AND shape match; the rest are reported in a `LoadResult` and logged.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

# Wrappers that prefix parameter names: our LightningModule (`self.net`), other Lightning code (`self.model`),
# nn.DataParallel / DDP (`module.`) and torch.compile (`_orig_mod.`).
WRAPPER_PREFIXES: tuple[str, ...] = ("net.", "model.", "module.", "_orig_mod.")
# Top-level entries of checkpoint dicts that hold the weights, tried in this order.
STATE_DICT_ENTRIES: tuple[str, ...] = ("state_dict", "model", "model_state_dict", "ema")
_NAMES_SHOWN = 5  # how many tensor names a log line or error lists before "…"


@dataclass(frozen=True)
class LoadResult:
    """What `load_weights` did: names are the model's (after prefix stripping or an adapter's renaming) unless said
    otherwise."""

    path: Path
    source: str | None  # the adapter's account of the file (`WeightAdapter.source`); None for kemotion's own formats
    loaded: tuple[str, ...]
    skipped_shape: tuple[str, ...]  # in the file and the model, but of another shape (e.g. a 1000-class head)
    missing: tuple[str, ...]  # in the model, absent from the file: loaded + skipped_shape + missing = model
    unexpected: tuple[str, ...]  # file keys (as stored, or as the adapter renamed them) that name nothing in the model
    not_transferable: tuple[str, ...]  # file keys (as stored) the adapter left out: no place in this model

    def __str__(self) -> str:
        source = f" ({self.source})" if self.source else ""
        dropped = (f", {len(self.not_transferable)} not transferable {_short(self.not_transferable)}"
                   if self.not_transferable else "")
        return (
            f"{self.path}{source}: loaded {len(self.loaded)} tensors, skipped {len(self.skipped_shape)} for shape "
            f"mismatch {_short(self.skipped_shape)}, {len(self.missing)} missing {_short(self.missing)}, "
            f"{len(self.unexpected)} unexpected {_short(self.unexpected)}{dropped}"
        )


@dataclass(frozen=True)
class WeightAdapter:
    """A file of another architecture or format, as `load_weights` takes it: `read` gives its tensors by its own
    names (safely: tensors only, never code), `rename` those that have a place in `model` under the model's names,
    with the file names of those that have none (reported as not transferable). Whatever of the model the file does
    not cover keeps its initialisation, as expected of a start from another architecture: logged at INFO."""

    source: str  # what the log calls the file, e.g. "the original YOLO-FaceV2 release"
    read: Callable[[Path, bool], dict[str, torch.Tensor]]  # (path, trust_checkpoint) → the file's tensors
    rename: Callable[[dict[str, torch.Tensor], nn.Module], tuple[dict[str, torch.Tensor], tuple[str, ...]]]


def load_weights(
    model: nn.Module, path: str | Path, *, adapter: WeightAdapter | None = None, trust_checkpoint: bool = False,
) -> LoadResult:
    """Copy the tensors of `path` that match `model` by name and shape into it; report the rest.

    The file is read by `adapter` when given (then renamed by it), else with `weights_only=True` (`read_tensors`);
    one that pickles Python objects needs `trust_checkpoint=True`.
    Raises FileNotFoundError naming `path` when it does not exist, and ValueError naming it when it holds no
    tensor dict, when no weight fits the model, or when more tensors differ in shape than fit (a checkpoint of
    another width, layout or scale, where only shape-free tensors such as BN step counters would "load"); from an
    adapter, tensors it renamed for no tensor of the model count as misfits too.
    Logs the counts at INFO, or at WARNING when some model tensors were absent from a file of kemotion's own formats.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if adapter is None:
        source, not_transferable, named = read_tensors(path, trust_checkpoint), (), str(path)
    else:
        source, not_transferable = adapter.rename(adapter.read(path, trust_checkpoint), model)
        named = f"{path} ({adapter.source})"
    target = model.state_dict()
    matched, skipped_shape, unexpected = _match(source, target)

    # BN's integer step counters (and a head bias of the same class count) fit any width: they don't count.
    weights = [name for name, tensor in matched.items() if tensor.is_floating_point()]
    if not weights:
        raise ValueError(
            f"{named} holds nothing loadable into {type(model).__name__}: none of its {len(source)} tensors "
            f"match by name and shape ({len(skipped_shape)} match by name only {_short(skipped_shape)}; "
            f"file keys {_short(list(source))}, model keys {_short(list(target))})"
        )
    # An adapter gives the model's names: one the model lacks was renamed for a layer of another layout, a misfit too.
    nowhere = unexpected if adapter is not None else []
    if len(skipped_shape) + len(nowhere) > len(weights):
        renamed = f" and {len(nowhere)} renamed for no tensor of it {_short(nowhere)}" if nowhere else ""
        raise ValueError(
            f"{named} does not fit {type(model).__name__}: {len(skipped_shape)} of its tensors match by name "
            f"but differ in shape {_short(skipped_shape)}{renamed}, only {len(weights)} fit — another width, "
            "stage layout or scale?"
        )
    model.load_state_dict(matched, strict=False)
    result = LoadResult(
        path=path,
        source=adapter.source if adapter is not None else None,
        loaded=tuple(matched),
        skipped_shape=tuple(skipped_shape),
        missing=tuple(name for name in target if name not in matched and name not in skipped_shape),
        unexpected=tuple(unexpected),
        not_transferable=tuple(not_transferable),
    )
    log.log(logging.WARNING if result.missing and adapter is None else logging.INFO, "%s", result)
    return result


def read_tensors(path: Path, trust_checkpoint: bool = False) -> dict[str, torch.Tensor]:
    """The name → tensor mapping of a state dict or checkpoint file, as `load_checkpoint` reads it safely."""
    return _state_dict_of(load_checkpoint(path, trust_checkpoint), path)


def load_checkpoint(path: Path, trust_checkpoint: bool = False) -> object:
    """torch.load with weights_only=True: tensors and plain containers, never code. A file that pickles Python
    objects (an ultralytics `.pt` pickles its whole model) is only unpickled with `trust_checkpoint=True`; a
    TorchScript archive is never loaded."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except RuntimeError as error:  # torch.load refuses TorchScript with weights_only=True, whatever the trust
        if "TorchScript" not in str(error):
            raise
        raise ValueError(f"{path} is a TorchScript archive, whose code runs when loaded; kemotion loads tensors "
                         "(a state_dict or a checkpoint), never TorchScript") from None
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        what = found.group(1) if found else type(error).__name__
        if not trust_checkpoint:
            raise ValueError(
                f"{path} holds pickled Python objects ({what}), which could run code when loaded; kemotion only "
                "loads tensors unless told otherwise. If you trust this file (e.g. an ultralytics .pt you made), "
                "load it with trust_checkpoint=true") from None
        log.warning("%s holds Python objects besides tensors (%s); unpickling it as trust_checkpoint=true says",
                    path, what)
        return torch.load(path, map_location="cpu", weights_only=False)


def _state_dict_of(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    """The name → tensor mapping inside a loaded checkpoint: a known entry of it, or the dict itself."""
    if isinstance(checkpoint, nn.Module):
        checkpoint = checkpoint.state_dict()
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a state_dict or checkpoint dict")
    for entry in STATE_DICT_ENTRIES:
        inner = checkpoint.get(entry)
        if isinstance(inner, nn.Module):
            inner = inner.state_dict()
        if isinstance(inner, Mapping):
            checkpoint = inner
            break
    tensors = {str(key): value for key, value in checkpoint.items() if isinstance(value, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{path} holds no tensors (top-level keys {_short(list(checkpoint))})")
    return tensors


def _match(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """The file's tensors that fit the model by name and shape (under the model's names), the model names whose
    tensor has another shape, and the file keys that name nothing in the model (or a tensor already taken)."""
    matched: dict[str, torch.Tensor] = {}
    skipped_shape: list[str] = []
    unexpected: list[str] = []
    for key, tensor in source.items():
        name = _model_name(key, target)
        if name is None or name in matched or name in skipped_shape:
            unexpected.append(key)
        elif tensor.shape != target[name].shape:
            skipped_shape.append(name)
        else:
            matched[name] = tensor
    return matched, skipped_shape, unexpected


def _model_name(key: str, target: Mapping[str, torch.Tensor]) -> str | None:
    """`key` itself if the model has it, else `key` with wrapper prefixes stripped one by one until it does."""
    while key not in target:
        prefix = next((p for p in WRAPPER_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            return None
        key = key[len(prefix):]
    return key


def _short(names: list[str] | tuple[str, ...]) -> str:
    if not names:
        return "[]"
    shown = ", ".join(names[:_NAMES_SHOWN])
    return f"[{shown}{', …' if len(names) > _NAMES_SHOWN else ''}]"
