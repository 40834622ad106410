"""difflab.text: discrete text diffusion with HF tokenizers.

* :class:`~difflab.text.models.MaskedDiffusionLM` — masked diffusion LM (MDLM; SUBS, log-linear
  schedule, 1/t-weighted cross-entropy, cached ancestral sampler, prefix / infilling), with
  DiffusionBERT's spindle schedule as an option;
* :class:`~difflab.text.models.GIDDLM` — GIDD (mask + uniform noise) with the self-correction sampler;
* :class:`~difflab.text.models.DDPDLM` — DDPD (uniform noise, a planner head that picks the positions to
  denoise and a denoiser head that fills them; core's ``ddpd`` sampler);
* :class:`~difflab.text.models.ARLanguageModel` — the autoregressive baseline of the same size,
  also the scorer of generative perplexity;
* data: :class:`~difflab.text.data.LMDataModule` (plain text / JSON lines, packed blocks; offline
  corpora: King James Bible, gensim's Wikipedia excerpt and news articles), readers for DiffuSeq's
  ``{"src", "trg"}`` JSON lines; tokenizers: :func:`~difflab.text.tokenizer.train_bpe`,
  :class:`~difflab.text.tokenizer.TextTokenizer`;
* :mod:`difflab.text.metrics` — ELBO / exact / generative perplexity, distinct-n, repetition, BLEU,
  ROUGE-L.

Not built yet: a likelihood bound for DDPD (``evaluate`` refuses it in one line).
"""

__version__ = "0.1.0"
BUILT = True
