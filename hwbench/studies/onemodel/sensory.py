"""The OneModel sensory layer: every input becomes one fixed-size canvas.

The paper puts every sample of every task into a 3 x 300 x 600 tensor (channels x
height x width) so one network can take them all (Sec. 3.4): images are scaled to
the canvas height with their aspect ratio kept and zero-padded, speech becomes an
STFT spectrogram, text a matrix of per-word embeddings, both zero-padded. The
embedded default uses a small canvas (1 x 32 x 64) for the CPU budget.

Everything works on whole tensors at once (no per-sample Python).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def check_canvas(canvas: Sequence[int]) -> tuple[int, int, int]:
    """``canvas`` as (channels, height, width) of positive ints, with a clear error."""
    canvas = tuple(int(v) for v in canvas)
    if len(canvas) != 3 or min(canvas) < 1:
        raise ValueError(f"canvas must be [channels, height, width], positive, got {canvas}")
    return canvas  # type: ignore[return-value]


def fit_size(height: int, width: int, canvas_h: int, canvas_w: int, scale_h: int) -> tuple:
    """Size of an image scaled to ``scale_h`` rows, aspect kept, shrunk to fit the canvas."""
    new_h, new_w = scale_h, max(1, round(width * scale_h / height))
    if new_w > canvas_w:  # too wide at that height: fit the width instead
        new_h, new_w = max(1, round(height * canvas_w / width)), canvas_w
    return min(new_h, canvas_h), new_w


def images_to_canvas(
    images: torch.Tensor, canvas: Sequence[int], scale_height: int | None = None
) -> torch.Tensor:
    """Scale a batch of same-size images to the canvas and zero-pad (top-left aligned).

    ``images`` is N x H x W or N x C x H x W (uint8 or float); the result is float
    N x channels x height x width in the input's value range. Images are scaled to
    ``scale_height`` rows (default: the canvas height; the paper uses 120 of 300 for
    handwriting) with the aspect ratio kept, shrunk further if they would be wider
    than the canvas; bilinear with antialiasing. One channel is repeated to fill
    three, as the paper repeats grey images.
    """
    channels, height, width = check_canvas(canvas)
    x = images.float()
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"images must be N x H x W or N x C x H x W, got {tuple(images.shape)}")
    if x.shape[1] not in (1, channels):
        raise ValueError(f"{x.shape[1]}-channel images do not fit a {channels}-channel canvas")
    scale_h = min(int(scale_height or height), height)
    new_h, new_w = fit_size(x.shape[2], x.shape[3], height, width, scale_h)
    if (new_h, new_w) != tuple(x.shape[2:]):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True)
    x = x.expand(-1, channels, -1, -1)
    out = torch.zeros((len(x), channels, height, width), dtype=torch.float32)
    out[:, :, :new_h, :new_w] = x
    return out


def spectrogram(waves: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Log-magnitude STFT spectrograms of N x T waves: N x (n_fft // 2 + 1) x frames.

    Frequency runs down the rows (row 0 = DC), time along the columns, as the
    paper's figure shows; log1p keeps the dynamic range image-like.
    """
    if waves.ndim != 2:
        raise ValueError(f"waves must be N x T, got {tuple(waves.shape)}")
    window = torch.hann_window(n_fft, dtype=torch.float32)
    spec = torch.stft(
        waves.float(), n_fft=n_fft, hop_length=hop, window=window, center=True, return_complex=True
    )
    return torch.log1p(spec.abs())


def pad_to_canvas(maps: torch.Tensor, canvas: Sequence[int]) -> torch.Tensor:
    """Zero-pad (or crop) N x H x W maps into the canvas, top-left, channels repeated."""
    channels, height, width = check_canvas(canvas)
    if maps.ndim != 3:
        raise ValueError(f"maps must be N x H x W, got {tuple(maps.shape)}")
    out = torch.zeros((len(maps), channels, height, width), dtype=torch.float32)
    h, w = min(height, maps.shape[1]), min(width, maps.shape[2])
    out[:, :, :h, :w] = maps[:, None, :h, :w].float()
    return out


def standardize(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Zero mean and unit variance with statistics taken from the training canvases."""
    return (x - mean) / max(float(std), 1e-8)
