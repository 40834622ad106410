import pytest

from difflab.text.tokenizer import train_bpe

SMALL_TEXT = [
    "In the beginning God created the heaven and the earth.",
    "And the earth was without form, and void; and darkness was upon the face of the deep.",
    "And God said, Let there be light: and there was light.",
    "And God saw the light, that it was good: and God divided the light from the darkness.",
] * 20


@pytest.fixture(scope="session")
def small_tokenizer():
    return train_bpe(SMALL_TEXT, vocab_size=300, min_frequency=1)
