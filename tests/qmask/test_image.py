"""Image metadata stripping on real images made here: EXIF with GPS, XMP, comments, ICC."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from anarq.qmask.image import ImageInvalid, NotAnImage, metadata_of, strip_image

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
LEFT, RIGHT = (255, 0, 0), (0, 0, 255)


def picture() -> Image.Image:
    """40x20: red left half, blue right half — a rotation is easy to see."""
    image = Image.new("RGB", (40, 20), LEFT)
    image.paste(RIGHT, (20, 0, 40, 20))
    return image


def exif(orientation: int = 6) -> Image.Exif:
    tags = Image.Exif()
    tags[0x0112] = orientation
    tags[0x010F] = "Camera Maker"
    tags[0x0131] = "Phone OS 1.0"
    gps = tags.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)
    gps[3], gps[4] = "E", (2.0, 17.0, 40.0)
    return tags


def srgb() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes())


def jpeg_with_everything(orientation: int = 6) -> bytes:
    out = io.BytesIO()
    picture().save(
        out,
        "JPEG",
        quality=95,
        exif=exif(orientation),
        comment=b"taken at home",
        xmp=XMP,
        icc_profile=srgb(),
    )
    return out.getvalue()


def reopened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_jpeg_loses_exif_gps_xmp_and_comment_and_is_turned_upright() -> None:
    original = jpeg_with_everything(orientation=6)
    assert metadata_of(reopened(original))[:4] == ["exif", "gps", "xmp", "comment"]

    stripped = strip_image(original)

    assert stripped.removed == ("exif", "gps", "xmp", "comment")
    assert stripped.orientation == 6 and stripped.media_type == "image/jpeg"
    clean = reopened(stripped.data)
    assert len(clean.getexif()) == 0 and "exif" not in clean.info
    assert "xmp" not in clean.info and "comment" not in clean.info
    assert b"Camera Maker" not in stripped.data and b"taken at home" not in stripped.data
    assert b"http://ns.adobe.com/xap/1.0/" not in stripped.data
    # Orientation 6 means "turn 90° clockwise to view": red (left) ends up on top.
    assert clean.size == (20, 40)
    top, bottom = clean.convert("RGB").getpixel((10, 5)), clean.convert("RGB").getpixel((10, 35))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]
    # The colour profile stays unless asked.
    assert clean.info.get("icc_profile") == srgb()


def test_icc_profile_is_removed_when_asked() -> None:
    stripped = strip_image(jpeg_with_everything(), keep_icc=False)
    assert "icc" in stripped.removed
    assert "icc_profile" not in reopened(stripped.data).info


@pytest.mark.parametrize(("orientation", "size"), [(1, (40, 20)), (3, (40, 20)), (8, (20, 40))])
def test_every_orientation_is_applied(orientation: int, size: tuple[int, int]) -> None:
    stripped = strip_image(jpeg_with_everything(orientation))
    assert reopened(stripped.data).size == size
    assert stripped.orientation == (None if orientation == 1 else orientation)


def test_png_loses_exif_text_and_xmp() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ana Smith")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    out = io.BytesIO()
    picture().save(out, "PNG", pnginfo=info, exif=exif(1))
    stripped = strip_image(out.getvalue())
    assert stripped.removed == ("exif", "gps", "xmp", "text")
    clean = reopened(stripped.data)
    assert clean.info == {} and b"Ana Smith" not in stripped.data
    assert clean.tobytes() == picture().tobytes(), "PNG is lossless"


def test_webp_loses_exif_and_xmp_and_stays_lossless() -> None:
    out = io.BytesIO()
    picture().save(out, "WEBP", lossless=True, exif=exif(1), xmp=XMP)
    stripped = strip_image(out.getvalue())
    assert stripped.removed == ("exif", "gps", "xmp")
    clean = reopened(stripped.data)
    assert "exif" not in clean.info and "xmp" not in clean.info
    assert clean.convert("RGB").tobytes() == picture().tobytes()


def test_animated_gif_keeps_its_frames_and_loses_its_comment() -> None:
    out = io.BytesIO()
    frames = [picture(), picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(
        out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0, comment=b"hi"
    )
    stripped = strip_image(out.getvalue())
    assert stripped.removed == ("comment",) and stripped.frames == 2
    clean = reopened(stripped.data)
    assert clean.n_frames == 2 and "comment" not in clean.info
    assert clean.info["duration"] == 80


def test_clean_image_reports_nothing_removed() -> None:
    out = io.BytesIO()
    picture().save(out, "PNG")
    assert strip_image(out.getvalue()).removed == ()


def test_a_file_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(NotAnImage) as refused:
        strip_image(b"%PDF-1.7 not a picture")
    assert refused.value.status == 415
    bmp = io.BytesIO()
    picture().save(bmp, "BMP")
    with pytest.raises(NotAnImage):
        strip_image(bmp.getvalue())


def test_a_truncated_image_is_refused() -> None:
    with pytest.raises(ImageInvalid) as refused:
        strip_image(jpeg_with_everything()[:300])
    assert refused.value.status == 400
