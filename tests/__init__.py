"""imgscout's test suite (pytest). A package so that ``tests.support``, which the benchmarks in
``bench/`` use too, has one name from every entry point."""
