"""SigLIP's SentencePiece tokenizer as a ``tokenizers`` pipeline, for torch-free text queries.

SigLIP (1) checkpoints ship ``spiece.model`` only: transformers' ``SiglipTokenizer`` runs it in
Python (no ``tokenizer.json``), after its own canonicalisation of the text (lower-case, ASCII
punctuation removed, whitespace collapsed and stripped) and with the first word marked as a
word start; it appends ``</s>``. The same steps, in ``tokenizers`` terms: a normalizer (the
canonicalisation, then the SentencePiece model's own character map), a Metaspace
pre-tokenizer (word starts marked "▁", a word never split across them, as SentencePiece's
``split_by_whitespace``), the model's Unigram pieces and scores, and a ``$A </s>``
post-processor. Tested token for token against ``SiglipTokenizer`` on multilingual texts; the
export is also checked against torch before it is kept (onnx_export). Imports sentencepiece
(which transformers' SiglipTokenizer needs anyway) and tokenizers.
"""

from __future__ import annotations

import re
import string
from pathlib import Path


def is_siglip_sentencepiece(tokenizer) -> bool:
    """Whether ``tokenizer`` is transformers' Python SigLIP tokenizer (``SiglipTokenizer``)."""
    return type(tokenizer).__name__ == "SiglipTokenizer" and hasattr(tokenizer, "sp_model")


def save_siglip_tokenizer_json(tokenizer, path: Path) -> None:
    """Write ``tokenizer`` (a ``SiglipTokenizer``) as a ``tokenizer.json`` that tokenizes as it
    does."""
    from sentencepiece import sentencepiece_model_pb2
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(tokenizer.vocab_file).read_bytes())
    pieces = [(piece.piece, piece.score) for piece in proto.pieces]
    unknown = next(i for i, piece in enumerate(proto.pieces) if piece.type == piece.UNKNOWN)
    built = Tokenizer(models.Unigram(pieces, unk_id=unknown, byte_fallback=False))
    steps = [normalizers.Replace("▁", " ")]  # SiglipTokenizer reads a "▁" as a space
    steps += [normalizers.Lowercase()] if tokenizer.do_lower_case else []
    punctuation = "[" + re.escape(string.punctuation) + "]"
    steps += [normalizers.Replace(Regex(punctuation), ""), normalizers.Replace(Regex(r"\s+"), " ")]
    steps += [normalizers.Strip()]
    charsmap = proto.normalizer_spec.precompiled_charsmap
    steps += [normalizers.Precompiled(charsmap)] if charsmap else []
    built.normalizer = normalizers.Sequence(steps)
    built.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    eos = str(tokenizer.eos_token)
    # Typed into a text, these stay whole, as SiglipTokenizer splits its special tokens first.
    built.add_special_tokens(list(dict.fromkeys(map(str, tokenizer.all_special_tokens))))
    built.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", special_tokens=[(eos, int(tokenizer.eos_token_id))]
    )
    built.save(str(path))
