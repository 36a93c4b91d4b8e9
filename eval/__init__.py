"""Evaluation harness: the gold set through the app's own code path, with retrieval, answer,
citation and abstention metrics (`python -m eval`), and the CMRC 2018 benchmark (`python -m eval.cmrc`)."""
