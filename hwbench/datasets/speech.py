"""Speech Commands v0.01 for the OneModel study: one-second spoken words -> spectrograms.

``speech_commands_v0.01.tar.gz`` holds ``<word>/<speaker>_nohash_<k>.wav`` (16 kHz,
16-bit mono PCM, at most one second), ``_background_noise_/`` (not a class),
``validation_list.txt`` and ``testing_list.txt`` (the official split, one relative
path per line). The OneModel paper's speech sensory layer turns each clip into an
STFT spectrogram (Sec. 3.4); it is computed here once, so the processed dataset is
an image set like the others: uint8 N x (n_fft/2 + 1) x frames, log-magnitude
scaled by its exact upper bound (a Hann window's sum, n_fft / 2), so no value clips.
"""

from __future__ import annotations

import io
import tarfile
import wave
from pathlib import Path

import numpy as np
import torch

from hwbench.datasets.common import make_meta
from hwbench.datasets.extract import open_tar

ARCHIVE = "speech_commands_v0.01.tar.gz"
SAMPLE_RATE = 16000
NOISE_FOLDER = "_background_noise_"
CHUNK = 2048  # clips per STFT batch


def read_wav(data: bytes, where: str) -> np.ndarray:
    """16-bit mono PCM -> float32 in [-1, 1), checked against the dataset's format."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as err:
        raise ValueError(f"{where}: not a readable WAV file ({err})") from None
    if (rate, width, channels) != (SAMPLE_RATE, 2, 1):
        raise ValueError(
            f"{where}: expected 16 kHz 16-bit mono, got {rate} Hz {8 * width}-bit {channels} ch"
        )
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


def fit_length(wave_: np.ndarray, length: int = SAMPLE_RATE) -> np.ndarray:
    """Zero-pad (or cut) a clip to ``length`` samples."""
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(wave_))] = wave_[:length]
    return out


def spectrogram_images(waves: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """uint8 log-magnitude STFT spectrograms of N x T waves (rows = frequency, DC first)."""
    window = torch.hann_window(n_fft)
    spec = torch.stft(
        torch.from_numpy(waves), n_fft, hop, window=window, center=True, return_complex=True
    )
    top = np.log1p(n_fft / 2)  # |STFT| <= sum(window) = n_fft / 2 for |x| <= 1
    scaled = torch.log1p(spec.abs()).numpy() / top * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _list(tar: tarfile.TarFile, name: str) -> set[str]:
    member = next((m for m in tar.getmembers() if m.name.endswith(name)), None)
    if member is None:
        return set()
    text = tar.extractfile(member).read().decode("utf-8")
    return {line.strip() for line in text.splitlines() if line.strip()}


def read_speech_commands(files: dict[str, Path], options: dict | None = None):
    """``(images uint8 N x F x T, meta)`` of every word clip, in sorted path order.

    ``label`` indexes the sorted word folders, ``label_name`` is the word, ``writer``
    the speaker id, ``source_split`` test / validation (official lists) or train.
    Options: ``n_fft`` (default 256: 129 frequency rows) and ``hop`` (default 128:
    126 frames for one second).
    """
    options = options or {}
    n_fft, hop = int(options.get("n_fft", 256)), int(options.get("hop", 128))
    archive = Path(files[ARCHIVE])
    with open_tar(archive) as tar:
        members = {
            m.name.removeprefix("./"): m
            for m in tar.getmembers()
            if m.isfile() and m.name.endswith(".wav") and NOISE_FOLDER not in m.name
        }
        testing, validation = _list(tar, "testing_list.txt"), _list(tar, "validation_list.txt")
        paths = sorted(p for p in members if p.count("/") == 1)
        if not paths:
            raise ValueError(f"{archive}: no <word>/<clip>.wav members; is this Speech Commands?")
        words = sorted({p.split("/")[0] for p in paths})
        images, waves = [], []
        for path in paths:
            data = tar.extractfile(members[path]).read()
            waves.append(fit_length(read_wav(data, f"{archive}:{path}")))
            if len(waves) == CHUNK:
                images.append(spectrogram_images(np.stack(waves), n_fft, hop))
                waves = []
        if waves:
            images.append(spectrogram_images(np.stack(waves), n_fft, hop))
    labels = [words.index(p.split("/")[0]) for p in paths]
    speakers = [p.split("/")[1].split("_nohash_")[0] for p in paths]
    split = [
        "test" if p in testing else "validation" if p in validation else "train" for p in paths
    ]
    meta = make_meta(labels, words, split, writers=speakers, scripts=[""] * len(paths))
    return np.concatenate(images), meta
