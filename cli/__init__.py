"""`constellation`: the command-line client of the Constellation API."""
