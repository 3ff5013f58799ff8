"""The demo's activity providers (bank, kitchen, printer, notify), loaded by
``onward console --demo`` or by naming this folder with ``--plugins``."""
