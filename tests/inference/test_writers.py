"""Annotated pictures: ultralytics' Annotator draws each face's box and its Hangul label, and never downloads a font."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from kemotion.inference.pipeline import Face
from kemotion.inference.writers import BOX_COLOUR, annotate

GREY = 100
BOX = (60.0, 80.0, 200.0, 220.0)  # x1, y1, x2, y2: room above it for the label


def face(korean: str = "기쁨", box=BOX) -> Face:
    return Face(box, 0.9, "happy", korean, {"happy": 0.93})


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Every attempt to reach a host (ultralytics' check_font downloads a font it cannot find), refused and listed."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_a_face_gets_its_box_and_its_label_above_it_and_nothing_else_changes(no_network):
    image = np.full((240, 320, 3), GREY, np.uint8)
    drawn = annotate(image, [face()])
    assert (image == GREY).all()  # a copy is drawn on
    x1, y1, x2, y2 = map(int, BOX)
    for y, x in [((y1 + y2) // 2, x1), ((y1 + y2) // 2, x2), (y1, (x1 + x2) // 2), (y2, (x1 + x2) // 2)]:
        assert tuple(drawn[y, x]) == BOX_COLOUR  # the four sides
    assert (drawn[y1 + 5:y2 - 5, x1 + 5:x2 - 5] == GREY).all()  # the face itself is left as it is
    label = drawn[:y1, x1:]
    assert (label == BOX_COLOUR).all(axis=2).sum() > 100  # the label's background, above the box
    assert (label.min(axis=2) > 200).any()  # and its white text
    changed = (drawn != GREY).any(axis=2)
    changed[:y1, x1:] = False
    changed[y1:y2 + 1, x1:x2 + 1] = False
    assert not changed.any()  # nothing outside the box and its label
    assert no_network == []


def test_hangul_is_drawn_in_its_own_glyphs_without_a_font_download(no_network):
    """A font without Hangul (what Annotator falls back on when a download fails) draws every syllable as the same
    empty box: 기쁨 and 슬픔 would look alike."""
    image = np.full((240, 320, 3), GREY, np.uint8)
    happy, sad = (annotate(image, [face(korean)])[:80, 60:] for korean in ("기쁨", "슬픔"))
    assert (happy != sad).any(axis=2).sum() > 20
    assert no_network == []


def test_a_box_at_the_top_gets_its_label_inside(no_network):
    image = np.full((240, 320, 3), GREY, np.uint8)
    drawn = annotate(image, [face(box=(60.0, 0.0, 200.0, 140.0))])
    assert (drawn[2:30, 62:199] == BOX_COLOUR).all(axis=2).sum() > 100  # the label's background, inside the box
    assert (drawn[141:] == GREY).all()
