"""Datasets and images as a network takes them: what training, `eval`, `predict` and `show` read.

`datasets` loads a named dataset adapted to a spec's input and split; `sources` downloads and reads the
public ones; `folders` reads `folder:PATH`; `images` reads image files safely. It imports only the core.
"""
