"""Offline default corpora: the King James Bible (Debian bible-kjv) and gensim's test data.

* ``kjv``: the 31,102 verses of the King James Bible, exported with the ``bible`` command of the
  Debian package ``bible-kjv`` (``bible Gen1:1-Rev22:21``), one document per verse, with its
  reference (book, chapter, verse). Public domain.
* ``wiki``: the shortened English Wikipedia dump shipped in gensim's test data
  (``enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``: 106 articles after
  skipping redirects), wiki markup removed with ``gensim.corpora.wikicorpus.filter_wiki``, one
  document per paragraph (paragraphs are separated by blank lines; lines of fewer than
  ``min_chars`` characters are headings, captions or list debris and are not paragraphs). CC-BY-SA.
* ``news``: ``lee_background.cor`` from gensim's test data, 300 ABC news articles, one per line.

Nothing is downloaded: a missing source raises an error with the install command.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Corpus = Literal["kjv", "wiki", "news"]
CORPORA: tuple[str, ...] = ("kjv", "wiki", "news")

WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
NEWS_FILE = "lee_background.cor"


@dataclass(frozen=True)
class Verse:
    book: str
    chapter: int
    verse: int
    text: str


def _gensim_file(name: str) -> Path:
    try:
        from gensim.test.utils import datapath
    except ImportError as err:
        raise ImportError(
            f"the {name} corpus comes from gensim's test data: pip install gensim (or pip install 'difflab-text[data]')"
        ) from err
    path = Path(datapath(name))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in this gensim installation (reinstall gensim >= 4.3)")
    return path


@functools.lru_cache(maxsize=1)
def kjv_verses() -> tuple[Verse, ...]:
    """All verses of the King James Bible, in canonical order (needs the ``bible`` command)."""
    exe = shutil.which("bible")
    if exe is None:
        raise FileNotFoundError(
            "the kjv corpus needs the `bible` command of Debian bible-kjv: apt-get install bible-kjv"
        )
    out = subprocess.run([exe, "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    verses: list[Verse] = []
    book, chapter = "", 0
    cur: list[str] = []
    num = 0
    head = re.compile(r"^(\S.*?) (\d+)$")
    start = re.compile(r"^  (\d+) (.*)$")

    def flush() -> None:
        if cur:
            verses.append(Verse(book, chapter, num, " ".join(cur).strip()))
            cur.clear()

    for line in out.splitlines():
        if not line.strip():
            continue
        m = start.match(line)
        if m:
            flush()
            num = int(m.group(1))
            cur.append(m.group(2).strip())
            continue
        h = head.match(line)
        if h and not line.startswith(" "):
            # a book/chapter heading ("Genesis 1", "1 Kings 3") or a wrapped verse line
            if not cur or re.fullmatch(r"(?:\d )?[A-Z][A-Za-z ]+ \d+", line):
                flush()
                book, chapter = h.group(1), int(h.group(2))
                continue
        cur.append(line.strip())
    flush()
    if len(verses) < 30000:
        raise RuntimeError(f"`bible` exported only {len(verses)} verses; is bible-kjv complete?")
    return tuple(verses)


def _clean_wiki(text: str) -> str:
    text = re.sub(r"'{2,}", "", text)
    return re.sub(r"\s+", " ", text).strip()


@functools.lru_cache(maxsize=1)
def wiki_articles() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(title, paragraphs)`` of the gensim Wikipedia excerpt (redirects skipped)."""
    import bz2

    _gensim_file(WIKI_FILE)
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    arts = []
    with bz2.open(_gensim_file(WIKI_FILE), "rb") as fh:
        for title, text, _pid in extract_pages(fh):
            if text.lower().lstrip().startswith("#redirect"):
                continue
            paras = tuple(p for p in (_clean_wiki(x) for x in re.split(r"\n\s*\n", filter_wiki(text))) if len(p) >= 80)
            if paras:
                arts.append((title, paras))
    return tuple(arts)


def news_articles() -> list[str]:
    """The 300 ABC news articles of ``lee_background.cor``."""
    path = _gensim_file(NEWS_FILE)
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def corpus_documents(name: Corpus) -> list[str]:
    """The documents of a default corpus (verses, paragraphs or articles)."""
    if name == "kjv":
        return [v.text for v in kjv_verses()]
    if name == "wiki":
        return [p for _, paras in wiki_articles() for p in paras]
    if name == "news":
        return news_articles()
    raise ValueError(f"corpus must be one of {CORPORA}, got {name!r}")


__all__ = ["Corpus", "CORPORA", "Verse", "kjv_verses", "wiki_articles", "news_articles", "corpus_documents"]
