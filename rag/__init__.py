"""seedrag: question answering over a folder of documents, with citations (see README)."""

__version__ = "0.1.0"
