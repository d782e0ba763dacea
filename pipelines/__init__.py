"""The conductor: the ``guanxi`` CLI and the jobs it runs."""
