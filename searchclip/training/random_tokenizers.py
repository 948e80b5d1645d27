"""Small tokenizers for random-weight models, built offline with the ``tokenizers`` library and
wrapped as each family's own transformers tokenizer class, so that ``save_pretrained`` writes
the files a downloaded checkpoint has and ``AutoTokenizer`` loads them back:

- CLIP: byte-level BPE (``CLIPTokenizer``): any text, down to single bytes;
- SigLIP (SigLIP 2's kind): BPE over characters with byte fallback (``GemmaTokenizer``);
- XLM-R (AltCLIP): a SentencePiece-style Unigram model (``XLMRobertaTokenizer``);
- BERT (ChineseCLIP, a vision-text dual encoder): WordPiece (``BertTokenizer``), one token per
  Chinese character as BERT splits them.

Each covers Latin letters, German umlauts, Chinese and Arabic characters, so queries in those
languages become real tokens (not unknowns) on a random model: what multilingual plumbing is
tested with. Vocabularies are a few hundred tokens: models built on them are fast.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from searchclip.training.tokenizer import bytes_to_unicode

LATIN = string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation
GERMAN = "äöüÄÖÜßéèàçâêîôû"
CHINESE = "海滩上的狗猫人车山水天日月中国大小一二三好照片红色"
ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهويةءأإآىئؤ"
CHARACTERS = LATIN + GERMAN + CHINESE + ARABIC
# Whole words, so that common queries are a few tokens rather than one per character.
WORDS = tuple(
    " ".join(
        [
            "a photo of the dog cat car beach red blue sunset mountain person on at in and",
            "hund am strand katze auto rot foto über schön",
            "كلب على الشاطئ قطة صورة",
        ]
    ).split(" ")
)

# CLIP's tiny BPE: a handful of merges for common English letter pairs, "left right".
CLIP_BOS = "<|startoftext|>"
CLIP_EOS = "<|endoftext|>"
CLIP_MERGES = [
    ("t", "h"),
    ("th", "e</w>"),
    ("i", "n"),
    ("e", "r</w>"),
    ("a", "n"),
    ("o", "n</w>"),
    ("o", "f</w>"),
    ("p", "h"),
    ("o", "t"),
    ("o", "g</w>"),
    ("c", "a"),
    ("r", "e"),
    ("e", "s</w>"),
    ("i", "s</w>"),
    ("a", "t</w>"),
    ("d", "og</w>"),
]


def clip_vocab() -> tuple[dict[str, int], list[str]]:
    """The vocabulary (token -> id) and merge lines of the tiny CLIP tokenizer."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [symbol + "</w>" for symbol in symbols]
    tokens += ["".join(pair) for pair in CLIP_MERGES]
    tokens += [CLIP_BOS, CLIP_EOS]
    return {token: index for index, token in enumerate(tokens)}, [" ".join(p) for p in CLIP_MERGES]


def clip_tokenizer(directory: Path, max_length: int = 77):
    """Write ``vocab.json`` + ``merges.txt`` into ``directory`` and load them as a
    ``CLIPTokenizer`` (byte-level BPE with CLIP's start and end tokens)."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab()
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8")
    tokenizer = CLIPTokenizer.from_pretrained(directory, model_max_length=max_length)
    _check(tokenizer, "a photo of a dog", first=tokenizer.bos_token_id)
    return tokenizer


def siglip_tokenizer(max_length: int = 64):
    """A SigLIP 2-style ``GemmaTokenizer``: BPE over characters, words merged whole, bytes as
    the fallback for any other character."""
    from transformers import GemmaTokenizer

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    tokens = specials + [f"<0x{value:02X}>" for value in range(256)] + ["▁"]
    tokens += [char for char in CHARACTERS if char not in tokens]
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        piece = "▁"
        for char in word:
            merge = (piece, char)
            piece += char
            if piece not in tokens:
                tokens.append(piece)
                merges.append(merge)
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)
    _check(tokenizer, "a photo of a dog")
    return tokenizer


def siglip_sentencepiece_tokenizer(directory: Path, max_length: int = 64):
    """A SigLIP (1) tokenizer as its checkpoints ship it: a SentencePiece Unigram model
    (``spiece.model``, trained here on the words and characters above) for transformers'
    ``SiglipTokenizer``, which runs it in Python and has no ``tokenizer.json``."""
    import io

    import sentencepiece
    from transformers import SiglipTokenizer

    text = [" ".join(WORDS), " ".join(CHARACTERS), "a photo of a dog on the beach at sunset"]
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(text * 4),
        model_writer=model,
        vocab_size=200,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        add_dummy_prefix=False,  # as SigLIP's: SiglipTokenizer marks the first word itself
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    (directory / "spiece.model").write_bytes(model.getvalue())
    tokenizer = SiglipTokenizer(vocab_file=str(directory / "spiece.model"))
    tokenizer.model_max_length = max_length
    _check(tokenizer, "a photo of a dog")
    return tokenizer


def xlm_roberta_tokenizer(max_length: int = 77):
    """An ``XLMRobertaTokenizer`` on a small Unigram vocabulary: whole words, then single
    characters with and without the word-start mark (scored lower: used where no word fits)."""
    from transformers import XLMRobertaTokenizer

    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -5.0)]
    pieces += [(f"▁{word}", -4.0) for word in dict.fromkeys(WORDS)]
    seen = {piece for piece, _ in pieces}
    for char in CHARACTERS:
        for piece in (f"▁{char}", char):
            if piece not in seen:
                seen.add(piece)
                pieces.append((piece, -8.0))
    pieces.append(("<mask>", 0.0))
    tokenizer = XLMRobertaTokenizer(vocab=pieces, model_max_length=max_length)
    _check(tokenizer, "a photo of a dog", first=tokenizer.cls_token_id)
    return tokenizer


def bert_tokenizer(max_length: int = 64):
    """A lower-casing ``BertTokenizer`` on a small WordPiece vocabulary: whole words, single
    characters and their ``##`` continuations."""
    from transformers import BertTokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += list(dict.fromkeys(word.lower() for word in WORDS))
    for char in dict.fromkeys(CHARACTERS.lower()):
        tokens += [token for token in (char, f"##{char}") if token not in tokens]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = BertTokenizer(vocab=vocab, model_max_length=max_length)
    _check(tokenizer, "a photo of a dog", first=tokenizer.cls_token_id)
    return tokenizer


def saved(tokenizer, directory: Path) -> None:
    """Save ``tokenizer`` into ``directory`` and check that ``AutoTokenizer`` loads it back to
    the same tokens."""
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(directory)
    loaded = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    for text in ("a photo of a dog", "Hund am Strand", "海滩上的狗", "كلب على الشاطئ"):
        if loaded(text)["input_ids"] != tokenizer(text)["input_ids"]:
            raise RuntimeError(f"the saved tokenizer in {directory} tokenizes {text!r} otherwise")


def _check(tokenizer, text: str, first: int | None = None) -> None:
    ids = tokenizer(text)["input_ids"]
    unk = tokenizer.unk_token_id  # CLIP's is its end-of-text token: not a sign of failure
    ends = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    unknown = unk not in ends and unk in ids
    if len(ids) < 2 or unknown or (first is not None and ids[0] != first):
        raise RuntimeError(f"the tiny tokenizer is broken: {text!r} -> {ids}")
