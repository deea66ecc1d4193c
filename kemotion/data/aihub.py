"""Reading AI-Hub's Korean emotion image dataset: label JSONs, the image index, and one record -> one sample.

The real download, the public sample release and our synthetic copy all go through here. Folder layouts vary
between copies, so label JSONs are found by file-name pattern and images by file name, anywhere under the root,
with names compared as NFC (macOS archives arrive NFD). Bad input is reported into a SkipReport, never raised.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kemotion.core.emotions import KOREAN_NAMES, Emotion, nfc, parse_emotion
from kemotion.data.face_box import ANNOTATORS, BadBox, consensus_box
from kemotion.data.files import read_bounded, walk_files
from kemotion.data.images import BadImage, probe_image
from kemotion.data.skips import Problem, SkipReport

LABEL_FILE_PATTERN = re.compile(r"img_emotion_(training|validation|sample)_data\((.+)\)\.json", re.IGNORECASE)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg"})

BOX_KEYS = ("minX", "minY", "maxX", "maxY")
UNKNOWN_BACKGROUND = -1  # a sample without a place category, as a class index (a loss leaves it out)
SUBJECT_HASH = re.compile(r"[0-9a-f]{64}", re.IGNORECASE)  # first `_` field of an image name: the person
# The release's largest label file holds ~60,000 records (/work/shared/aihub/FORMAT.md) of ~0.8 KB (the sample
# release's): ~50 MB. A file far above that is not a label file, and reading it whole (a link to /dev/zero: without
# end) would exhaust memory.
MAX_LABEL_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Annotation:
    emotion: str  # the annotator's NFC answer: a class name, '알수없음', or "" when missing
    box: tuple[float, float, float, float] | None  # (x1, y1, x2, y2) as given; None if missing/malformed
    background: str = ""  # the annotator's place category (`bg`, NFC); "" when missing


@dataclass(frozen=True)
class LabelRecord:
    filename: str  # NFC
    label_file: str
    source_split: str  # "training" | "validation" | "sample"
    emotion: Emotion  # the uploader's (acted) label, equal to the label file's emotion
    annotations: tuple[Annotation, ...]  # A, B, C
    subject_id: str  # 64-hex person hash from the file name; "" when the name does not start with one
    gender: str
    age: int | None
    is_prof: str
    background: str

    @property
    def agreement(self) -> int:
        """How many annotators answered the uploader's label (0-3); the paper prefers 3."""
        return sum(_names(a.emotion, self.emotion) for a in self.annotations)

    @property
    def background_majority(self) -> str:
        """The place category most annotators gave (`bg`, at least 2 of 3), else the uploader's (`bg_uploader`)."""
        votes = Counter(a.background for a in self.annotations if a.background).most_common(1)
        return votes[0][0] if votes and votes[0][1] >= 2 else self.background


@dataclass(frozen=True)
class Sample:
    """One usable image with everything the manifest needs; the box is in the upright frame."""

    path: str
    filename: str
    label: int
    label_ko: str
    label_en: str
    agreement: int
    answers: str  # the three annotators' answers joined by "|"
    subject_id: str
    gender: str
    age: int | None
    is_prof: str
    background: str  # the uploader's place category (bg_uploader)
    background_majority: str  # the annotators' majority place category (LabelRecord.background_majority)
    source_split: str
    width: int  # upright (EXIF-applied) size
    height: int
    orientation: int
    image_format: str
    image_mode: str
    box_x1: float
    box_y1: float
    box_x2: float
    box_y2: float
    box_source: str  # e.g. "median of A,B,C", "median of A,C", "B only"


def read_label_records(root: str | Path, report: SkipReport) -> list[LabelRecord]:
    """Every usable record of every label JSON under root; duplicated image names keep the first record."""
    records: list[LabelRecord] = []
    first_file: dict[str, str] = {}
    for label_file, split, emotion in find_label_files(root, report):
        for record in _read_label_file(label_file, split, emotion, report):
            if record.filename in first_file:
                detail = f"also in {first_file[record.filename]}; keeping that record"
                report.add(label_file, "duplicate record", detail, record=record.filename)
                continue
            first_file[record.filename] = record.label_file
            records.append(record)
    return records


def find_label_files(root: str | Path, report: SkipReport) -> list[tuple[Path, str, Emotion]]:
    """(path, split, emotion) of each label JSON under root, in sorted path order; one per split and emotion."""
    found: list[tuple[Path, str, Emotion]] = []
    first: dict[tuple[str, Emotion], Path] = {}
    for path in _walk_files(root):
        match = LABEL_FILE_PATTERN.fullmatch(nfc(path.name))
        if match is None:
            continue
        split, name = match.group(1).lower(), match.group(2)
        try:
            emotion = parse_emotion(name)
        except KeyError:
            report.add(path, "unknown label", f"emotion {name!r} in the file name is not one of {KOREAN_NAMES}")
            continue
        if (split, emotion) in first:
            detail = f"a second {split} label file for {emotion.korean}; reading {first[split, emotion]} only"
            report.add(path, "duplicate label file", detail)
            continue
        first[split, emotion] = path
        found.append((path, split, emotion))
    if not found:
        pattern = "img_emotion_{training,validation,sample}_data(<emotion>).json"
        report.add(root, "no label files", f"no {pattern} here: the wrong folder, or zips not extracted?")
    return found


def index_images(root: str | Path, report: SkipReport) -> dict[str, Path]:
    """Every .jpg/.jpeg under root by NFC file name; other non-label files are reported as ignored, one each."""
    images: dict[str, Path] = {}
    for path in _walk_files(root, report):
        name = nfc(path.name)
        if path.suffix.lower() not in IMAGE_SUFFIXES or name.startswith("._"):
            if not LABEL_FILE_PATTERN.fullmatch(name):
                report.add(path, "not a dataset file", _why_ignored(name), action="ignored")
        elif name in images:
            report.add(path, "duplicate image", f"same file name as {images[name]}; using that one", record=name)
        else:
            images[name] = path
    return images


def resolve(record: LabelRecord, image_path: str | Path) -> Sample:
    """Probe the image and place the consensus face box in its upright frame; BadImage / BadBox propagate."""
    info = probe_image(image_path)
    (x1, y1, x2, y2), box_source = consensus_box(record.annotations, info.width, info.height)
    emotion = record.emotion
    return Sample(
        path=str(image_path), filename=record.filename, label=emotion.index, label_ko=emotion.korean,
        label_en=emotion.english, agreement=record.agreement,
        answers="|".join(a.emotion for a in record.annotations), subject_id=record.subject_id,
        gender=record.gender, age=record.age, is_prof=record.is_prof, background=record.background,
        background_majority=record.background_majority,
        source_split=record.source_split, width=info.width, height=info.height, orientation=info.orientation,
        image_format=info.format, image_mode=info.mode, box_x1=x1, box_y1=y1, box_x2=x2, box_y2=y2,
        box_source=box_source,
    )  # fmt: skip


def describe_problem(exc: BadImage | BadBox) -> tuple[str, str]:
    """(kind, detail) of a record whose resolve() raised: BadImage keeps its kind, BadBox is "bad box"."""
    if isinstance(exc, BadImage):
        return exc.kind, exc.reason  # the report's file column names the image
    return "bad box", str(exc)


def problem_from(exc: BadImage | BadBox, record: LabelRecord, image_path: str | Path) -> Problem:
    """The skip-report entry for a record whose resolve() raised."""
    return Problem(str(image_path), *describe_problem(exc), "skipped", record.filename)


def missing_image_problem(record: LabelRecord) -> Problem:
    """The skip-report entry for a record with no image under the root: normal with partial downloads."""
    detail = f"no image of this name under the dataset root (listed in {record.label_file})"
    return Problem(record.filename, "image missing", detail, "skipped", record.filename)


def notes(sample: Sample) -> list[tuple[str, str]]:
    """(kind, detail) of what is unusual about a sample that is kept."""
    found = []
    if sample.image_format != "JPEG":
        suffix = Path(sample.filename).suffix
        found.append(("not a JPEG", f"{sample.image_format or 'unknown'} content named {suffix}; read by content"))
    if sample.image_mode != "RGB":
        kind = {"L": "greyscale image", "LA": "greyscale image", "I;16": "16-bit greyscale image",
                "CMYK": "CMYK image"}.get(sample.image_mode)
        found.append((kind or "non-RGB image", f"mode {sample.image_mode}; converted to RGB"))
    if sample.box_source != "median of A,B,C":
        detail = f"face box is the {sample.box_source}; the others were missing, of zero area or outside"
        found.append(("annotator box rejected", detail))
    if not sample.subject_id:
        found.append(("no subject id", "the file name does not start with the 64-hex person hash"))
    return found


def subject_id_of(filename: str) -> str:
    """The person hash leading an AI-Hub image name (lower case), or "" when the name has none."""
    head = filename.split("_", 1)[0]
    return head.lower() if SUBJECT_HASH.fullmatch(head) else ""


def dataset_index(root: str | Path) -> list[tuple[str, int]]:
    """(NFC path relative to root, size in bytes) of every label JSON and image under root, in walk order: what the
    manifest is keyed by. A completed download, a replaced corrupt image or a new label file changes it; moving or
    copying the whole folder does not. Sizes, not contents or times: cheap at 500,000 files, and a copy that resets
    modification times keeps its caches (an in-place edit that keeps a file's size is not seen)."""
    root = Path(root)
    index = []
    for path in _walk_files(root):
        name = nfc(path.name)
        if LABEL_FILE_PATTERN.fullmatch(name) or (path.suffix.lower() in IMAGE_SUFFIXES and not name.startswith("._")):
            try:
                size = path.stat().st_size
            except OSError:  # a broken link: reading it is reported when the manifest is built
                size = -1
            index.append((nfc(str(path.relative_to(root))), size))
    return index


def _walk_files(root: str | Path, report: SkipReport | None = None) -> list[Path]:
    """Every file under root, sorted by NFC path: "first" is the same in NFC and NFD copies.

    Symlinked folders are followed (shared storage often links a dataset's image folders in); a folder reached a
    second time — a link loop, or two links to one folder — is read once, and the second route goes to `report`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist or is not a folder")
    listing = walk_files(root)
    for folder, first in listing.repeated if report is not None else ():
        report.add(folder, "folder linked twice", f"the same folder as {first} (symlink); read once", action="ignored")
    return sorted(listing.files, key=lambda path: (nfc(str(path)), str(path)))


def _why_ignored(name: str) -> str:
    lower = name.lower()
    if name.startswith("._"):
        return "a macOS resource-fork (AppleDouble) file, not an image"
    if lower.endswith(".zip"):
        return "a zip archive: members are not read; extract it"
    if re.search(r"\.irx\d+$", lower):
        return "an unfinished download (download-manager part file); finish the download"
    return "not a JPEG or a label JSON"


def _read_label_file(path: Path, split: str, emotion: Emotion, report: SkipReport) -> list[LabelRecord]:
    data = _load_json_list(path, report)
    parsed = (_parse_record(raw, i, path, split, emotion, report) for i, raw in enumerate(data))
    return [record for record in parsed if record is not None]


def _load_json_list(path: Path, report: SkipReport) -> list:
    try:
        raw = read_bounded(path, MAX_LABEL_BYTES)
    except OSError as exc:  # a FIFO, a device, a file over MAX_LABEL_BYTES, a broken link
        report.add(path, "unreadable label file", str(exc).removeprefix(f"{path}: "))
        return []
    try:
        text = raw.decode("utf-8-sig")  # copies re-saved by other tools may carry a BOM
    except UnicodeDecodeError as exc:
        detail = f"byte {exc.start} is not UTF-8; a cp949/euc-kr re-encoded copy? re-save it as UTF-8"
        report.add(path, "not UTF-8", detail)
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        report.add(path, "malformed JSON", f"line {exc.lineno} column {exc.colno}: {exc.msg}")
        return []
    except RecursionError:
        report.add(path, "malformed JSON", "nested deeper than Python's JSON reader allows; not a label file")
        return []
    if not isinstance(data, list):
        report.add(path, "malformed JSON", f"the top level is a {type(data).__name__}, expected a list of records")
        return []
    if not data:
        report.add(path, "empty label file", "the list of records is empty")
    return data


def _parse_record(
    raw: object, index: int, path: Path, split: str, emotion: Emotion, report: SkipReport
) -> LabelRecord | None:
    where = f"record #{index}"
    if not isinstance(raw, dict):
        report.add(path, "bad record", f"{where} is a {type(raw).__name__}, expected an object", record=where)
        return None
    filename = _text(raw.get("filename"))
    if not filename:
        report.add(path, "missing filename", f"{where} has no filename", record=where)
        return None
    uploader = raw.get("faceExp_uploader")
    try:
        label = parse_emotion(str(uploader))
    except KeyError:
        report.add(path, "unknown label", f"uploader label {uploader!r} is not one of {KOREAN_NAMES}", record=filename)
        return None
    if label != emotion:
        detail = f"uploader label {label.korean} in the {emotion.korean} label file"
        report.add(path, "label mismatch", detail, record=filename)
        return None
    return LabelRecord(
        filename=filename, label_file=str(path), source_split=split, emotion=label,
        annotations=tuple(_annotation(raw, letter, path, filename, report) for letter in ANNOTATORS),
        subject_id=subject_id_of(filename), gender=_text(raw.get("gender")),
        age=_age(raw.get("age"), path, filename, report), is_prof=_text(raw.get("isProf")),
        background=_text(raw.get("bg_uploader")),
    )  # fmt: skip


def _annotation(raw: dict, letter: str, path: Path, filename: str, report: SkipReport) -> Annotation:
    key = f"annot_{letter}"
    entry = raw.get(key)
    if not isinstance(entry, dict):
        state = "missing" if entry is None else f"a {type(entry).__name__}, not an object"
        report.add(path, "bad annotation", f"{key} is {state}; it cannot agree", action="kept", record=filename)
        return Annotation("", None)
    answer = entry.get("faceExp")
    if not isinstance(answer, str):
        detail = f"{key}.faceExp is {answer!r}; it cannot agree"
        report.add(path, "bad annotation", detail, action="kept", record=filename)
        answer = ""
    return Annotation(nfc(answer).strip(), _box(entry.get("boxes")), _text(entry.get("bg")))


def _box(raw: object) -> tuple[float, float, float, float] | None:
    if not isinstance(raw, dict):
        return None
    try:
        x1, y1, x2, y2 = (float(raw[key]) for key in BOX_KEYS)
    except (KeyError, TypeError, ValueError):
        return None
    return (x1, y1, x2, y2) if all(math.isfinite(v) for v in (x1, y1, x2, y2)) else None


def _age(value: object, path: Path, filename: str, report: SkipReport) -> int | None:
    """Ages are decades, an int in the release and a string in some copies; anything else is kept as unknown."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value.strip())
    report.add(path, "bad age", f"age {value!r} is not a number; kept with the age unknown", "kept", filename)
    return None


def _text(value: object) -> str:
    return "" if value is None else nfc(str(value)).strip()


def _names(answer: str, emotion: Emotion) -> bool:
    """Whether an annotator's answer names the emotion ('알수없음' and "" name none)."""
    try:
        return parse_emotion(answer) == emotion
    except KeyError:
        return False


class AIHubDownload:
    """A real AI-Hub download (or the public sample release): `prepare()` only checks that the folder is there."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def prepare(self) -> Path:
        if not self.root.is_dir():
            raise FileNotFoundError(f"AI-Hub dataset folder {self.root} does not exist: give data.source.root=PATH, "
                                    "the folder above 1.Training/ and 2.Validation/ (zips extracted)")
        return self.root.resolve()
