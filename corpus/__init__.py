"""Corpus stage: load source files, clean boilerplate, split pages into articles, chunk them."""
