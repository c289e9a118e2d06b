"""Awkward and broken image files, crafted from real Fruits-360 images.

Shared by the decoder tests and the pipeline tests: each maker writes one file and
returns its path.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import FRUITS_360

SOURCE = sorted((FRUITS_360 / "Training" / "Kiwi").iterdir())[0]
EXIF_ORIENTATION = 0x0112


def source_rgb() -> Image.Image:
    """The real image every crafted file starts from (100x100 RGB JPEG)."""
    with Image.open(SOURCE) as image:
        return image.convert("RGB")


def _jpeg_bytes(image: Image.Image, **options) -> bytes:
    encoded = io.BytesIO()
    image.save(encoded, format="JPEG", quality=95, **options)
    return encoded.getvalue()


# --- files that must be rejected, with (a part of) the reason they must get ---


def empty_file(folder: Path) -> Path:
    (path := folder / "empty.jpg").write_bytes(b"")
    return path


def truncated_jpeg(folder: Path) -> Path:
    content = SOURCE.read_bytes()
    (path := folder / "truncated.jpg").write_bytes(content[: len(content) // 2])
    return path


def html_as_jpeg(folder: Path) -> Path:
    (path := folder / "page.jpg").write_text("<!doctype html><html><body>404</body></html>")
    return path


def heic_photo(folder: Path) -> Path:
    """The start of an HEIC file (an ISO-BMFF 'ftyp heic' box): phones' format."""
    header = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    (path := folder / "IMG_0001.HEIC").write_bytes(header)
    return path


def oversized_png(folder: Path) -> Path:
    """A real PNG whose header claims 12000x10000 pixels (120 Mpx, over the 100 Mpx limit).

    Under twice PIL's own limit, where PIL only warns: the stated limit must be
    enforced from the header, before any pixel is decoded (1.2 GB here).
    """
    encoded = io.BytesIO()
    source_rgb().save(encoded, format="PNG")
    content = bytearray(encoded.getvalue())
    # IHDR is the first chunk: length (4), type (4), width (4), height (4)..., then its CRC.
    content[16:24] = struct.pack(">II", 12_000, 10_000)
    content[29:33] = struct.pack(">I", zlib.crc32(bytes(content[12:29])))
    (path := folder / "huge.png").write_bytes(bytes(content))
    return path


def dds_header(folder: Path) -> Path:
    """A DirectDraw Surface header with no pixel format: PIL's DDS plugin raised
    NotImplementedError on it (no decoder error type), which no caller expects."""
    header = b"DDS " + struct.pack("<I", 124) + bytes(120)
    (path := folder / "texture.jpg").write_bytes(header)
    return path


def eps_file(folder: Path) -> Path:
    """Encapsulated PostScript: PIL would hand it to Ghostscript."""
    (path := folder / "drawing.png").write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n"
    )
    return path


REJECTED = {
    empty_file: "empty file",
    dds_header: "not an image in a supported format",
    eps_file: "not an image in a supported format",
    oversized_png: "12000x10000 pixels, more than 100 Mpx",
    truncated_jpeg: "corrupt or truncated image",
    html_as_jpeg: "not an image in a supported format",
    heic_photo: "not an image in a supported format",
}


# --- files in other forms that must be featurized ---


def grayscale_jpeg(folder: Path) -> Path:
    (path := folder / "gray.jpg").write_bytes(_jpeg_bytes(source_rgb().convert("L")))
    return path


def cmyk_jpeg(folder: Path) -> Path:
    (path := folder / "cmyk.jpg").write_bytes(_jpeg_bytes(source_rgb().convert("CMYK")))
    return path


def transparent_png(folder: Path) -> Path:
    """RGBA: the fruit opaque, the (white) background made transparent and black."""
    rgba = np.asarray(source_rgb().convert("RGBA")).copy()
    background = rgba[..., :3].min(axis=2) > 235
    rgba[background] = (0, 0, 0, 0)
    Image.fromarray(rgba, "RGBA").save(path := folder / "cutout.PNG")
    return path


def palette_png_with_transparency(folder: Path) -> Path:
    palette = source_rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = int(np.asarray(palette)[0, 0])  # the corner's colour
    palette.save(path := folder / "palette.png", transparency=palette.info["transparency"])
    return path


def sixteen_bit_png(folder: Path) -> Path:
    gray = np.asarray(source_rgb().convert("L"), dtype=np.uint16) * 257
    image = Image.fromarray(gray)
    assert image.mode == "I;16"
    image.save(path := folder / "gray16.png")
    return path


def exif_rotated_jpeg(folder: Path) -> Path:
    """Stored rotated a quarter turn, with the EXIF tag saying how to turn it upright."""
    stored = source_rgb().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # display rotated 90 degrees clockwise
    (path := folder / "rotated.jpg").write_bytes(_jpeg_bytes(stored, exif=exif.tobytes()))
    return path


def large_phone_photo(folder: Path) -> Path:
    """6000x4000, like a phone camera's, upper-case extension."""
    large = source_rgb().resize((6000, 4000), Image.Resampling.BILINEAR)
    (path := folder / "DSC 0001 Pêche.JPG").write_bytes(_jpeg_bytes(large))
    return path


ACCEPTED = [
    grayscale_jpeg,
    cmyk_jpeg,
    transparent_png,
    palette_png_with_transparency,
    sixteen_bit_png,
    exif_rotated_jpeg,
    large_phone_photo,
]
