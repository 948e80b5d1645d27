"""searchclip: semantic image search with CLIP, FAISS and SQLite."""
