"""An image is opened only as a format kemotion lists: an EPS named `.jpg` never reaches PIL's EPS plugin (which hands
the file to Ghostscript where it is installed) and is a skip row naming the file and its format. A TIFF, admitted for
predict, is held to PIL's decompression-bomb limit like every other format."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import EpsImagePlugin, Image, TiffImagePlugin

from kemotion.data.images import BadImage, load_rgb, probe_image, upright_size
from kemotion.inference.sources import Skip, open_source


def hostile_eps(path: Path, marker: Path) -> Path:
    """A PostScript program named like a photo: run by Ghostscript, it would create `marker`."""
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n"
                     + f"({marker}) (w) file closefile\n".encode() + b"showpage\n%%EOF\n")
    return path


@pytest.fixture
def eps_plugin_watched(monkeypatch, tmp_path):
    """Records every use of PIL's EPS plugin. Ghostscript is replaced by what running the file would do (create the
    marker), so the test sees a run whether or not Ghostscript is installed here."""
    marker = tmp_path / "ghostscript_ran"
    used = []
    original_open = EpsImagePlugin.EpsImageFile._open

    def watched_open(self):
        used.append("EpsImageFile._open")
        return original_open(self)

    def ghostscript(*args, **kwargs):
        used.append("Ghostscript")
        marker.write_text("the EPS file ran")
        raise OSError("stand-in for Ghostscript")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", watched_open)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    return marker, used


@pytest.mark.parametrize("read", [probe_image, load_rgb, upright_size])
def test_an_eps_named_jpg_is_refused_unopened(tmp_path, eps_plugin_watched, read):
    marker, used = eps_plugin_watched
    photo = hostile_eps(tmp_path / "photo.jpg", marker)
    with pytest.raises(BadImage, match=r"photo\.jpg: unsupported image: EPS content") as raised:
        read(photo)
    assert raised.value.kind == "unsupported image"
    assert used == [] and not marker.exists()


def test_an_eps_in_a_predict_source_is_a_skip_row(tmp_path, eps_plugin_watched):
    marker, used = eps_plugin_watched
    folder = tmp_path / "photos"
    folder.mkdir()
    hostile_eps(folder / "photo.jpg", marker)
    (skip,) = open_source(folder).frames()
    assert isinstance(skip, Skip) and skip.source == str(folder / "photo.jpg")
    assert skip.reason.startswith("unsupported image: EPS content; kemotion reads JPEG, PNG, BMP, WEBP, TIFF only")
    assert used == [] and not marker.exists()


def test_a_tiff_decompression_bomb_is_a_skip_row_and_never_decoded(tmp_path, monkeypatch):
    """A few hundred bytes of LZW that declare more pixels than PIL's limit (lowered here, so the file stays small):
    refused when opened, before a pixel buffer is made."""
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.new("L", (200, 100)).save(folder / "bomb.tif", compression="tiff_lzw")
    assert (folder / "bomb.tif").stat().st_size < 1000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # PIL refuses above twice this: 20,000 px is a bomb
    decoded = []
    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "load", lambda self: decoded.append(self))
    (skip,) = open_source(folder).frames()
    assert skip.source == str(folder / "bomb.tif") and decoded == []
    assert skip.reason.startswith("unsupported image: Image size (20000 pixels) exceeds limit of 10000 pixels")
    for read in (probe_image, load_rgb, upright_size):
        with pytest.raises(BadImage, match=r"bomb\.tif: unsupported image: .*decompression bomb"):
            read(folder / "bomb.tif")
