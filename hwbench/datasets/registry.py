"""Registry of the real datasets: sources, sizes, checksums, licences, readers.

Every value here was taken from a public loader or the publisher (see
docs/datasets.md for where each one was confirmed). A checksum nobody could
confirm is ``None``: the downloader then checks only the size and the format,
says so, and prints the SHA-256 it computed so the value can be pinned here.
Decompressed payloads (the IDX files inside the ``.gz``) carry their own
checksums, so a local copy that is already decompressed is accepted too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from hwbench.datasets.vocab import AMHARIC77, ARABIC_DIGITS, KANNADA_DIGITS, LATIN_DIGITS, NIST62


@dataclass(frozen=True)
class Payload:
    """The decompressed content of a ``.gz`` file, as a reader consumes it."""

    name: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where to get it and how to recognise it."""

    name: str  # local name under data/raw/<dataset>/
    urls: tuple[str, ...]  # mirrors, tried in order
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    payload: Payload | None = None
    aliases: tuple[str, ...] = ()  # other names a user's local copy may carry
    variant: str | None = None  # only fetched when the dataset's variant matches
    required: bool = True  # False: registered, but the default pipeline does not need it

    @property
    def verified(self) -> bool:
        """True when a published checksum pins this file."""
        return bool(self.md5 or self.sha256)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    citation: str
    licence: str  # licence or registration note, shown in errors and docs
    homepage: str
    route: str  # "arrays": written to data/processed directly; "images": a manifest
    reader: str  # "module:function" in hwbench.datasets
    files: tuple[RemoteFile, ...] = ()
    manual: bool = False  # no public copy: the user supplies a folder
    variants: tuple[str, ...] = ()  # first one is the default
    notes: str = ""
    extra: dict = field(default_factory=dict)
    # What a stand-in (hwbench/datasets/standin.py) copies, as the reader produces it:
    # ``classes``: label_name of each label index; ``image_shape``: one image at the
    # route's stage (the raw image for "images", the processed array for "arrays"),
    # at the default options; ``source_splits``: the source_split values, the held-out
    # ones (tests, capped in a stand-in) in ``test_splits``; ``writer_format``: how the
    # reader names a writer (``{w}`` an int, ``{split}`` the source split), None when
    # it has none; ``script``: the meta ``script`` of every row (None: from label_name).
    classes: tuple[str, ...] = ()
    image_shape: tuple[int, ...] = ()
    source_splits: tuple[str, ...] = ()
    test_splits: tuple[str, ...] = ()
    writer_format: str | None = None
    script: str | None = None

    def files_for(self, variant: str | None = None, include_optional: bool = False):
        """The files the pipeline fetches for ``variant`` (default: the first)."""
        variant = variant or (self.variants[0] if self.variants else None)
        if self.variants and variant not in self.variants:
            raise KeyError(
                f"dataset {self.name!r} has no variant {variant!r}; choose one of {self.variants}"
            )
        return tuple(
            f
            for f in self.files
            if (f.variant is None or f.variant == variant) and (f.required or include_optional)
        )

    def file(self, name: str) -> RemoteFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(
            f"dataset {self.name!r} has no file {name!r}; its files are "
            f"{[f.name for f in self.files]}"
        )

    def with_files(self, files) -> DatasetSpec:
        """A copy with other files (tests point the URLs at a local server)."""
        return dataclasses.replace(self, files=tuple(files))


# Class names the readers take from the archives, written out for the stand-ins
# (hwbench/datasets/standin.py): CIFAR-100's meta ``fine_label_names``, the sorted
# word folders of Speech Commands v0.01, DeepWriting's ``alphabet`` (index 0, no
# character, is the "space" class) and EMNIST's mapping files.
CIFAR100_FINE = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach "
    "couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster "
    "house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree "
    "motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear "
    "pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
    "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel "
    "streetcar sunflower sweet_pepper table tank telephone television tiger tractor train "
    "trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()
SPEECH_COMMANDS_WORDS = (
    "bed bird cat dog down eight five four go happy house left marvin nine no off on one "
    "right seven sheila six stop three tree two up wow yes zero"
).split()
DEEPWRITING_ALPHABET = [" "] + list(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.,-()/"
)
# EMNIST label names per split (the first ASCII code of each mapping line; the
# letters split counts from 1, label 0 has no character).
_EMNIST_MERGED = NIST62[:36] + list("abdefghnqrt")
EMNIST_CLASSES = {
    "byclass": NIST62,
    "bymerge": _EMNIST_MERGED,
    "balanced": _EMNIST_MERGED,
    "letters": [""] + NIST62[10:36],
    "digits": LATIN_DIGITS,
    "mnist": LATIN_DIGITS,
}


# Word datasets have open vocabularies that only the registered copies hold: their
# stand-ins use these fixed lists (IAM: English words, stop words among them so the
# QbS stop-word path runs; IFN/ENIT: Tunisian town names), sorted as the readers sort.
IAM_STANDIN_WORDS = tuple(
    sorted(
        "the of and to a in that is was he for it with as his on be at by had not are but from "
        "or have an they which one you were her all she there would their we him been has when "
        "who will more no if out so said what up its about into than them can only other new "
        "some could time these two may then do first any my now such like our over man me even "
        "most made after also did many before must through back years where much your way well "
        "down should because each just those people how too little state good very make world "
        "still own see men work long get here between both life being under never day same "
        "another know while last might us great old year off come since against go came right "
        "used take three".split()
    )
)
IFN_ENIT_STANDIN_WORDS = tuple(
    sorted(
        "تونس صفاقس سوسة القيروان بنزرت قابس أريانة قفصة المنستير المهدية "
        "نابل الكاف باجة جندوبة سليانة القصرين سيدي_بوزيد توزر قبلي مدنين "
        "تطاوين زغوان منوبة بن_عروس".split()
    )
)


def _mirrors(name: str, *bases: str) -> tuple[str, ...]:
    return tuple(base + name for base in bases)


_MNIST_BASES = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _mnist_file(name, size, md5, sha256, payload_size, payload_md5) -> RemoteFile:
    return RemoteFile(
        name=name,
        urls=_mirrors(name, *_MNIST_BASES),
        size=size,
        md5=md5,
        sha256=sha256,
        payload=Payload(name.removesuffix(".gz"), payload_size, md5=payload_md5),
    )


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST handwritten digits",
    citation=(
        "Y. LeCun, C. Cortes, C. J. C. Burges. The MNIST database of handwritten digits, 1998."
    ),
    licence="Freely available for research; no registration (CC BY-SA 3.0 per the mirrors).",
    homepage="http://yann.lecun.com/exdb/mnist/",
    route="arrays",
    reader="idx_datasets:read_mnist",
    files=(
        _mnist_file(
            "train-images-idx3-ubyte.gz",
            9912422,
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            47040016,
            "6bbc9ace898e44ae57da46a324031adb",
        ),
        _mnist_file(
            "train-labels-idx1-ubyte.gz",
            28881,
            "d53e105ee54ea40749a09fcbcd1e9432",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            60008,
            "a25bea736e30d166cdddb491f175f624",
        ),
        _mnist_file(
            "t10k-images-idx3-ubyte.gz",
            1648877,
            "9fb629c4189551a2d022fa330f9573f3",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            7840016,
            "2646ac647ad5339dbf082846283269ea",
        ),
        _mnist_file(
            "t10k-labels-idx1-ubyte.gz",
            4542,
            "ec29112dd5afa0611ce80d1b7f02629c",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            10008,
            "27ae3e4e09519cfbb04c329615203637",
        ),
    ),
    classes=tuple(LATIN_DIGITS),
    image_shape=(28, 28),
    source_splits=("train", "test"),
    test_splits=("test",),
)

_KANNADA_BASES = (
    "https://raw.githubusercontent.com/vinayprabhu/Kannada_MNIST/master/data/output_tensors/MNIST_format/",
    "https://github.com/vinayprabhu/Kannada_MNIST/raw/master/data/output_tensors/MNIST_format/",
)


def _idx_payload_size(name: str, count: int) -> int:
    # IDX: 16-byte header + 28*28 bytes per image; 8-byte header + 1 byte per label.
    return 16 + count * 784 if "idx3" in name else 8 + count


def _kannada_file(name: str, count: int, md5: str | None, size: int | None = None) -> RemoteFile:
    return RemoteFile(
        name=name,
        urls=_mirrors(name, *_KANNADA_BASES),
        size=size,
        md5=md5,
        payload=Payload(name.removesuffix(".gz"), _idx_payload_size(name, count)),
    )


_KANNADA_CITATION = (
    "V. U. Prabhu. Kannada-MNIST: A new handwritten digits dataset for the Kannada "
    "language. arXiv:1908.01242, 2019."
)
_KANNADA_LICENCE = "MIT licence (github.com/vinayprabhu/Kannada_MNIST); no registration."

KANNADA_MNIST = DatasetSpec(
    name="kannada_mnist",
    title="Kannada-MNIST (60k train / 10k test)",
    citation=_KANNADA_CITATION,
    licence=_KANNADA_LICENCE,
    homepage="https://github.com/vinayprabhu/Kannada_MNIST",
    route="arrays",
    reader="idx_datasets:read_kannada_mnist",
    files=(
        _kannada_file(
            "X_kannada_MNIST_train-idx3-ubyte.gz", 60000, "db2cd247b479801b3a882ab980b340c3"
        ),
        _kannada_file(
            "y_kannada_MNIST_train-idx1-ubyte.gz", 60000, "f1f06031670554894b697988b906b036"
        ),
        _kannada_file(
            "X_kannada_MNIST_test-idx3-ubyte.gz", 10000, "8682876e8fbc8cd0e7bb07fc2f502335"
        ),
        _kannada_file(
            "y_kannada_MNIST_test-idx1-ubyte.gz", 10000, "b426d27d50a5fd8411b9e5838868be4b"
        ),
    ),
    classes=tuple(KANNADA_DIGITS),
    image_shape=(28, 28),
    source_splits=("train", "test"),
    test_splits=("test",),
)

DIG_MNIST = DatasetSpec(
    name="dig_mnist",
    title="Dig-MNIST (10,240 Kannada digits from other volunteers)",
    citation=_KANNADA_CITATION,
    licence=_KANNADA_LICENCE,
    homepage="https://github.com/vinayprabhu/Kannada_MNIST",
    route="arrays",
    reader="idx_datasets:read_dig_mnist",
    # Sizes and MD5s of the files in github.com/vinayprabhu/Kannada_MNIST
    # (data/output_tensors/MNIST_format/), as listed in hwbench issue 14.
    files=(
        _kannada_file(
            "X_dig_MNIST-idx3-ubyte.gz", 10240, "d224f44185e453487ad5af34e201a87c", 1_395_287
        ),
        _kannada_file("y_dig_MNIST-idx1-ubyte.gz", 10240, "9f9e1a4ecb080d70c5953eed2d8121f0", 92),
    ),
    classes=tuple(KANNADA_DIGITS),
    image_shape=(28, 28),
    source_splits=("test",),
)

_AUC = "https://datacenter.aucegypt.edu/shazeem/Files/"
_MADBASE_CSV = (
    "https://raw.githubusercontent.com/mloey/Arabic-Handwritten-Digits-Dataset/master/"
    "Arabic%20Handwritten%20Digits%20Dataset%20CSV.zip"
)

MADBASE = DatasetSpec(
    name="madbase",
    title="MADBase / MAHDBase Arabic-Indic digits (60k/10k, 28x28, 700 writers)",
    citation=(
        "S. Abdelazeem, E. El-Sherif. Arabic handwritten digit recognition. IJDAR 11(3), 2008 "
        "(MADBase); CSV mirror: A. El-Sawy, H. El-Bakry, M. Loey, 2016."
    ),
    licence=(
        "Free for research from the AUC data center (no registration); the CSV mirror is a "
        "re-encoding on GitHub without writer ids."
    ),
    homepage="https://datacenter.aucegypt.edu/shazeem/",
    route="arrays",
    reader="madbase:read_madbase",
    variants=("rar", "csv"),
    files=(
        RemoteFile("MAHDBase_TrainingSet.rar", (_AUC + "MAHDBase_TrainingSet.rar",), variant="rar"),
        RemoteFile("MAHDBase_TestingSet.rar", (_AUC + "MAHDBase_TestingSet.rar",), variant="rar"),
        RemoteFile(
            "madbase_csv.zip",
            (_MADBASE_CSV,),
            aliases=("Arabic Handwritten Digits Dataset CSV.zip",),
            variant="csv",
        ),
    ),
    notes="The RAR archives hold BMPs named writerWWW_passPP_digitD.bmp (writer ids).",
    classes=tuple(ARABIC_DIGITS),
    image_shape=(28, 28),
    source_splits=("train", "test"),
    test_splits=("test",),
    writer_format="{split}_w{w:03d}",  # the rar variant's; the csv variant has none
)

EMNIST = DatasetSpec(
    name="emnist",
    title="EMNIST (28x28 conversion of NIST SD19)",
    citation=(
        "G. Cohen, S. Afshar, J. Tapson, A. van Schaik. EMNIST: an extension of MNIST to "
        "handwritten letters. arXiv:1702.05373, 2017."
    ),
    licence="Public NIST data; no registration.",
    homepage="https://www.nist.gov/itl/products-and-services/emnist-dataset",
    route="arrays",
    reader="idx_datasets:read_emnist",
    files=(
        RemoteFile(
            "gzip.zip",
            (
                "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
                "http://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/gzip.zip",
            ),
            size=561753746,
            md5="58c8d27c78d21e728a6bc7b3cc06412e",
            sha256="fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e",
        ),
    ),
    classes=tuple(NIST62),  # split byclass (the default); see EMNIST_CLASSES
    image_shape=(28, 28),
    source_splits=("train", "test"),
    test_splits=("test",),
)

_SD19 = "https://s3.amazonaws.com/nist-srd/SD19/"

NIST = DatasetSpec(
    name="nist",
    title="NIST Special Database 19, 2nd edition (128x128 binary PNGs, 62 classes)",
    citation=(
        "P. J. Grother, K. K. Hanaoka. NIST Special Database 19: Handprinted forms and "
        "characters database, 2nd edition. NIST, 2016."
    ),
    licence="Public NIST Standard Reference Data; no registration.",
    homepage="https://www.nist.gov/srd/nist-special-database-19",
    route="images",
    reader="nist:build_nist_manifest",
    files=(
        RemoteFile(
            "by_write.zip",
            (_SD19 + "by_write.zip",),
            size=568113446,
            md5="a29f21babf83db0bb28a2f77b2b456cb",
            sha256="39958e28827eb0d7d54f7e4c31c6cc36689b38aa218a4fc1e810c5413e7a35b8",
        ),
        RemoteFile(
            "by_write_md5.log",
            (_SD19 + "by_write_md5.log",),
            sha256="11e20fff1a3b934270b0b4dfe3e7928e933c2973ae0ec17938d0456be95a8c03",
        ),
        RemoteFile(
            "by_class_md5.log",
            (_SD19 + "by_class_md5.log",),
            sha256="b2a76dfb555a1fc3764672bb8514455727d28fbdd18df4ce5abbd85a879f430c",
        ),
        # The labels come from by_class_md5.log (an MD5 per by_class image): joined
        # on the image MD5, by_write images get their class without this archive.
        RemoteFile(
            "by_class.zip",
            (_SD19 + "by_class.zip",),
            md5="79572b1694a8506f2b722c7be54130c4",
            required=False,
        ),
    ),
    notes=(
        "by_write gives the writer (hsf_N/fWWWW_TT/...), by_class_md5.log the label and "
        "partition of each image MD5; the transfer study trains on every partition but "
        "hsf_4 and tests on hsf_4."
    ),
    classes=tuple(NIST62),
    image_shape=(128, 128),  # binary PNGs, black ink on white
    source_splits=("hsf_0", "hsf_1", "hsf_2", "hsf_3", "hsf_4", "hsf_6", "hsf_7"),
    test_splits=("hsf_4",),
    writer_format="f{w:04d}_00",
    script="latin",
)

DEEPWRITING = DatasetSpec(
    name="deepwriting",
    title="ETH Zurich DeepWriting (online strokes, 294 writers, 70 symbols)",
    citation=(
        "E. Aksan, F. Pece, O. Hilliges. DeepWriting: Making Digital Ink Editable via Deep "
        "Generative Modeling. CHI 2018."
    ),
    licence=(
        "Research use. It extends IAM-OnDB: its authors ask users to fill in the IAM-OnDB "
        "registration form (https://fki.tic.heia-fr.ch/databases/iam-on-line-handwriting-database) "
        "and follow its citation terms."
    ),
    homepage="https://ait.ethz.ch/deepwriting",
    route="images",
    reader="deepwriting:build_deepwriting_manifest",
    files=(
        RemoteFile(
            "deepwriting_dataset.tar.gz",
            ("https://ait.ethz.ch/projects/2018/deepwriting/downloads/deepwriting_dataset.tar.gz",),
        ),
    ),
    classes=tuple(DEEPWRITING_ALPHABET),
    image_shape=(128, 128),  # data.deepwriting.image_size
    source_splits=("train", "validation"),
    writer_format="{w}",
    script="latin",
)

AMHARIC = DatasetSpec(
    name="amharic",
    title="Amharic handwritten characters, 77 classes (11 x 7), multiscript paper",
    citation=(
        "M. S. Gondere, L. Schmidt-Thieme, A. S. Boltana, H. S. Jomaa. Handwritten Amharic "
        "character recognition using a CNN, arXiv:1909.12943, 2019; data from Assabie & Bigun "
        "2009 and Samuel et al."
    ),
    licence="No public copy: obtain it from the authors and place it as described in the docs.",
    homepage="https://arxiv.org/abs/1909.12943",
    route="images",
    reader="manual:build_amharic_manifest",
    manual=True,
    classes=tuple(AMHARIC77),
    # The user's images may have any size (preprocess scales them to 28 x 28); the
    # stand-in draws 32 x 32, an assumption: no public copy says otherwise.
    image_shape=(32, 32),
    source_splits=("",),
    script="ethiopic",
)

CIFAR100 = DatasetSpec(
    name="cifar100",
    title="CIFAR-100 natural images, 32x32 colour, 100 fine classes (OneModel study)",
    citation="A. Krizhevsky. Learning Multiple Layers of Features from Tiny Images. 2009.",
    licence="Freely available for research; no registration.",
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    route="arrays",
    reader="cifar:read_cifar100",
    files=(
        # MD5 from torchvision's CIFAR100.tgz_md5; size from its and Keras' download logs.
        RemoteFile(
            "cifar-100-python.tar.gz",
            ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
            size=169_001_437,
            md5="eb9058c3a382ffc7106e4002c42a8d85",
        ),
    ),
    notes="Colour: processed images are N x 32 x 32 x 3; label_name is the fine class name.",
    classes=tuple(CIFAR100_FINE),
    image_shape=(32, 32, 3),
    source_splits=("train", "test"),
    test_splits=("test",),
    script="",
)

SPEECH_COMMANDS = DatasetSpec(
    name="speech_commands",
    title="Speech Commands v0.01: one-second spoken words, 30 classes (OneModel study)",
    citation=(
        "P. Warden. Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition. "
        "arXiv:1804.03209, 2018."
    ),
    licence="Creative Commons BY 4.0; no registration.",
    homepage="https://www.tensorflow.org/datasets/catalog/speech_commands",
    route="arrays",
    reader="speech:read_speech_commands",
    files=(
        # SHA-256 from torchaudio's SPEECHCOMMANDS checksums; size from a download log.
        RemoteFile(
            "speech_commands_v0.01.tar.gz",
            (
                "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz",
                "https://storage.googleapis.com/download.tensorflow.org/data/"
                "speech_commands_v0.01.tar.gz",
            ),
            size=1_489_096_277,
            sha256="743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
        ),
    ),
    notes="Processed as uint8 log-magnitude STFT spectrograms (frequency x time).",
    classes=tuple(SPEECH_COMMANDS_WORDS),
    image_shape=(129, 126),  # n_fft 256, hop 128: see standin.speech_shape
    source_splits=("train", "validation", "test"),
    test_splits=("validation", "test"),
    writer_format="{w:08x}",  # speaker ids are 8 hex digits
    script="",
)

IMDB = DatasetSpec(
    name="imdb",
    title="IMDB movie reviews, 25k/25k, binary sentiment (OneModel study)",
    citation=(
        "A. L. Maas, R. E. Daly, P. T. Pham, D. Huang, A. Y. Ng, C. Potts. Learning Word "
        "Vectors for Sentiment Analysis. ACL 2011."
    ),
    licence="Free for research (cite Maas et al. 2011); no registration.",
    homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
    route="arrays",
    reader="imdb:read_imdb",
    files=(
        # MD5 from torchtext's IMDB loader; size from download logs (tfds, wget).
        RemoteFile(
            "aclImdb_v1.tar.gz",
            ("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
            size=84_125_825,
            md5="7c2ac02c03563afcf9b574c7e56c153a",
        ),
    ),
    notes="Processed as word-embedding images (embedding x word position); see imdb.py.",
    classes=("negative", "positive"),
    image_shape=(32, 600),  # embed_dim x max_words
    source_splits=("train", "test"),
    test_splits=("test",),
    script="",
)

IAM = DatasetSpec(
    name="iam",
    title="IAM Handwriting Database 3.0, segmented word images (OneModel study)",
    citation=(
        "U.-V. Marti and H. Bunke. The IAM-database: an English sentence database for offline "
        "handwriting recognition. IJDAR 5:39-46, 2002."
    ),
    licence=(
        "Free for non-commercial research after registration at "
        "https://fki.tic.heia-fr.ch/databases/iam-handwriting-database (no anonymous download): "
        "supply words.tgz, ascii.tgz and largeWriterIndependentTextLineRecognitionTask.zip "
        "unpacked, as the docs describe."
    ),
    homepage="https://fki.tic.heia-fr.ch/databases/iam-handwriting-database",
    route="arrays",
    reader="words:read_iam",
    manual=True,
    notes="Word images height-normalised to data.iam.height x max_width (hwbench.wordimages).",
    classes=IAM_STANDIN_WORDS,  # a stand-in's words: IAM's vocabulary is open
    image_shape=(120, 600),  # data.iam.height x max_width (the defaults)
    source_splits=("train", "val", "test"),
    test_splits=("test",),
    writer_format="{w:03d}",
    script="latin",
)

IFN_ENIT = DatasetSpec(
    name="ifn_enit",
    title="IFN/ENIT handwritten Arabic town names, sets a-e (OneModel study)",
    citation=(
        "M. Pechwitz, S. S. Maddouri, V. Maergner, N. Ellouze, H. Amiri. IFN/ENIT - database of "
        "handwritten Arabic words. CIFED 2002, pp. 129-136."
    ),
    licence=(
        "Free for non-commercial research after registration at http://www.ifnenit.com/ "
        "(no anonymous download): supply the unpacked sets as the docs describe."
    ),
    homepage="http://www.ifnenit.com/",
    route="arrays",
    reader="words:read_ifn_enit",
    manual=True,
    notes="Word images height-normalised to data.ifn_enit.height x max_width.",
    classes=IFN_ENIT_STANDIN_WORDS,  # a stand-in's words: town names, not the real list
    image_shape=(120, 600),  # data.ifn_enit.height x max_width (the defaults)
    source_splits=("train", "test"),
    test_splits=("test",),
    writer_format="ae{w:02d}",  # the reader's writer: a file name's prefix, e.g. cj11_028
    script="arabic",
)

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        MNIST,
        KANNADA_MNIST,
        DIG_MNIST,
        MADBASE,
        EMNIST,
        NIST,
        DEEPWRITING,
        AMHARIC,
        CIFAR100,
        SPEECH_COMMANDS,
        IMDB,
        IAM,
        IFN_ENIT,
    )
}
ARRAY_DATASETS = [n for n, s in REGISTRY.items() if s.route == "arrays"]
IMAGE_DATASETS = [n for n, s in REGISTRY.items() if s.route == "images"]


def get(name: str) -> DatasetSpec:
    """The registry entry of ``name``, or a clear error listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown dataset {name!r}; registered datasets: {sorted(REGISTRY)}"
        ) from None


def raw_dir(name: str, root: str | Path = "data/raw") -> Path:
    return Path(root) / name
