"""One synthetic face: a subject's fixed appearance, an expression that encodes the emotion, and the drawing.

A face is drawn in *face units*: origin at the face centre, y pointing down, the face ellipse spans y in [-1, 1]
and x in [-face_width, face_width]. A `Pose` rotates (head tilt), scales (pixels per face unit) and translates
those points into the image, so every feature is a polygon drawn with OpenCV — no per-pixel Python.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, replace

import cv2
import numpy as np

from kemotion.core.emotions import EMOTIONS, Emotion

Box = tuple[float, float, float, float]  # min_x, min_y, max_x, max_y in pixels of the upright image
BGR = tuple[int, int, int]

# --- appearance (fixed per subject) -------------------------------------------------------------------------
SKIN_LIGHT: BGR = (196, 222, 250)  # skin tones are interpolated between these two (OpenCV's BGR order)
SKIN_DARK: BGR = (110, 150, 195)
HAIR_COLOURS: tuple[BGR, ...] = ((22, 22, 28), (28, 36, 52), (40, 58, 92), (62, 92, 140))
GREY_HAIR: BGR = (150, 150, 155)
SHIRT_COLOURS: tuple[BGR, ...] = ((40, 40, 40), (230, 230, 230), (140, 60, 30), (60, 60, 150), (80, 130, 80))
HAIR_STYLES = ("short", "bob", "long", "buzz")
LONG_HAIR_STYLES = ("bob", "long")
GLASSES_FRACTION = 0.3
GREY_HAIR_FRACTION = 0.6  # of senior subjects
FACE_WIDTH_RANGE = (0.70, 0.80)  # half-width / half-height; gives box width/height ≈ 0.73 like AI-Hub's boxes
CHIN_EXTENT = 1.06  # annotators' boxes end a little below the chin (face units)
HAIRLINE_RANGE = (-0.72, -0.56)

# --- feature geometry (face units) ---------------------------------------------------------------------------
EYE_X, EYE_Y, EYE_HALF_WIDTH, EYE_HALF_HEIGHT, IRIS_RADIUS = 0.30, -0.12, 0.13, 0.07, 0.06
BROW_Y, BROW_INNER_X, BROW_OUTER_X, BROW_ARCH = -0.34, 0.08, 0.46, 0.03
MOUTH_Y, LIP_THICKNESS = 0.50, 0.05
CHEEK_X, CHEEK_Y = 0.6, 0.22  # CHEEK_X as a fraction of the face half-width
EYE_WHITE: BGR = (235, 240, 240)
IRIS: BGR = (30, 30, 40)
MOUTH_INSIDE: BGR = (40, 30, 90)
TEETH: BGR = (225, 235, 240)
BLUSH_RED: BGR = (90, 80, 235)
GLASSES_FRAME: BGR = (25, 25, 25)
SUBPIXEL_BITS = 4  # OpenCV draws at 1/16 pixel precision


@dataclass(frozen=True)
class Appearance:
    """What a subject looks like in every one of their images."""

    skin: BGR
    hair: BGR
    hair_style: str
    face_width: float
    hairline: float  # y of the hairline at the centre (face units)
    hair_part: float  # slope of the hairline: a side parting
    glasses: bool
    brow_thickness: float
    shirt: BGR


def sample_appearance(rng: np.random.Generator, feminine: bool, senior: bool) -> Appearance:
    """A random subject: skin tone, hair colour and style, face shape, glasses."""
    skin = _mix(SKIN_LIGHT, SKIN_DARK, rng.uniform())
    hair = GREY_HAIR if senior and rng.uniform() < GREY_HAIR_FRACTION else HAIR_COLOURS[rng.integers(4)]
    styles = LONG_HAIR_STYLES if feminine else tuple(s for s in HAIR_STYLES if s not in LONG_HAIR_STYLES)
    return Appearance(
        skin=skin,
        hair=hair,
        hair_style=str(rng.choice(styles)),
        face_width=float(rng.uniform(*FACE_WIDTH_RANGE)),
        hairline=float(rng.uniform(*HAIRLINE_RANGE)),
        hair_part=float(rng.uniform(-0.15, 0.15)),
        glasses=bool(rng.uniform() < GLASSES_FRACTION),
        brow_thickness=float(rng.uniform(0.045, 0.07)),
        shirt=SHIRT_COLOURS[rng.integers(len(SHIRT_COLOURS))],
    )


# --- expression (varies per image) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Expression:
    """Facial-action parameters in face units; the emotion is encoded only through these."""

    mouth_curve: float  # corner lift: + smile, - frown
    mouth_open: float  # gap between the lips at the centre
    mouth_width: float  # half-width of the mouth
    mouth_skew: float  # one corner lower than the other
    mouth_wave: float  # wavy, trembling lip line
    brow_raise: float  # both brows up (+) or down (-)
    brow_slant: float  # inner ends up (+, sad) or down (-, angry) relative to the outer ends
    eye_open: float  # eye height relative to a neutral eye
    blush: float  # cheek redness, 0..1
    crease: float  # frown lines between the brows, 0..1


NEUTRAL = Expression(0.0, 0.0, 0.24, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)
# Prototypes by English alias. Confusable pairs (sad/hurt, anxious/embarrassed) differ only by subtle cues.
PROTOTYPES: dict[str, Expression] = {
    "happy": replace(NEUTRAL, mouth_curve=0.17, mouth_open=0.10, mouth_width=0.32, brow_raise=0.03,
                     eye_open=0.40, blush=0.2),
    "angry": replace(NEUTRAL, mouth_curve=-0.05, mouth_width=0.17, brow_raise=-0.05, brow_slant=-0.16,
                     eye_open=0.75, crease=1.0),
    "sad": replace(NEUTRAL, mouth_curve=-0.13, mouth_width=0.22, brow_raise=0.02, brow_slant=0.13, eye_open=0.8),
    "hurt": replace(NEUTRAL, mouth_curve=-0.09, mouth_open=0.05, mouth_width=0.22, mouth_skew=0.05,
                    brow_slant=0.10, eye_open=0.58, blush=0.15),
    "anxious": replace(NEUTRAL, mouth_curve=-0.03, mouth_open=0.05, mouth_width=0.16, mouth_wave=0.025,
                       brow_raise=0.11, brow_slant=0.06, eye_open=1.45, blush=0.1),
    "embarrassed": replace(NEUTRAL, mouth_curve=-0.01, mouth_open=0.09, mouth_width=0.19, mouth_wave=0.01,
                           brow_raise=0.08, brow_slant=0.03, eye_open=1.2, blush=0.3),
    "neutral": NEUTRAL,
}
VARIATION = Expression(0.03, 0.03, 0.025, 0.02, 0.008, 0.025, 0.03, 0.12, 0.07, 0.2)  # per-image std
INTENSITY_RANGE = (0.6, 1.2)  # how strongly the subject acts, relative to the prototype
LOWER_BOUNDS = Expression(-1.0, 0.0, 0.12, -1.0, 0.0, -1.0, -1.0, 0.25, 0.0, 0.0)
UPPER_BOUNDS = Expression(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0)


def sample_expression(emotion: Emotion, rng: np.random.Generator) -> Expression:
    """The prototype of `emotion` at a random intensity, every parameter jittered independently."""
    neutral, prototype = _vector(NEUTRAL), _vector(PROTOTYPES[emotion.english])
    intensity = rng.uniform(*INTENSITY_RANGE)
    values = neutral + intensity * (prototype - neutral) + rng.normal(0.0, _vector(VARIATION))
    return Expression(*np.clip(values, _vector(LOWER_BOUNDS), _vector(UPPER_BOUNDS)).tolist())


def prototype_distances(expression: Expression) -> np.ndarray:
    """Distance to each class prototype (index order of `EMOTIONS`), in units of the per-image variation."""
    prototypes = np.stack([_vector(PROTOTYPES[e.english]) for e in EMOTIONS])
    return np.linalg.norm((prototypes - _vector(expression)) / _vector(VARIATION), axis=1)


def _vector(expression: Expression) -> np.ndarray:
    return np.array(astuple(expression), dtype=np.float64)


# --- drawing -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pose:
    x: float  # face centre in pixels
    y: float
    scale: float  # pixels per face unit (half the face height)
    tilt: float  # head tilt in degrees, clockwise


def face_box(appearance: Appearance, pose: Pose) -> Box:
    """The tight annotator-style box: forehead to just below the chin, around the tilted face."""
    outline = _ellipse(0.0, 0.0, appearance.face_width, 1.0)
    pixels = _Painter.to_pixels(np.vstack([outline, [[0.0, CHIN_EXTENT]]]), pose)
    (min_x, min_y), (max_x, max_y) = pixels.min(axis=0), pixels.max(axis=0)
    return float(min_x), float(min_y), float(max_x), float(max_y)


def draw_person(canvas: np.ndarray, appearance: Appearance, expression: Expression, pose: Pose,
                body: bool = True) -> Box:
    """Draw a head (and shoulders) into `canvas` in place; return the face's annotator-style box."""
    paint, a, w = _Painter(canvas, pose), appearance, appearance.face_width
    if body:
        paint.fill(_ellipse(0.0, 2.2, 2.3 * w, 0.85), a.shirt)
        paint.fill(np.array([[-0.42 * w, 0.5], [0.42 * w, 0.5], [0.42 * w, 1.8], [-0.42 * w, 1.8]]),
                   _shade(a.skin, 0.85))
    _draw_hair_back(paint, a)
    for side in (-1, 1):
        paint.fill(_ellipse(side * w, -0.05, 0.1, 0.18), _shade(a.skin, 0.92))
    paint.fill(_ellipse(0.0, 0.0, w, 1.0), a.skin)
    _draw_hair_front(paint, a)
    if expression.blush > 0.05:
        blush = _mix(a.skin, BLUSH_RED, 0.6 * expression.blush)
        for side in (-1, 1):
            paint.fill(_ellipse(side * CHEEK_X * w, CHEEK_Y, 0.16, 0.09), blush)
    _draw_eyes(paint, a, expression)
    _draw_brows(paint, a, expression)
    nose = np.array([[0.02, -0.05], [0.05, 0.22], [-0.03, 0.25]])
    paint.line(nose, _shade(a.skin, 0.72), 0.03)
    _draw_mouth(paint, a, expression)
    if a.glasses:
        _draw_glasses(paint, w)
    return face_box(appearance, pose)


def _draw_hair_back(paint: _Painter, a: Appearance) -> None:
    w = a.face_width
    if a.hair_style == "long":
        paint.fill(_ellipse(0.0, 0.25, 1.3 * w, 1.3), a.hair)
    if a.hair_style in ("long", "bob"):
        paint.fill(_ellipse(0.0, -0.08, 1.22 * w, 1.1), a.hair)
    elif a.hair_style == "short":
        paint.fill(_ellipse(0.0, -0.2, 1.08 * w, 0.95), a.hair)
    else:  # buzz cut: a thin cap
        paint.fill(_ellipse(0.0, -0.06, 1.03 * w, 1.0), a.hair)


def _draw_hair_front(paint: _Painter, a: Appearance) -> None:
    """Hair covering the forehead down to the hairline (a side parting tilts it)."""
    top = _ellipse(0.0, 0.0, 1.04 * a.face_width, 1.04, start=np.pi, stop=2 * np.pi)
    hairline = a.hairline + (0.1 if a.hair_style == "buzz" else 0.0) + a.hair_part * top[:, 0]
    paint.fill(np.column_stack([top[:, 0], np.minimum(top[:, 1], hairline)]), a.hair)


def _draw_eyes(paint: _Painter, a: Appearance, e: Expression) -> None:
    half_height = EYE_HALF_HEIGHT * e.eye_open
    for side in (-1, 1):
        x = side * EYE_X
        paint.fill(_ellipse(x, EYE_Y, EYE_HALF_WIDTH, half_height), EYE_WHITE)
        paint.fill(_ellipse(x, EYE_Y, IRIS_RADIUS, min(IRIS_RADIUS, half_height)), IRIS)
        upper_lid = _ellipse(x, EYE_Y, EYE_HALF_WIDTH, half_height, start=np.pi, stop=2 * np.pi)
        paint.line(upper_lid, _shade(a.skin, 0.45), 0.025)


def _draw_brows(paint: _Painter, a: Appearance, e: Expression) -> None:
    colour = _shade(a.hair, 0.8) if a.hair != GREY_HAIR else _shade(GREY_HAIR, 0.6)
    for side in (-1, 1):
        inner = (side * BROW_INNER_X, BROW_Y - e.brow_raise - e.brow_slant / 2)
        outer = (side * BROW_OUTER_X, BROW_Y - e.brow_raise + e.brow_slant / 2)
        middle = ((inner[0] + outer[0]) / 2, (inner[1] + outer[1]) / 2 - BROW_ARCH)
        paint.line(np.array([inner, middle, outer]), colour, a.brow_thickness)
    if e.crease > 0.5:
        crease = _shade(a.skin, 0.75)
        for x in (-0.04, 0.04):
            paint.line(np.array([[x, BROW_Y - 0.02], [x * 1.3, BROW_Y + 0.1]]), crease, 0.015)


def _draw_mouth(paint: _Painter, a: Appearance, e: Expression) -> None:
    """A lip line bent by the curve, skew and wave; opened into a dark gap (teeth when smiling)."""
    t = np.linspace(-1.0, 1.0, 25)  # corner to corner
    x = t * e.mouth_width
    centre = MOUTH_Y - e.mouth_curve * t**2 + e.mouth_skew * t + e.mouth_wave * np.sin(3 * np.pi * t)
    gap = e.mouth_open * (1.0 - t**2)
    lips = _mix(a.skin, BLUSH_RED, 0.45)
    if e.mouth_open < 0.02:
        paint.line(np.column_stack([x, centre]), _shade(lips, 0.8), LIP_THICKNESS)
        return
    upper, lower = np.column_stack([x, centre - 0.35 * gap]), np.column_stack([x, centre + 0.65 * gap])
    paint.fill(np.vstack([upper, lower[::-1]]), MOUTH_INSIDE)
    if e.mouth_curve > 0.08:
        paint.fill(np.vstack([upper, (upper + [0.0, 0.3 * e.mouth_open])[::-1]]), TEETH)
    paint.line(upper, lips, LIP_THICKNESS)
    paint.line(lower, lips, LIP_THICKNESS)


def _draw_glasses(paint: _Painter, w: float) -> None:
    for side in (-1, 1):
        paint.line(_ellipse(side * EYE_X, EYE_Y, 0.17, 0.13), GLASSES_FRAME, 0.025, closed=True)
        paint.line(np.array([[side * (EYE_X + 0.17), EYE_Y], [side * w, EYE_Y - 0.03]]), GLASSES_FRAME, 0.02)
    paint.line(np.array([[-EYE_X + 0.17, EYE_Y], [EYE_X - 0.17, EYE_Y]]), GLASSES_FRAME, 0.02)


class _Painter:
    """Draws polygons given in face units into a canvas at a pose, anti-aliased at sub-pixel precision."""

    def __init__(self, canvas: np.ndarray, pose: Pose) -> None:
        self.canvas, self.pose = canvas, pose

    @staticmethod
    def to_pixels(points: np.ndarray, pose: Pose) -> np.ndarray:
        angle = np.deg2rad(pose.tilt)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return np.array([pose.x, pose.y]) + pose.scale * points @ rotation.T

    def _fixed_point(self, points: np.ndarray) -> np.ndarray:
        return np.round(self.to_pixels(points, self.pose) * (1 << SUBPIXEL_BITS)).astype(np.int32)

    def fill(self, points: np.ndarray, colour: BGR) -> None:
        cv2.fillPoly(self.canvas, [self._fixed_point(points)], colour, cv2.LINE_AA, SUBPIXEL_BITS)

    def line(self, points: np.ndarray, colour: BGR, thickness: float, closed: bool = False) -> None:
        pixels = max(1, round(thickness * self.pose.scale))
        cv2.polylines(self.canvas, [self._fixed_point(points)], closed, colour, pixels, cv2.LINE_AA, SUBPIXEL_BITS)


def _ellipse(cx: float, cy: float, rx: float, ry: float, start: float = 0.0, stop: float = 2 * np.pi,
             n: int = 48) -> np.ndarray:
    angles = np.linspace(start, stop, n)
    return np.column_stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)])


def _mix(a: BGR, b: BGR, t: float) -> BGR:
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _shade(colour: BGR, factor: float) -> BGR:
    return tuple(int(min(255, round(c * factor))) for c in colour)  # type: ignore[return-value]
