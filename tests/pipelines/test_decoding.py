"""Decoding: every usable image becomes upright RGB; every unusable one gets a reason."""

import numpy as np
import pytest
from PIL import Image

from fruits.vision.embedder import embed_images
from fruits.vision.images import UnreadableImageError, decode_image, preprocess_image
from tests import bad_images


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


@pytest.mark.parametrize(
    ("make", "reason"), bad_images.REJECTED.items(), ids=[m.__name__ for m in bad_images.REJECTED]
)
def test_unusable_files_raise_with_a_reason(tmp_path, make, reason):
    with pytest.raises(UnreadableImageError, match=reason):
        decode_image(make(tmp_path).read_bytes(), 224)


@pytest.mark.parametrize("make", bad_images.ACCEPTED, ids=lambda make: make.__name__)
def test_other_forms_decode_to_rgb_and_preprocess(tmp_path, make):
    content = make(tmp_path).read_bytes()
    assert decode_image(content, 224).mode == "RGB"
    pixels = preprocess_image(content, 224)
    assert pixels.shape == (224, 224, 3) and np.isfinite(pixels).all()
    assert -1 <= pixels.min() < pixels.max() <= 1


def test_grayscale_and_cmyk_look_like_the_original(tmp_path):
    original = _pixels(bad_images.source_rgb())
    gray = _pixels(decode_image(bad_images.grayscale_jpeg(tmp_path).read_bytes(), 224))
    assert np.allclose(gray[..., 0], gray[..., 1]) and np.allclose(gray[..., 1], gray[..., 2])
    cmyk = _pixels(decode_image(bad_images.cmyk_jpeg(tmp_path).read_bytes(), 224))
    assert np.abs(cmyk - original).mean() < 6  # JPEG noise only: not inverted, not black


def test_transparency_becomes_white_like_the_dataset_background(tmp_path):
    cutout = _pixels(decode_image(bad_images.transparent_png(tmp_path).read_bytes(), 224))
    original = _pixels(bad_images.source_rgb())
    background = original.min(axis=2) > 235
    assert background.mean() > 0.2  # the test image has a real background
    assert (cutout[background] == 255).all()
    np.testing.assert_array_equal(cutout[~background], original[~background])
    palette = _pixels(
        decode_image(bad_images.palette_png_with_transparency(tmp_path).read_bytes(), 224)
    )
    assert (palette[0, 0] == 255).all()


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    gray16 = _pixels(decode_image(bad_images.sixteen_bit_png(tmp_path).read_bytes(), 224))
    gray8 = _pixels(bad_images.source_rgb().convert("L"))
    np.testing.assert_allclose(gray16[..., 0], gray8, atol=1)


def test_exif_orientation_is_applied(tmp_path):
    content = bad_images.exif_rotated_jpeg(tmp_path).read_bytes()
    upright = _pixels(decode_image(content, 224))
    original = _pixels(bad_images.source_rgb())
    assert upright.shape == original.shape
    assert np.abs(upright - original).mean() < 3
    with Image.open(bad_images.exif_rotated_jpeg(tmp_path)) as stored:  # as stored: turned
        assert np.abs(_pixels(stored.convert("RGB")) - original).mean() > 20


def test_large_photo_is_decoded_at_a_reduced_scale(tmp_path):
    content = bad_images.large_phone_photo(tmp_path).read_bytes()
    assert decode_image(content, 224).size == (750, 500)  # 1/8 scale, still >= 224
    assert decode_image(content, 96).size == (750, 500)
    small = bad_images.SOURCE.read_bytes()  # smaller than the input: decoded as it is
    assert decode_image(small, 224).size == (100, 100)


def test_embedding_goes_on_past_bad_images_in_order(tmp_path):
    good = bad_images.SOURCE.read_bytes()
    contents = [
        good,
        bad_images.empty_file(tmp_path).read_bytes(),
        good,
        bad_images.html_as_jpeg(tmp_path).read_bytes(),
        good,
    ]
    calls = []

    def embedder(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return np.full((len(batch), 3), float(len(calls)), dtype=np.float32)

    results = list(embed_images(contents, embedder, 96, batch_size=2))
    assert [reason is None for _, reason in results] == [True, False, True, False, True]
    assert results[1][1].startswith("empty file") and results[1][0] is None
    assert calls == [1, 1, 1]  # chunks of 2 inputs: [good, empty], [good, html], [good]
    assert [features[0] for features, _ in results if features is not None] == [1, 2, 3]
