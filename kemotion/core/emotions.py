"""The seven AI-Hub emotion classes: one table of Korean names, English aliases and AI-Hub abbreviations.

Korean class names are data: everything else looks them up here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Emotion:
    index: int
    korean: str
    english: str
    abbreviation: str  # folder names of AI-Hub's public sample release, e.g. EMOIMG_ang_SAMPLE


# Class order used for every label index, confusion matrix and report (the paper's Table 1 order).
EMOTIONS: tuple[Emotion, ...] = (
    Emotion(0, "기쁨", "happy", "happy"),
    Emotion(1, "분노", "angry", "ang"),
    Emotion(2, "슬픔", "sad", "sad"),
    Emotion(3, "불안", "anxious", "anx"),
    Emotion(4, "당황", "embarrassed", "emb"),
    Emotion(5, "상처", "hurt", "pain"),
    Emotion(6, "중립", "neutral", "normal"),
)
NUM_CLASSES = len(EMOTIONS)
ENGLISH_NAMES = tuple(e.english for e in EMOTIONS)
KOREAN_NAMES = tuple(e.korean for e in EMOTIONS)
UNKNOWN_ANSWER = "알수없음"  # an annotator's "cannot tell": never agrees with any class

_BY_NAME = {
    name.casefold(): e for e in EMOTIONS for name in (e.korean, e.english, e.abbreviation)
}


def nfc(text: str) -> str:
    """Korean names may arrive NFD-normalised (archives made on macOS); compare them as NFC."""
    return unicodedata.normalize("NFC", text)


def parse_emotion(name: str) -> Emotion:
    """The emotion named by a Korean name (NFC or NFD), an English alias or an AI-Hub abbreviation.

    Raises KeyError naming the value when it is none of them (e.g. '알수없음').
    """
    try:
        return _BY_NAME[nfc(str(name)).strip().casefold()]
    except KeyError:
        raise KeyError(f"unknown emotion label {name!r}") from None
