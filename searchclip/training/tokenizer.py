"""A CLIP-format BPE tokenizer built from scratch for a small caption vocabulary.

The vocabulary is CLIP's: the 256 byte symbols of ``bytes_to_unicode`` with and without the
``</w>`` end-of-word mark, then one token per merge, then ``<|startoftext|>`` and
``<|endoftext|>``. Merges are added until every word of the caption vocabulary is one token
("red" -> ``red</w>``); any other text still tokenizes, down to single bytes if need be. The
result is a ``transformers.CLIPTokenizer``, so ``save_pretrained`` writes vocab.json,
merges.txt and tokenizer.json and ``AutoTokenizer.from_pretrained`` loads it back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from transformers import CLIPTokenizer

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
END_OF_WORD = "</w>"
_WORD = re.compile(r"[a-z]+")


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible mapping of the 256 bytes to printable unicode symbols."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(code) for code in codes), strict=True))


def caption_words(texts: Iterable[str]) -> list[str]:
    """The distinct lower-case words (runs of a-z) of ``texts``, sorted."""
    return sorted({word for text in texts for word in _WORD.findall(text.lower())})


def build_tokenizer(words: Iterable[str], *, max_length: int = 32) -> CLIPTokenizer:
    """A CLIP tokenizer whose vocabulary holds each of ``words`` (a-z only) as a single token.

    Merges are found greedily: a word that the current merges split into pieces p1..pn gets the
    merges (p1, p2), (p1p2, p3), ... appended at the lowest priority. Those can only apply once
    no earlier merge does, so words already solved keep their single token. Deterministic for a
    given word list.
    """
    words = sorted(set(words))
    bad = [word for word in words if not _WORD.fullmatch(word)]
    if bad:
        raise ValueError(f"caption words must be lower-case a-z only, got {bad[:5]}")
    symbols = list(bytes_to_unicode().values())
    alphabet = symbols + [symbol + END_OF_WORD for symbol in symbols]
    vocab = {token: index for index, token in enumerate(alphabet)}
    merges: list[tuple[str, str]] = []
    tokenizer = _tokenizer(vocab, merges, max_length)
    for word in words:
        pieces = tokenizer.tokenize(word)
        if len(pieces) == 1:
            continue
        joined = pieces[0]
        for piece in pieces[1:]:
            merges.append((joined, piece))
            joined += piece
            vocab.setdefault(joined, len(vocab))
        tokenizer = _tokenizer(vocab, merges, max_length)
    split = [word for word in words if len(tokenizer.tokenize(word)) != 1]
    if split:
        raise RuntimeError(f"tokenizer construction left words split into pieces: {split[:5]}")
    return tokenizer


def save_tokenizer(tokenizer: CLIPTokenizer, directory: str | Path) -> None:
    """``save_pretrained`` (tokenizer.json, tokenizer_config.json) plus CLIP's own two files,
    vocab.json and merges.txt, for tools that read those."""
    directory = Path(directory)
    tokenizer.save_pretrained(directory)
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    vocab = json.dumps(model["vocab"], ensure_ascii=False)
    (directory / "vocab.json").write_text(vocab, encoding="utf-8")
    merges = "".join(" ".join(pair) + "\n" for pair in model["merges"])
    (directory / "merges.txt").write_text("#version: 0.2\n" + merges, encoding="utf-8")


def _tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]], max_length: int):
    full = dict(vocab)
    for special in (BOS, EOS):
        full.setdefault(special, len(full))
    return CLIPTokenizer(vocab=full, merges=list(merges), model_max_length=max_length)
