"""The `kemotion` commands, and what `kemotion <command> --help` says: the command's own options, read from the comments
of its config, so that the help says what the config says.

A config documents an option on its line: a top-level key (`conf: null  # lowest face confidence kept`) or a config
group in its defaults list (`- data: synthetic  # the images: ...`), the comment going on in indented comment lines
below it. Keys and groups without such a comment are plumbing, not options, and the help leaves them out. Hydra prints
the text as the config's `hydra.help.template` (`kemotion/conf/hydra/help/kemotion.yaml`, through the resolver
registered here).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from kemotion.core.config import config_file, options

# Each command (`kemotion <name>`, `python -m kemotion.<name>`) in one line: `kemotion --help`, each help's first line.
COMMANDS = {
    "train": "a run or a sweep (-m): the face-detector stage when a YOLO crop needs it, then fit, test, record",
    "prepare": "the caches a run reads (manifest, face detector, crops), built up front",
    "inspect": "a dataset's manifest summary and skip report",
    "report": "Table 5 (mean ± std) and the other tables, from run folders or W&B",
    "predict": "a trained run on photos, folders, video or a webcam",
    "export": "a trained run as ONNX files that predict without torch",
}
# Groups a config's defaults list leaves out, which a run adds with `+group=option`.
ADDED_GROUPS = {"train": {"experiment": "a paper table's cell or a study: preset groups and keys, as below"}}

WIDTH = 100  # of the help's lines
NAME_COLUMN = 26  # where the meanings start

KEY_LINE = re.compile(r"(?P<name>[A-Za-z_]\w*):(?P<value>.*?)(?:\s+#\s?(?P<meaning>.*))?")
GROUP_LINE = re.compile(r"\s+- (?P<name>[\w/]+): (?P<value>\S+)(?:\s+#\s?(?P<meaning>.*))?")
MORE_MEANING = re.compile(r"\s+#\s?(?P<meaning>.*)")


@dataclass
class Option:
    """A key or a group of a config, its default and the comment on its line (and the indented comment lines below)."""

    name: str
    default: str
    meaning: str


def documented(path: Path) -> tuple[list[Option], list[Option]]:
    """The top-level keys and the defaults-list groups of the config at `path` that have a comment on their line, in
    the file's order. A key holding a block (a mapping on the lines below) is no single option and is left out."""
    keys, groups, last = [], [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        more = MORE_MEANING.fullmatch(line)
        if more and last is not None:
            last.meaning += " " + more["meaning"]
            continue
        last = None
        for pattern, found in ((KEY_LINE, keys), (GROUP_LINE, groups)):
            match = pattern.fullmatch(line)
            if match and match["meaning"] and match["value"].strip():
                last = Option(match["name"], match["value"].strip(), match["meaning"].strip())
                found.append(last)
    return keys, groups


def help_text(command: str, config_name: str) -> str:
    """`kemotion <command> --help`: what the command does, how it is called, its groups (with their options, the
    default marked) and its keys (with their defaults), each with its meaning. Any job name is taken: a config that
    holds Hydra's node (the compose API's, a test's) resolves it whole when it is logged."""
    keys, groups = documented(config_file(f"{config_name}.yaml"))
    added = ADDED_GROUPS.get(config_name, {})
    required = [f"{key.name}=..." for key in keys if key.default == "???"]
    usage = " ".join([f"usage: kemotion {command}", *(f"[+{group}=NAME]" for group in added),
                      *(["[group=option ...]"] if groups else []), *required, "[key=value ...]"])
    title = f"kemotion {command}: {COMMANDS[command]}" if command in COMMANDS else f"kemotion {command}"  # any job
    lines = [title, "", usage]
    if groups or added:
        lines += ["", "Config groups (group=option; * marks the default):"]
        for name, meaning in added.items():
            lines += _entry(f"+{name}", meaning, ", ".join(options(name)))
        for group in groups:
            choices = ", ".join(f"{o}*" if o == group.default else o for o in options(group.name))
            lines += _entry(group.name, group.meaning, choices)
    lines += ["", "Options (key=value; ??? must be given):"]
    for key in keys:
        lines += _entry(f"{key.name}={key.default}", key.meaning)
    lines += ["", f"Any key of the composed config is set the same way (`kemotion {command} --cfg job` prints them);",
              f"Hydra's own flags: `kemotion {command} --hydra-help`."]
    return "\n".join(lines).replace("$", "$$")  # Hydra fills the template with string.Template: `$` is `$$`


def _entry(name: str, meaning: str, choices: str = "") -> list[str]:
    """One option: its name, its meaning beside it (below it when the name is long), then its choices, wrapped."""
    indent = " " * NAME_COLUMN
    head = f"  {name}"
    text = textwrap.wrap(meaning, WIDTH, initial_indent=indent, subsequent_indent=indent)
    if len(head) < NAME_COLUMN:
        text[0] = head + text[0][len(head):]
    else:
        text.insert(0, head)
    if choices:
        text += textwrap.wrap(choices, WIDTH, initial_indent=indent + "options: ", subsequent_indent=indent + "  ")
    return text


OmegaConf.register_new_resolver("kemotion_help", help_text, replace=True)
