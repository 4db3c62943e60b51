"""Guest photos: an upload is checked (size, a real image, not a decompression bomb)
and re-encoded to a small JPEG (longest side `PHOTO_PX`, EXIF orientation applied,
metadata dropped) with Pillow, in a worker thread. What is stored is always our
own JPEG, never the uploaded bytes."""

import asyncio
import io
import warnings

from PIL import Image, ImageOps

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
MAX_PIXELS = 40_000_000  # a real photo; past this it is a decompression bomb
QUALITY = 82


class BadPhoto(Exception):
    """`key` says what is wrong (field.err.photo_<key>): "size", "image"."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def reencode(data: bytes, max_bytes: int, px: int) -> bytes:
    if len(data) > max_bytes:  # guard: photo size
        raise BadPhoto("size", f"a photo is at most {max_bytes // (1024 * 1024)} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                # guard: photo format
                if probe.format not in FORMATS or probe.width * probe.height > MAX_PIXELS:
                    raise BadPhoto("image", "not a photo (JPEG, PNG, WebP or GIF)")
                probe.verify()
            with Image.open(io.BytesIO(data)) as opened:
                opened.seek(0)
                img: Image.Image = ImageOps.exif_transpose(opened)
                img.thumbnail((px, px), Image.Resampling.LANCZOS)
                if img.mode in ("RGBA", "LA", "P"):
                    img = img.convert("RGBA")
                    background = Image.new("RGB", img.size, (255, 255, 255))
                    background.paste(img, mask=img.getchannel("A"))
                    img = background
                out = io.BytesIO()
                img.convert("RGB").save(out, "JPEG", quality=QUALITY, optimize=True, progressive=True)
                return out.getvalue()  # guard: photo re-encoded
    except BadPhoto:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, OSError, ValueError, SyntaxError) as exc:
        raise BadPhoto("image", "not a photo (JPEG, PNG, WebP or GIF)") from exc


async def checked_photo(data: bytes, max_bytes: int, px: int) -> bytes:
    return await asyncio.to_thread(reencode, data, max_bytes, px)
