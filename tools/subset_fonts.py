# ruff: noqa: E501
"""Rebuild hwbench/fonts/ from Debian font packages (a developer tool, not run by the pipeline).

Usage (as root, with fontTools installed, e.g. the venv's one that matplotlib brings):

    mkdir -p /tmp/fonts && cd /tmp/fonts && apt-get download <the packages below>
    for f in *.deb; do dpkg -x "$f" x; done
    python tools/subset_fonts.py /tmp/fonts

Each font is cut down to exactly the code points of the charsets it serves, and
renamed to a neutral "HW <script> NN" family: a subset is a Modified Version under the
SIL Open Font License, which may not keep a Reserved Font Name. The copyright notice
(name id 0) and licence fields (ids 13, 14) are kept; the package's Debian copyright
file (holders plus the full licence text) is copied to licenses/<package>.txt.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwbench.charsets import CHARSETS  # noqa: E402
from hwbench.synth import FONT_SOURCES  # noqa: E402

OUT = ROOT / "hwbench" / "fonts"

# fmt: off
# shipped file -> (Debian package, path inside the package, original family, licence)
ORIGINS = {
    "latin-01.otf": ("fonts-comic-neue", "opentype/comic-neue/ComicNeue-Regular.otf", "Comic Neue Regular", "OFL-1.1"),
    "latin-02.otf": ("fonts-dancingscript", "opentype/dancingscript/DancingScript-Regular.otf", "Dancing Script Regular", "OFL-1.1 (RFN)"),
    "latin-03.otf": ("fonts-kaushanscript", "opentype/kaushanscript/KaushanScript-Regular.otf", "Kaushan Script Regular", "OFL-1.1 (RFN)"),
    "latin-04.ttf": ("fonts-sil-andika", "truetype/andika/Andika-Regular.ttf", "Andika Regular", "OFL-1.1 (RFN)"),
    "latin-05.ttf": ("fonts-breip", "truetype/breip/Breip.ttf", "Breip", "OFL-1.0 (RFN)"),
    "latin-06.ttf": ("fonts-kristi", "truetype/kristi/Kristi.ttf", "Kristi", "OFL-1.1"),
    "latin-07.ttf": ("fonts-humor-sans", "truetype/humor-sans/Humor-Sans.ttf", "Humor Sans", "OFL-1.1 (RFN)"),
    "latin-08.otf": ("fonts-bwht", "opentype/bwht/BecauseWeBuild-Regular.otf", "Because We Build", "OFL-1.1"),
    "latin-09.otf": ("fonts-bwht", "opentype/bwht/BecauseWeCreate-Regular.otf", "Because We Create", "OFL-1.1"),
    "latin-10.otf": ("fonts-bwht", "opentype/bwht/BecauseWeMentor-Regular.otf", "Because We Mentor", "OFL-1.1"),
    "latin-11.otf": ("fonts-bwht", "opentype/bwht/BecauseWeOrganize-Regular.otf", "Because We Organize", "OFL-1.1"),
    "latin-12.otf": ("fonts-comic-neue", "opentype/comic-neue/ComicNeue-Italic.otf", "Comic Neue Italic", "OFL-1.1"),
    "arabic-01.ttf": ("fonts-hosny-amiri", "opentype/fonts-hosny-amiri/Amiri-Regular.ttf", "Amiri Regular", "OFL-1.1"),
    "arabic-02.ttf": ("fonts-sil-lateef", "opentype/lateef/Lateef-Regular.ttf", "Lateef Regular", "OFL-1.1 (RFN)"),
    "arabic-03.ttf": ("fonts-sil-alkalami", "truetype/alkalami/Alkalami-Regular.ttf", "Alkalami Regular", "OFL-1.1 (RFN)"),
    "arabic-04.ttf": ("fonts-sil-harmattan", "truetype/harmattan/Harmattan-Regular.ttf", "Harmattan Regular", "OFL-1.1 (RFN)"),
    "arabic-05.ttf": ("fonts-sil-scheherazade", "truetype/scheherazade/Scheherazade-Regular.ttf", "Scheherazade Regular", "OFL-1.1 (RFN)"),
    "arabic-06.ttf": ("fonts-noto-core", "truetype/noto/NotoKufiArabic-Regular.ttf", "Noto Kufi Arabic Regular", "OFL-1.1"),
    "arabic-07.ttf": ("fonts-noto-core", "truetype/noto/NotoNaskhArabic-Regular.ttf", "Noto Naskh Arabic Regular", "OFL-1.1"),
    "arabic-08.ttf": ("fonts-noto-core", "truetype/noto/NotoSansArabic-Regular.ttf", "Noto Sans Arabic Regular", "OFL-1.1"),
    "kannada-01.ttf": ("fonts-navilu", "truetype/Navilu/Navilu.ttf", "Navilu", "OFL-1.1"),
    "kannada-02.ttf": ("fonts-lohit-knda", "truetype/lohit-kannada/Lohit-Kannada.ttf", "Lohit Kannada", "OFL-1.1"),
    "kannada-03.ttf": ("fonts-noto-core", "truetype/noto/NotoSansKannada-Regular.ttf", "Noto Sans Kannada Regular", "OFL-1.1"),
    "kannada-04.ttf": ("fonts-noto-core", "truetype/noto/NotoSerifKannada-Regular.ttf", "Noto Serif Kannada Regular", "OFL-1.1"),
    "ethiopic-01.ttf": ("fonts-sil-abyssinica", "truetype/abyssinica/AbyssinicaSIL-Regular.ttf", "Abyssinica SIL Regular", "OFL-1.1 (RFN)"),
    "ethiopic-02.ttf": ("fonts-noto-core", "truetype/noto/NotoSansEthiopic-Regular.ttf", "Noto Sans Ethiopic Regular", "OFL-1.1"),
    "ethiopic-03.ttf": ("fonts-noto-core", "truetype/noto/NotoSerifEthiopic-Regular.ttf", "Noto Serif Ethiopic Regular", "OFL-1.1"),
    "ethiopic-04.ttf": ("fonts-senamirmir-washra", "truetype/fonts-senamirmir-washra/jiret.ttf", "Jiret", "OFL-1.1 (RFN)"),
    "ethiopic-05.ttf": ("fonts-senamirmir-washra", "truetype/fonts-senamirmir-washra/washrasb.ttf", "WashRa SemiBold", "OFL-1.1 (RFN)"),
    "ethiopic-06.ttf": ("fonts-senamirmir-washra", "truetype/fonts-senamirmir-washra/wookianos.ttf", "Wookianos", "OFL-1.1 (RFN)"),
    "ethiopic-07.ttf": ("fonts-senamirmir-washra", "truetype/fonts-senamirmir-washra/hiwua.ttf", "Hiwua", "OFL-1.1 (RFN)"),
    "ethiopic-08.ttf": ("fonts-senamirmir-washra", "truetype/fonts-senamirmir-washra/yebse.ttf", "Yebse", "OFL-1.1 (RFN)"),
}
# fmt: on

KEEP_NAME_IDS = {0, 2, 5, 13, 14}  # copyright, subfamily, version, licence, licence URL


def deb_version(debs: Path, package: str) -> str:
    deb = next(debs.glob(f"{package}_*.deb"))
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True)
    return out.stdout.strip()


def code_points(shipped: str) -> list[int]:
    charsets = [c for c, files in FONT_SOURCES.items() if shipped in files]
    if not charsets:
        raise SystemExit(f"{shipped} is not used by any charset in hwbench.synth.FONT_SOURCES")
    return sorted({ord(ch) for c in charsets for ch in CHARSETS[c]}), charsets


def rename(font: TTFont, family: str) -> None:
    """Give the subset a neutral name (OFL: a Modified Version drops Reserved Font Names)."""
    table = font["name"]
    table.names = [n for n in table.names if n.nameID in KEEP_NAME_IDS]
    postscript = family.replace(" ", "")
    for name_id, value in ((1, family), (3, f"hwbench: {family}"), (4, family), (6, postscript)):
        table.setName(value, name_id, 3, 1, 0x409)
        table.setName(value, name_id, 1, 0, 0)
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = [postscript]
        top = cff.topDictIndex[0]
        for key, value in (("FullName", family), ("FamilyName", family)):
            if hasattr(top, key):
                setattr(top, key, value)
        # Notice and Copyright stay: the copyright notice must travel with the font.


def main(workdir: str) -> None:
    work = Path(workdir)
    fonts_root = work / "x" / "usr" / "share" / "fonts"
    docs_root = work / "x" / "usr" / "share" / "doc"
    (OUT / "licenses").mkdir(parents=True, exist_ok=True)
    rows = []
    for shipped, (package, src, original, licence) in ORIGINS.items():
        unicodes, charsets = code_points(shipped)
        options = subset.Options()
        options.layout_features = []  # isolated characters: no shaping needed
        options.hinting = False
        options.name_IDs = ["*"]
        options.notdef_outline = True
        font = TTFont(fonts_root / src, recalcTimestamp=False)  # reproducible bytes
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=unicodes)
        subsetter.subset(font)
        stem = shipped.rsplit(".", 1)[0]
        rename(font, "HW " + stem.replace("-", " ").title())
        font.save(OUT / shipped)
        shutil.copyfile(docs_root / package / "copyright", OUT / "licenses" / f"{package}.txt")
        version = deb_version(work, package)
        rows.append((shipped, original, package, version, licence, ", ".join(charsets)))
        print(f"{shipped}: {(OUT / shipped).stat().st_size} bytes, {len(unicodes)} code points")
    write_readme(rows)


def write_readme(rows) -> None:
    lines = [
        "# Bundled fonts",
        "",
        "Glyph sources of the synthetic handwriting generator (`hwbench/synth.py`). Every",
        "file is a subset of a font from a Debian bookworm package, cut down by",
        "`tools/subset_fonts.py` (fontTools' subsetter) to exactly the characters of the",
        "charsets it serves, and renamed to a neutral `HW <Script> NN` family because a subset",
        "is a Modified Version under the SIL Open Font License, which may not use a Reserved",
        "Font Name (RFN). The original copyright notice and licence fields stay in each file.",
        "`licenses/<package>.txt` is the package's Debian copyright file: the copyright",
        "holders and the full licence text. All fonts are under the SIL Open Font License",
        '(1.1, Breip 1.0); none is downloaded at run time. "(RFN)" marks fonts whose',
        "licence reserves font names.",
        "",
        "| file | original font | Debian package | version | licence | charsets |",
        "|---|---|---|---|---|---|",
    ]
    for shipped, original, package, version, licence, charsets in rows:
        lines.append(f"| {shipped} | {original} | {package} | {version} | {licence} | {charsets} |")
    lines.append("")
    (OUT / "README.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/synthfonts")
