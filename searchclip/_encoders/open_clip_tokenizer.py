"""OpenCLIP's default tokenizer (``open_clip.SimpleTokenizer``: CLIP's byte-level BPE) as a
``tokenizer.json`` for the ``tokenizers`` library, so text queries need no torch.

Built from the BPE vocabulary OpenCLIP ships (``bpe_simple_vocab_16e6.txt.gz``) the way
``SimpleTokenizer`` builds its own: the 256 byte symbols of ``bytes_to_unicode`` with and without
``</w>``, then the first 48,894 merges, then ``<start_of_text>`` and ``<end_of_text>`` (ids 49406
and 49407). Its text cleaning (``clean="lower"``) is ftfy's ``fix_text``, HTML unescaping,
whitespace collapsing and lower-casing; the ``tokenizers`` normaliser here does what of ftfy
applies to ordinary text, from ftfy's own tables (Latin ligatures, fullwidth and halfwidth
forms, curly quotes, stray control characters, NFC), then the common HTML entities, whitespace
and lower case. So token ids equal OpenCLIP's for ordinary text (tested, with accents, CJK,
Arabic, emoji, ligatures, fullwidth letters); what it does not reproduce is ftfy's repair of
mojibake and rarer HTML entities, text that may tokenize differently.
Padding to the context length (77) with id 0 and truncation (start, 75 tokens, end) happen
where the ids are fed to the model, as OpenCLIP does; the model pools at the end token
(the highest id, ``argmax``).

Torch-free; imports ``tokenizers`` when a tokenizer is built.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from searchclip.training.tokenizer import bytes_to_unicode

START = "<start_of_text>"
END = "<end_of_text>"
MERGE_COUNT = 49152 - 256 - 2  # as SimpleTokenizer reads the file: lines 1..48894
# SimpleTokenizer's split: its special tokens, English contractions, runs of letters, single
# digits, runs of anything else but whitespace. Applied to cleaned (lower-case) text.
SPLIT_PATTERN = (
    r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|"
    r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)
# What html.unescape changes in ordinary text, after ftfy's fixes.
_HTML_ENTITIES = (
    ("&quot;", '"'),
    ("&#39;", "'"),
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&amp;", "&"),
)


def default_bpe_path() -> Path:
    """The BPE vocabulary file OpenCLIP ships (found without importing open_clip)."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("open_clip is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"


def build_clip_bpe_tokenizer(bpe_path: Path | None = None):
    """A ``tokenizers.Tokenizer`` giving OpenCLIP's SimpleTokenizer ids, start and end tokens
    included, with no padding or truncation."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    with gzip.open(bpe_path or default_bpe_path()) as file:
        lines = file.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [symbol + "</w>" for symbol in symbols]
    tokens += ["".join(merge) for merge in merges] + [START, END]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=merges,
            continuing_subword_prefix="",
            end_of_word_suffix="</w>",
            fuse_unk=False,
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            *_ftfy_fixes(),
            normalizers.NFC(),
            *(normalizers.Replace(old, new) for old, new in _HTML_ENTITIES),
            normalizers.Replace(Regex(r"\s+"), " "),
            normalizers.Strip(),
            normalizers.Lowercase(),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([START, END])
    tokenizer.post_processor = TemplateProcessing(
        single=f"{START} $A {END}", special_tokens=[(START, vocab[START]), (END, vocab[END])]
    )
    return tokenizer


def _ftfy_fixes() -> list:
    """Normalisers doing what ``ftfy.fix_text`` does to text that is not mojibake, in its
    order: ligatures, character width, quotes, control characters (from ftfy's tables)."""
    from ftfy import chardata
    from tokenizers import Regex, normalizers

    tables = [*chardata.LIGATURES.items(), *chardata.WIDTH_MAP.items()]
    fixes = [normalizers.Replace(chr(code), text) for code, text in tables]
    fixes.append(normalizers.Replace(Regex(chardata.SINGLE_QUOTE_RE.pattern), "'"))
    fixes.append(normalizers.Replace(Regex(chardata.DOUBLE_QUOTE_RE.pattern), '"'))
    controls = "".join(chr(code) for code in chardata.CONTROL_CHARS)
    fixes.append(normalizers.Replace(Regex(f"[{re.escape(controls)}]"), ""))
    return fixes


def save_clip_bpe_tokenizer(path: Path, bpe_path: Path | None = None) -> None:
    """Write the tokenizer of :func:`build_clip_bpe_tokenizer` as ``tokenizer.json``."""
    build_clip_bpe_tokenizer(bpe_path).save(str(path))
