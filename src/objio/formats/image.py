"""JPEG and PNG images through Pillow (DLIO ``data_generator/{jpeg,png}_generator.py``,
``reader/image_reader.py``).

Writers: one ``dim1 x dim2`` 8-bit grayscale image of random pixels per file
(:func:`jpeg_file`, :func:`png_file`). Reader: :func:`decode_image`.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ._common import (
    _STREAM_JPEG,
    _STREAM_PNG,
    JPEG_QUALITY,
    FileFormat,
    FileOptions,
    _check_common,
    _check_dims,
    _check_int,
    _file_object,
    _random_array,
)

_PILLOW_IMPORT_ERROR = "format 'jpeg' needs Pillow: pip install pillow"


# Pillow's JPEG encoder limit (libjpeg: 65500 pixels per side).
_JPEG_MAX_SIDE = 65500


_PNG_MAX_SIDE = (1 << 31) - 1  # PNG spec: width and height are 31-bit


def _pil_image() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(_PILLOW_IMPORT_ERROR) from exc
    return Image


def jpeg_file(dims: tuple[int, int], *, seed: int = 0, index: int = 0, quality: int = JPEG_QUALITY) -> bytes:
    """One JPEG file: a ``dim1 x dim2`` (rows x columns) 8-bit grayscale image of random pixels.

    As DLIO's ``data_generator/jpeg_generator.py`` writes it: a 2-D
    ``uint8`` array through ``PIL.Image.fromarray`` (mode ``L``,
    grayscale) and ``Image.save(format="JPEG")``, one sample per file; read
    by ``reader/image_reader.py`` as ``np.asarray(Image.open(f))``.
    Encoded by Pillow at ``quality`` (75, Pillow's default, unless given),
    baseline, no EXIF or timestamps, so the bytes are fixed by ``(seed,
    index)`` for a given Pillow / libjpeg.  Random pixels do not compress
    well: the file is about 0.56 bytes per pixel at quality 75.

    Raises:
        ImportError: Pillow is not installed.
        ValueError: an argument out of range, or a side above 65500 pixels
            (the JPEG limit).
    """
    dim1, dim2 = _check_dims(dims)
    _, seed, index = _check_common(0, seed, index)
    quality = _check_int("quality", quality, 1)
    if quality > 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    if max(dim1, dim2) > _JPEG_MAX_SIDE:
        raise ValueError(
            f"jpeg images are at most {_JPEG_MAX_SIDE} pixels per side, got {dim1} x {dim2} "
            "(use a smaller record size)"
        )
    image_cls = _pil_image()
    pixels = _random_array(dim1 * dim2, seed, index, _STREAM_JPEG).reshape(dim1, dim2)
    out = io.BytesIO()
    image_cls.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def png_file(dims: tuple[int, int], *, seed: int = 0, index: int = 0, compress_level: int = 0) -> bytes:
    """One PNG file: a ``dim1 x dim2`` (rows x columns) 8-bit grayscale image of random pixels.

    The image DLIO's ``data_generator/png_generator.py`` writes: a 2-D ``uint8`` array saved
    by Pillow (``PIL.Image.fromarray``, mode ``L``) as PNG; read by ``reader/image_reader.py``
    with ``Image.open``. Random pixels do not compress, so ``compress_level`` defaults to 0
    (zlib stored blocks), Pillow's fastest setting (about 50 MB/s here; level 6 is ~25 MB/s).

    Raises:
        ImportError: Pillow is not installed.
        ValueError: an argument out of range.
    """
    dim1, dim2 = _check_dims(dims)
    _, seed, index = _check_common(0, seed, index)
    compress_level = _check_int("compress_level", compress_level, 0)
    if compress_level > 9:
        raise ValueError(f"compress_level must be 0..9, got {compress_level}")
    image_cls = _pil_image()
    pixels = _random_array(dim1 * dim2, seed, index, _STREAM_PNG).reshape(dim1, dim2)
    out = io.BytesIO()
    image_cls.fromarray(pixels).save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def decode_image(data: Any) -> Any:
    """Decode a JPEG / PNG (any format Pillow reads) into a :class:`numpy.ndarray`.

    As DLIO's ``reader/image_reader.py``: ``np.asarray(Image.open(f))``.  For
    objio / DLIO files: ``uint8`` of shape ``(dim1, dim2)`` (grayscale).

    Raises:
        ImportError: Pillow is not installed.
        ValueError: the bytes are not an image Pillow can decode.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise ImportError("decode_image needs Pillow: pip install pillow") from exc
    try:
        with Image.open(_file_object(data)) as image:
            image.load()
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"not a decodable image: {exc}") from exc


def _requires() -> None:
    _pil_image()


def _build_jpeg(dims: tuple[int, int], samples: int, seed: int, index: int,
                options: FileOptions) -> bytes:
    return jpeg_file(dims, seed=seed, index=index, quality=options.quality)


def _jpeg_size(dims: tuple[int, int], samples: int, options: FileOptions) -> tuple[int, bool]:
    return int(dims[0] * dims[1] * 0.56) + 700, False  # ~0.56 bytes per pixel at quality 75


def _build_png(dims: tuple[int, int], samples: int, seed: int, index: int,
               options: FileOptions) -> bytes:
    level = 0 if options.compression_level is None else options.compression_level
    return png_file(dims, seed=seed, index=index, compress_level=level)


def _png_size(dims: tuple[int, int], samples: int, options: FileOptions) -> tuple[int, bool]:
    # Pillow's chunking of IDAT is its own: an estimate within ~0.1%
    raw = dims[0] * (dims[1] + 1)
    return 8 + 25 + 12 + 2 + raw + 5 * max(1, -(-raw // 65535)) + 4 + 12, False


JPEG = FileFormat("jpeg", build=_build_jpeg, expected_size=_jpeg_size, read=decode_image,
                  options=frozenset({"quality"}), one_sample=True, max_side=_JPEG_MAX_SIDE,
                  requires=_requires)
PNG = FileFormat("png", build=_build_png, expected_size=_png_size, read=decode_image,
                 options=frozenset({"compression_level"}), one_sample=True,
                 max_side=_PNG_MAX_SIDE, requires=_requires)
