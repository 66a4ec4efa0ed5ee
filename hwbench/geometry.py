"""Image geometry shared by the word-image readers and OneModel's canvas (no torch, no cv2)."""

from __future__ import annotations


def scaled_size(height: int, width: int, scale_h: int, max_w: int) -> tuple[int, int]:
    """Size of a ``height`` x ``width`` image scaled to ``scale_h`` rows, aspect kept,
    shrunk further (both sides) when it would be wider than ``max_w``."""
    new_h, new_w = scale_h, max(1, round(width * scale_h / height))
    if new_w > max_w:  # too wide at that height: fit the width instead
        new_h, new_w = max(1, round(height * max_w / width)), max_w
    return min(new_h, scale_h), new_w
