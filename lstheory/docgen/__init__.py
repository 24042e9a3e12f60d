"""Generated documentation: tables, figures and pages that are rebuilt, never edited.

:func:`lstheory.docgen.generate.generate_all` produces every generated file
under ``docs/`` from the closed forms, the symbolic derivations, the claims
registry and the docstrings; ``lstheory docs`` writes them and
``lstheory docs --check`` fails when the committed copies differ.
"""
