"""``python -m netarchive`` runs the command line."""
from netarchive.cli import main

main()
