"""Benchmarks for Onward: ``python -m bench`` (``--quick`` for a smoke run, ``--only``).

One command runs every section in one sitting on fresh SQLite files in one temporary
directory next to the repository, prints each figure with its ratio to the SQLite commit
ceiling measured on the same disk (and to DBOS Transact where that is meaningful), a table
at the end, and the same figures as JSON.

Only public tools are used: the engine's own API and CLI, APSW, ``/proc`` and, when it is
installed, ``strace`` to count fsyncs.
"""
