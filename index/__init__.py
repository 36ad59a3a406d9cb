"""Index stage: prepare the model, embed chunks, store and search them (FAISS + BM25)."""
