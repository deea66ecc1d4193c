"""A cluttered selfie: a background of the uploader's category, face-like distractors, the main person on top.

The clutter is the point: faces on posters, statues and passers-by show *other* expressions, so a classifier fed
the whole image (resized down) does worse than one fed the annotated face crop — the paper's reason for YOLO.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from kemotion.core.emotions import EMOTIONS, Emotion
from kemotion.data.synthetic.face import (
    BGR,
    Appearance,
    Box,
    Expression,
    Pose,
    draw_person,
    face_box,
    sample_appearance,
    sample_expression,
)


@dataclass(frozen=True)
class Background:
    category: str  # AI-Hub's bg_uploader value (Korean, may contain '/')
    palette: tuple[BGR, ...]


BACKGROUNDS: tuple[Background, ...] = (
    Background("공공시설/종교/의료시설", ((235, 235, 230), (200, 210, 215), (230, 200, 170), (170, 170, 160))),
    Background("행사/사무공간", ((200, 215, 225), (150, 150, 150), (60, 80, 110), (30, 30, 30))),
    Background("도심 환경", ((160, 160, 160), (230, 200, 150), (70, 70, 70), (40, 60, 200))),
    Background("숙박 및 거주공간", ((90, 130, 180), (190, 215, 235), (60, 90, 130), (140, 120, 160))),
    Background("자연환경", ((60, 140, 70), (40, 100, 40), (235, 200, 150), (70, 110, 140))),
    Background("문화유산", ((40, 40, 150), (150, 160, 170), (80, 100, 90), (50, 70, 100))),
    Background("스포츠/레저시설", ((70, 160, 60), (200, 120, 30), (30, 130, 240), (240, 240, 240))),
)

FACE_AREA_RANGE = (0.11, 0.37)  # paper: the face covers 10-40 % of the frame (box area / image area)
EDGE_MARGIN = 0.03  # the main face box stays this fraction of the image size away from the border
MAX_TILT_DEGREES = 6.0
DISTRACTOR_COUNT_RANGE = (1, 4)
DISTRACTOR_SIZE_RANGE = (0.2, 0.6)  # distractor face size relative to the main face (linear)
DISTRACTOR_MAX_TILT_DEGREES = 12.0
PLACEMENT_ATTEMPTS = 40
# Footprint of each distractor kind in face units (left, top, right, bottom), x in units of the face width.
FOOTPRINTS = {"poster": (-1.7, -1.5, 1.7, 1.7), "statue": (-1.4, -1.3, 1.4, 2.6), "passer-by": (-2.4, -1.4, 2.4, 3.3)}
STONE_COLOURS: tuple[BGR, ...] = ((150, 150, 150), (110, 120, 125), (60, 90, 120))  # grey stone, bronze
CLUTTER_COUNT_RANGE = {"rectangle": (6, 16), "hatch": (1, 4), "ellipse": (2, 6), "line": (4, 12)}
COLOUR_JITTER = 25
TEXTURE_CELL = 32  # pixels per cell of the low-frequency background texture
TEXTURE_STRENGTH = 14  # grey levels
TEXTURE_COLOUR_SHARE = 0.3
LIGHT_GRADIENT_RANGE = (0.0, 0.3)  # brightness difference across the image (side light)
BRIGHTNESS_RANGE = (0.8, 1.15)
SENSOR_NOISE = 4.0  # grey levels


def compose_scene(rng: np.random.Generator, width: int, height: int, appearance: Appearance,
                  expression: Expression, emotion: Emotion, background: Background) -> tuple[np.ndarray, Box]:
    """Draw one upright BGR image; return it with the main face's annotator-style box."""
    canvas = draw_background(rng, width, height, background.palette)
    pose = place_main_face(rng, width, height, appearance)
    box = face_box(appearance, pose)
    _draw_distractors(rng, canvas, box, pose.scale, emotion, background.palette)
    draw_person(canvas, appearance, expression, pose)
    return _apply_camera(rng, canvas), box


def place_main_face(rng: np.random.Generator, width: int, height: int, appearance: Appearance) -> Pose:
    """A pose whose box covers a random 11-37 % of the image area at a random position, fully inside."""
    tilt = float(rng.uniform(-MAX_TILT_DEGREES, MAX_TILT_DEGREES))
    min_x, min_y, max_x, max_y = face_box(appearance, Pose(0.0, 0.0, 1.0, tilt))  # at one pixel per unit
    usable_w, usable_h = width * (1 - 2 * EDGE_MARGIN), height * (1 - 2 * EDGE_MARGIN)
    scale = np.sqrt(rng.uniform(*FACE_AREA_RANGE) * width * height / ((max_x - min_x) * (max_y - min_y)))
    scale = min(scale, usable_w / (max_x - min_x), usable_h / (max_y - min_y))
    x = _uniform(rng, width * EDGE_MARGIN - min_x * scale, width * (1 - EDGE_MARGIN) - max_x * scale)
    y = _uniform(rng, height * EDGE_MARGIN - min_y * scale, height * (1 - EDGE_MARGIN) - max_y * scale)
    return Pose(x, y, float(scale), tilt)


def draw_background(rng: np.random.Generator, width: int, height: int, palette: tuple[BGR, ...]) -> np.ndarray:
    """A gradient with low-frequency texture, then rectangles, hatched panels, ellipses and lines."""
    canvas = _textured_gradient(rng, width, height, palette)
    size = min(width, height)
    counts = {kind: rng.integers(low, high + 1) for kind, (low, high) in CLUTTER_COUNT_RANGE.items()}
    for _ in range(counts["rectangle"]):
        x, y = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(size // 20, size // 2, size=2)
        filled = rng.uniform() < 0.7
        cv2.rectangle(canvas, (x, y), (x + w, y + h), _pick(rng, palette), -1 if filled else int(rng.integers(2, 8)))
    for _ in range(counts["hatch"]):
        x, y = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(size // 10, size // 3, size=2)
        step, colour = int(rng.integers(6, 20)), _pick(rng, palette)
        for offset in range(0, w + h, step):
            cv2.line(canvas, (x + offset, y), (x + offset - h, y + h), colour, 2, cv2.LINE_AA)
    for _ in range(counts["ellipse"]):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(size // 30, size // 6)), int(rng.integers(size // 30, size // 6)))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, _pick(rng, palette), -1, cv2.LINE_AA)
    for _ in range(counts["line"]):
        start = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(canvas, start, end, _pick(rng, palette), int(rng.integers(2, 10)), cv2.LINE_AA)
    return canvas


def _textured_gradient(rng: np.random.Generator, width: int, height: int, palette: tuple[BGR, ...]) -> np.ndarray:
    """Computed on a coarse grid and resized up: cheap at any resolution."""
    cells_x, cells_y = max(2, width // TEXTURE_CELL), max(2, height // TEXTURE_CELL)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:cells_y, 0:cells_x]
    ramp = (xs / cells_x * np.cos(angle) + ys / cells_y * np.sin(angle))[..., None]
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    first, second = np.array(_pick(rng, palette), float), np.array(_pick(rng, palette), float)
    texture = rng.normal(0, TEXTURE_STRENGTH, (cells_y, cells_x, 1))  # mostly brightness, a little colour
    texture = texture + rng.normal(0, TEXTURE_STRENGTH * TEXTURE_COLOUR_SHARE, (cells_y, cells_x, 3))
    coarse = first + ramp * (second - first) + texture
    coarse = np.clip(coarse, 0, 255).astype(np.float32)
    return np.ascontiguousarray(np.clip(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255)
                                .astype(np.uint8))


def _draw_distractors(rng: np.random.Generator, canvas: np.ndarray, main_box: Box, main_scale: float,
                      emotion: Emotion, palette: tuple[BGR, ...]) -> None:
    """1-4 smaller faces with other expressions, each clipped to its own footprint away from the main box."""
    height, width = canvas.shape[:2]
    taken = [main_box]
    others = [e for e in EMOTIONS if e != emotion]
    for _ in range(rng.integers(DISTRACTOR_COUNT_RANGE[0], DISTRACTOR_COUNT_RANGE[1] + 1)):
        kind = str(rng.choice(list(FOOTPRINTS)))
        appearance = sample_appearance(rng, feminine=rng.uniform() < 0.5, senior=rng.uniform() < 0.2)
        expression = sample_expression(others[rng.integers(len(others))], rng)
        for _attempt in range(PLACEMENT_ATTEMPTS):
            scale = main_scale * rng.uniform(*DISTRACTOR_SIZE_RANGE)
            tilt = rng.uniform(-DISTRACTOR_MAX_TILT_DEGREES, DISTRACTOR_MAX_TILT_DEGREES)
            pose = Pose(float(rng.uniform(0, width)), float(rng.uniform(0, height)), float(scale), float(tilt))
            footprint = _footprint(kind, appearance, pose)
            if _inside(face_box(appearance, pose), width, height) and not any(_overlap(footprint, t) for t in taken):
                break
        else:
            continue
        taken.append(footprint)
        _draw_distractor(rng, canvas, kind, appearance, expression, pose, footprint, palette)


def _draw_distractor(rng: np.random.Generator, canvas: np.ndarray, kind: str, appearance: Appearance,
                     expression: Expression, pose: Pose, footprint: Box, palette: tuple[BGR, ...]) -> None:
    """Draw into a view of the canvas limited to the footprint, so nothing spills onto the main face."""
    height, width = canvas.shape[:2]
    left, top = max(0, int(footprint[0])), max(0, int(footprint[1]))
    right, bottom = min(width, int(np.ceil(footprint[2]))), min(height, int(np.ceil(footprint[3])))
    view = canvas[top:bottom, left:right]
    local = replace(pose, x=pose.x - left, y=pose.y - top)
    if kind == "poster":
        view[:] = _pick(rng, palette)
        draw_person(view, appearance, expression, local)
        cv2.rectangle(view, (0, 0), (view.shape[1] - 1, view.shape[0] - 1), _pick(rng, palette), 3)
    elif kind == "statue":
        stone = STONE_COLOURS[rng.integers(len(STONE_COLOURS))]
        statue = replace(appearance, skin=stone, hair=tuple(int(c * 0.8) for c in stone), glasses=False)
        plinth_top = int(local.y + 1.1 * local.scale)
        half_width = int(appearance.face_width * local.scale)
        cv2.rectangle(view, (int(local.x) - half_width, plinth_top), (int(local.x) + half_width, view.shape[0]),
                      tuple(int(c * 0.9) for c in stone), -1)
        draw_person(view, statue, expression, local, body=False)
    else:  # a passer-by
        draw_person(view, appearance, expression, local)


def _footprint(kind: str, appearance: Appearance, pose: Pose) -> Box:
    left, top, right, bottom = FOOTPRINTS[kind]
    w = appearance.face_width
    return (pose.x + left * w * pose.scale, pose.y + top * pose.scale,
            pose.x + right * w * pose.scale, pose.y + bottom * pose.scale)


def _inside(box: Box, width: int, height: int) -> bool:
    return box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _apply_camera(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Side light, overall exposure and sensor noise, in one float pass."""
    height, width = image.shape[:2]
    angle, strength = rng.uniform(0, 2 * np.pi), rng.uniform(*LIGHT_GRADIENT_RANGE)
    corners = np.array([[-1, 1], [-1, 1]], dtype=np.float32)
    gain = rng.uniform(*BRIGHTNESS_RANGE) * (1 + strength / 2 * (corners * np.cos(angle) + corners.T * np.sin(angle)))
    gain = cv2.resize(gain.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    noise = rng.standard_normal((height, width), dtype=np.float32) * SENSOR_NOISE
    lit = image.astype(np.float32) * gain[..., None] + noise[..., None]
    return np.clip(lit, 0, 255).astype(np.uint8)


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Uniform in [low, high], tolerating high < low by rounding (a range squeezed to one point)."""
    return float(rng.uniform(low, max(low, high)))


def _pick(rng: np.random.Generator, palette: tuple[BGR, ...]) -> BGR:
    """A palette colour with a little random variation."""
    base = np.array(palette[rng.integers(len(palette))]) + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, 3)
    return tuple(int(c) for c in np.clip(base, 0, 255))  # type: ignore[return-value]
