"""The training-speed benchmark behind `make bench`, one module per job (see README.md here).

``references`` (the Keras blog's recipes, the CPU, its matmul peak, FLOP counts), ``runner`` (what runs, in
which order, each run in a fresh process), ``report`` (the Markdown report of the measurements) and
``training_speed`` (the command line). Importing any of them loads no Keras backend.
"""
