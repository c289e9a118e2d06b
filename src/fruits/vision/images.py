"""Image bytes to model inputs: decode (any common format, EXIF, modes) and preprocess.

Runs wherever images are: Spark's Python workers, ``fruits-predict``, the reports.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Zero bytes: a failed upload, or a symbolic link to nothing (read as no bytes).
EMPTY_FILE = "empty file (no bytes, or a link to nothing)"


class UnreadableImageError(ValueError):
    """Bytes that do not decode to an image; the message is the reason kept for the user."""


# Fruits-360 backgrounds are white: transparent pixels become white, not black.
_BACKGROUND = (255, 255, 255)
# Refuse to decode more pixels than this. Checked from the header before any pixel is
# decoded: PIL's own guard only warns up to twice its limit and raises beyond.
MAX_IMAGE_PIXELS = 100_000_000
# The formats decoded; PIL's other plugins (EPS runs Ghostscript, exotic ones raise errors
# of any type) never see untrusted bytes.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")


def decode_image(
    content: bytes, input_size: int, max_pixels: int = MAX_IMAGE_PIXELS
) -> Image.Image:
    """Decode encoded image bytes into an upright 8-bit RGB image.

    - JPEGs much larger than ``input_size`` are decoded at a reduced scale (1/2..1/8,
      never below ``input_size``), so a 6000x4000 phone photo costs a 750x500 decode.
    - The EXIF orientation tag is applied.
    - Grayscale, palette, CMYK and 16-bit images become RGB; transparent pixels
      (RGBA, LA, palette transparency) are composited on white.

    Raises:
        UnreadableImageError: Empty, truncated, corrupt, oversized or not an image.
    """
    if not content:
        raise UnreadableImageError(EMPTY_FILE)
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(io.BytesIO(content), formats=FORMATS) as image:
            if image.width * image.height > max_pixels:
                raise UnreadableImageError(
                    f"image too large ({image.width}x{image.height} pixels, more than "
                    f"{max_pixels / 1e6:g} Mpx)"
                )
            image.draft("RGB", (input_size, input_size))
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # no copy of the pixels
            return _to_rgb(image)
    except UnreadableImageError:
        raise
    except UnidentifiedImageError as error:
        raise UnreadableImageError(
            "not an image in a supported format (JPEG, PNG, WebP, BMP, GIF, TIFF)"
        ) from error
    except Image.DecompressionBombError as error:
        raise UnreadableImageError(f"image too large ({error})") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise UnreadableImageError(f"corrupt or truncated image ({error})") from error
    except MemoryError as error:
        raise UnreadableImageError("image too large to decode in the memory available") from error
    except Exception as error:  # noqa: BLE001 - any failure on untrusted bytes is a rejection
        raise UnreadableImageError(
            f"could not be decoded ({type(error).__name__}: {error})"
        ) from error


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit (or wider) grayscale: scale to 8 bits instead of clipping at 255.
        # In place, in float32: one copy of the pixels (a 100 Mpx image is 400 MB of them).
        pixels = np.asarray(image, dtype=np.float32)
        if image.mode.startswith("I;16") or pixels.max(initial=0) > 255:  # noqa: PLR2004
            pixels /= 257.0
        np.clip(pixels, 0, 255, out=pixels)
        return Image.fromarray(pixels.astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def preprocess_image(content: bytes, input_size: int) -> np.ndarray:
    """Decode encoded image bytes into a MobileNetV2 input array of shape (size, size, 3).

    ``decode_image``, then the steps of ``keras.utils.load_img(...,
    interpolation="bilinear")`` and ``mobilenet_v2.preprocess_input``: bilinear resize,
    scale to [-1, 1]. Equal to Keras's for ordinary RGB images (tested).

    Raises:
        UnreadableImageError: The bytes are not a usable image.
    """
    pixels = np.empty((input_size, input_size, 3), dtype=np.float32)
    preprocess_into(content, pixels)
    return pixels


def usable_inputs(contents: list[bytes], input_size: int) -> list[np.ndarray]:
    """``preprocess_image`` of each content that is a usable image (the others are skipped)."""
    inputs = []
    for content in contents:
        try:
            inputs.append(preprocess_image(content, input_size))
        except UnreadableImageError:
            continue
    return inputs


def preprocess_into(content: bytes, pixels: np.ndarray, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """``preprocess_image`` written into ``pixels``, a float32 (size, size, 3) array.

    In place, because a fresh 600 kB array per step costs more than the arithmetic
    (page faults): this takes 0.5 ms off each image's preprocessing, with the same
    operations in the same order, so the result is bit-identical.

    Raises:
        UnreadableImageError: The bytes are not a usable image.
    """
    input_size = pixels.shape[0]
    rgb = decode_image(content, input_size, max_pixels)
    pixels[...] = np.asarray(rgb.resize((input_size, input_size), Image.Resampling.BILINEAR))
    pixels /= 127.5
    pixels -= 1.0


def thumbnail(content: bytes, size: int) -> np.ndarray:
    """A ``size`` x ``size`` RGB array of an encoded image, for figures.

    Raises:
        UnreadableImageError: The bytes are not a usable image.
    """
    return np.asarray(decode_image(content, size).resize((size, size)))
