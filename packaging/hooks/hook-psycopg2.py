"""PyInstaller hook for psycopg2, in place of the contributed one.

The contributed hook names mx.DateTime (eGenix mx, a Python 2 era date type
psycopg2 can adapt when it is installed) as a hidden import; it is not
installed and the agent never uses it, so every build warned that it was
missing. psycopg2 needs no other hidden import: its C module and the
bundled libpq are found by PyInstaller's own analysis.
"""

hiddenimports: list[str] = []
