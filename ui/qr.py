"""QR codes as inline SVG (the ``qrcode`` package; no image files, no JavaScript)."""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from markupsafe import Markup


def qr_svg(text: str) -> Markup:
    """An SVG QR code of ``text`` that scales to its container."""
    image = qrcode.make(
        text,
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=2,
    )
    svg: str = image.to_string(encoding="unicode")
    # Drop the fixed millimetre size: CSS sizes it (the viewBox keeps the proportions).
    svg = svg.replace('width="', 'data-width="', 1).replace('height="', 'data-height="', 1)
    return Markup(svg)
