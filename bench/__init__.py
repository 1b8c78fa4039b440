"""imgscout benchmark suite: exact Hamming search against FAISS, numpy, pybktree and
imagededup on the same data, same machine, one run. Entry point: ``python bench/run.py``."""
