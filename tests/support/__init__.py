"""What the tests and the benchmarks (``bench/``) share:

* :mod:`tests.support.reference` -- the brute-force model of an index (range query, kNN,
  pairs, entries; answers ordered by distance, then id), stateful in plain Python and as
  numpy arrays for large data;
* :mod:`tests.support.checks` -- the benchmark's answer checks against that model;
* :mod:`tests.support.server` -- redis-server processes with the module loaded;
* :mod:`tests.support.cluster` -- cluster node options, ``redis-cli --cluster create``, and the
  tests' three-master cluster with resharding moves;
* :mod:`tests.support.commands` -- helpers for the module's commands (info, digest, raw
  replies, random workloads checked against the model);
* :mod:`tests.support.hashes` -- test data (hashes at known distances, titles, key names).

Import it as ``tests.support`` from the repository root: pytest puts the root on ``sys.path``
(``pythonpath`` in pyproject.toml), and ``python -m bench.run`` runs from it.
"""
